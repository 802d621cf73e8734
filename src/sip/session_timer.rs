//! Session timers (RFC 4028), sans-IO: what a request and its 2xx negotiate, and when the refresher acts.
//! The endpoint applies the UAS rules to every INVITE, re-INVITE and UPDATE it answers ([`as_uas`]) and the
//! UAC rules to the 2xx of every one it sends ([`as_uac`]); the call layer keeps each call's clock and asks for
//! a refresh at half the interval, or ends a call whose peer stopped refreshing.
//!
//! The rules kept (§7–§10): no `Session-Expires` (or 0) means no timer; an interval below our Min-SE is
//! refused with 422 and our Min-SE, unless the UAC does not support `timer` (it could not retry: the interval
//! is raised to our Min-SE, errata 1687); the refresher is the one the request named, `uac` when it named
//! none and its UAC supports `timer`, and `uas` when the UAC does not support it (it could not refresh); the
//! 2xx carries `Require: timer` whenever the UAC supports it (§9: MUST with `uac`, SHOULD with `uas`). The refresher refreshes at half the interval; the other side
//! ends the session once the interval less min(32 s, a third of it) passed without a refresh (§10).

use std::time::Duration;

use crate::sip::message::typed::{Refresher, SessionExpires, parse_min_se};
use crate::sip::message::{HeaderName, Headers};

/// RFC 4028's floor for any Min-SE (§4): 90 seconds.
pub const MIN_SE_FLOOR: u32 = 90;

/// A session timer in force in a dialog: its interval and whether vocals refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimer {
    /// Seconds.
    pub interval: u32,
    pub we_refresh: bool,
}

impl SessionTimer {
    /// When the refresher sends its refresh, after the last one: half the interval (§10).
    pub fn refresh_after(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval) * 500)
    }

    /// When the other side gives up on a refresh, after the last one: the interval less min(32 s, a third).
    pub fn expires_after(&self) -> Duration {
        let interval = u64::from(self.interval);
        Duration::from_secs(interval - (interval / 3).min(32))
    }

    /// The refresher as named in a transaction whose UAC was `we_uac`.
    pub fn refresher(&self, we_uac: bool) -> Refresher {
        if self.we_refresh == we_uac { Refresher::Uac } else { Refresher::Uas }
    }
}

/// What a UAS answers about the timer of a request it takes (an INVITE, re-INVITE or UPDATE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UasTimer {
    /// No timer (none asked, or 0).
    None,
    /// 422 Session Interval Too Small, with this Min-SE.
    TooSmall(u32),
    /// The 2xx carries `header` (and `Require: timer` when `require`); the timer then runs as `timer`.
    Timer { header: SessionExpires, require: bool, timer: SessionTimer },
}

/// The UAS rules (§9) for `request`'s headers, with `min_se` our smallest interval.
pub fn as_uas(request: &Headers, min_se: u32) -> UasTimer {
    let Some(value) = request.get_bytes(&HeaderName::SessionExpires) else { return UasTimer::None };
    // A value that does not parse is no request for a timer (it is refused nowhere: the call goes on).
    let Ok(asked) = SessionExpires::parse(&value) else { return UasTimer::None };
    if asked.delta == 0 {
        return UasTimer::None;
    }
    let uac_supports = request.has_token(&HeaderName::Supported, "timer");
    // A UAC that does not support timers cannot act on a 422 (a proxy put the header in): the call would fail,
    // so the interval is raised to our Min-SE instead (RFC 4028 errata 1687, as §8.1 has a proxy do).
    let interval = match (asked.delta < min_se, uac_supports) {
        (true, true) => return UasTimer::TooSmall(min_se),
        (true, false) => min_se,
        (false, _) => asked.delta,
    };
    let refresher = match (asked.refresher, uac_supports) {
        (_, false) => Refresher::Uas,
        (Some(r), true) => r,
        (None, true) => Refresher::Uac,
    };
    UasTimer::Timer {
        header: SessionExpires::new(interval, Some(refresher)),
        // §9: MUST when the UAC refreshes (it has to act on the 2xx), SHOULD when we do and it supports timer.
        require: uac_supports,
        timer: SessionTimer { interval, we_refresh: refresher == Refresher::Uas },
    }
}

/// The UAC rules (§7.2) for the 2xx to a request vocals sent: the timer it puts in force, if any. A 2xx that
/// names no refresher leaves it to us (we asked, we refresh).
pub fn as_uac(response: &Headers) -> Option<SessionTimer> {
    let value = response.get_bytes(&HeaderName::SessionExpires)?;
    let se = SessionExpires::parse(&value).ok().filter(|se| se.delta > 0)?;
    Some(SessionTimer { interval: se.delta, we_refresh: se.refresher != Some(Refresher::Uas) })
}

/// The Min-SE of a 422: the interval to ask again with (never below RFC 4028's floor).
pub fn min_se_of(response: &Headers) -> Option<u32> {
    let value = response.get_bytes(&HeaderName::MinSe)?;
    parse_min_se(&value).ok().map(|m| m.max(MIN_SE_FLOOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (name, value) in lines {
            h.push(HeaderName::new(name), value.to_string());
        }
        h
    }

    #[test]
    fn the_uas_honours_the_offerers_refresher_defaults_to_uac_and_refuses_short_intervals() {
        let timer = |se: &str, supported: bool| {
            let mut lines = vec![("Session-Expires", se)];
            if supported {
                lines.push(("Supported", "replaces, timer"));
            }
            as_uas(&headers(&lines), 90)
        };
        let UasTimer::Timer { header, require, timer: t } = timer("1800;refresher=uas", true) else { panic!() };
        assert_eq!((&header.to_bytes()[..], require), (&b"1800;refresher=uas"[..], true));
        assert_eq!(t, SessionTimer { interval: 1800, we_refresh: true });
        let UasTimer::Timer { header, require, timer: t } = timer("1800", true) else { panic!() };
        assert_eq!((&header.to_bytes()[..], require, t.we_refresh), (&b"1800;refresher=uac"[..], true, false));
        // A UAC without timer support cannot refresh: we do, whatever a proxy wrote.
        let UasTimer::Timer { header, require, .. } = timer("600;refresher=uac", false) else { panic!() };
        assert_eq!((&header.to_bytes()[..], require), (&b"600;refresher=uas"[..], false));
        assert_eq!(timer("89", true), UasTimer::TooSmall(90));
        // Too short from a UAC that could not act on a 422 (a proxy asked): raised to our Min-SE, we refresh.
        let UasTimer::Timer { header, require, timer: t } = timer("60", false) else { panic!() };
        assert_eq!((&header.to_bytes()[..], require), (&b"90;refresher=uas"[..], false));
        assert_eq!(t, SessionTimer { interval: 90, we_refresh: true });
        assert_eq!(timer("0", true), UasTimer::None);
        assert_eq!(timer("soon", true), UasTimer::None);
        assert_eq!(as_uas(&headers(&[("Supported", "timer")]), 90), UasTimer::None);
        // The compact form.
        assert!(matches!(as_uas(&headers(&[("x", "120"), ("k", "timer")]), 90), UasTimer::Timer { .. }));
        assert_eq!(as_uas(&headers(&[("x", "120"), ("k", "timer")]), 300), UasTimer::TooSmall(300));
    }

    #[test]
    fn the_uac_learns_the_timer_from_the_2xx_and_the_refresher_acts_in_time() {
        let t = as_uac(&headers(&[("Session-Expires", "90;refresher=uac")])).unwrap();
        assert_eq!(t, SessionTimer { interval: 90, we_refresh: true });
        assert!(!as_uac(&headers(&[("Session-Expires", "90;refresher=uas")])).unwrap().we_refresh);
        assert!(as_uac(&headers(&[("Session-Expires", "90")])).unwrap().we_refresh);
        assert_eq!(as_uac(&headers(&[])), None);
        assert_eq!(as_uac(&headers(&[("Session-Expires", "0")])), None);
        assert_eq!(t.refresh_after(), Duration::from_secs(45));
        assert_eq!(t.expires_after(), Duration::from_secs(60), "90 − min(32, 30)");
        let long = SessionTimer { interval: 1800, we_refresh: false };
        assert_eq!(long.expires_after(), Duration::from_secs(1768), "1800 − 32");
        assert_eq!(t.refresher(true), Refresher::Uac);
        assert_eq!(t.refresher(false), Refresher::Uas);
        assert_eq!(min_se_of(&headers(&[("Min-SE", "120")])), Some(120));
        assert_eq!(min_se_of(&headers(&[("Min-SE", "10")])), Some(90));
    }
}
