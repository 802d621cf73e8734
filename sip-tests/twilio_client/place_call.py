#!/usr/bin/env python3
"""Places one call through vocals with Twilio's own, unmodified Python helper library (`twilio` on PyPI), the
way an agent written for Twilio does: `Client(account_sid, auth_token)` and `client.calls.create(...)`. The
one change such an app makes is the base URL of the `api` domain (api.twilio.com), pointed at vocals' HTTP
listener: the library builds every v2010 URL from `client.api.base_url` (twilio/base/domain.py,
`Domain.absolute_url`). Then it follows the call with `client.calls(sid).fetch()` until it ends.

Run by sip-tests/outbound_cases.rs, which reads the one JSON line printed on stdout. Its settings come from the
environment: VOCALS_BASE_URL, ACCOUNT_SID, AUTH_TOKEN, CALL_TO, CALL_FROM, CALL_TWIML, STATUS_CALLBACK.
Exits 2 when the library is missing (sip-tests/run installs it).
"""

import json
import os
import sys
import time

try:
    import twilio
    from twilio.rest import Client
except ImportError as e:
    print(
        f"place_call.py: the twilio library is not installed ({e}): run `bash sip-tests/run`, "
        "or `python3 -m pip install 'twilio==9.13.0'`",
        file=sys.stderr,
    )
    sys.exit(2)

FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}


def main() -> None:
    env = os.environ
    client = Client(env["ACCOUNT_SID"], env["AUTH_TOKEN"])
    client.api.base_url = env["VOCALS_BASE_URL"]
    call = client.calls.create(
        to=env["CALL_TO"],
        from_=env["CALL_FROM"],
        twiml=env["CALL_TWIML"],
        status_callback=env["STATUS_CALLBACK"],
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    created = {
        "sid": call.sid,
        "status": call.status,
        "to": call.to,
        "from": call._from,
        "account_sid": call.account_sid,
        "direction": call.direction,
        "uri": call.uri,
    }
    statuses = [call.status]
    fetched = call
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        fetched = client.calls(call.sid).fetch()
        if fetched.status != statuses[-1]:
            statuses.append(fetched.status)
        if fetched.status in FINAL:
            break
        time.sleep(0.1)
    result = {
        "library": twilio.__version__,
        "created": created,
        "statuses": statuses,
        "final": {"sid": fetched.sid, "status": fetched.status, "duration": fetched.duration},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
