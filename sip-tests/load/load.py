#!/usr/bin/env python3
"""vocals load runs, measured side by side with peers on the same machine (run by sip-tests/load/run).

Signalling: SIPp places INVITE -> 200 -> ACK -> BYE calls at stepped rates against vocals (built-in echo agent),
Kamailio's stateless responder and `sipp -sn uas`. A step passes with 0 failed calls, p99 INVITE->200 <= 10 ms,
no growth of the kernel's UdpRcvbufErrors (nstat) and the generator at or under 70% of its core; a step that
breaks a rule of validity (the generator saturated, receive buffers overflowed) is reported as invalid, not as a
server limit.

Media: N concurrent calls with 20 ms PCMU both ways; vocals hands every frame to the agent simulator over the
WebSocket (Twilio Media Streams) and plays the echoed frames back. Recorded: server CPU % of a core per call
over a steady window, RSS per call, the RTP egress interval p99 (vocals' packets as captured by tshark for a
sample of calls), the WebSocket inter-frame gap p99 (the agent simulator's clock) and loss (vocals' call
records). The peer is Kamailio + rtpengine (userspace) relaying the same calls to `sipp -sn uas -rtp_echo`.

The server under test is pinned to CPU 0 and every generator to CPU 1 (taskset). Results go to a JSON file and
a Markdown summary (printed, and written beside the JSON)."""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RELEASE = REPO / "target" / "release"
# The vocals binary under test: the release build, or another one for an A/B (LOAD_VOCALS_BIN=path).
VOCALS_BIN = Path(os.environ.get("LOAD_VOCALS_BIN", str(RELEASE / "vocals")))
CLK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, GEN_CPU = 0, 1
DIALED = "+15550100200"
GEN_LIMIT = 0.70


def log(*a):
    print("[load]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- process and kernel readings

def proc_cpu(pid):
    """CPU seconds (user + system, every thread) of one live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def tree_pids(root):
    """root and every live descendant (Kamailio forks workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu(root):
    total = 0.0
    for pid in tree_pids(root):
        try:
            total += proc_cpu(pid)
        except OSError:
            pass
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_rss_kib(root):
    return sum(rss_kib(p) for p in tree_pids(root) if os.path.exists(f"/proc/{p}"))


def rcvbuf_errors():
    """UdpRcvbufErrors + Udp6RcvbufErrors, absolute, from nstat (without touching its history)."""
    out = subprocess.run(["nstat", "-asz", "UdpRcvbufErrors", "Udp6RcvbufErrors"], capture_output=True,
                         text=True, check=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line and not line.startswith("#"))


def udp_drops():
    """Drops per local UDP port (the last column of /proc/net/udp and udp6), to say which socket overflowed."""
    drops = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            port = int(f[1].rsplit(":", 1)[1], 16)
            drops[port] = drops.get(port, 0) + int(f[-1])
    return drops


def grown(before, after):
    return {p: n - before.get(p, 0) for p, n in after.items() if n > before.get(p, 0)}


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def wait_udp_listener(port, timeout=20.0):
    """Waits until something answers SIP OPTIONS on the port."""
    deadline = time.time() + timeout
    msg = (f"OPTIONS sip:{DIALED}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKprobe\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:{DIALED}@127.0.0.1>\r\nCall-ID: probe-{time.time()}\r\n"
           "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        while time.time() < deadline:
            s.sendto(msg, ("127.0.0.1", port))
            try:
                s.recvfrom(65536)
                return
            except OSError:
                time.sleep(0.2)
    raise SystemExit(f"nothing answered SIP on 127.0.0.1:{port} within {timeout} s")


RUNNING = []


def stop_all():
    """Whatever is still running when the script ends (an error midway included) is stopped."""
    for proc in RUNNING:
        proc.stop(signal.SIGKILL, timeout=5)


class Proc:
    """A server or helper process, pinned to a CPU, its output in the work directory."""

    def __init__(self, name, argv, cpu, work, env=None, cwd=None):
        RUNNING.append(self)
        self.name = name
        self.out = open(work / f"{name}.log", "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(["taskset", "-c", str(cpu), *map(str, argv)], stdout=self.out,
                                  stderr=subprocess.STDOUT, env=full_env, cwd=cwd or work,
                                  start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
                self.p.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        if not self.out.closed:
            self.out.close()


# ---------------------------------------------------------------- the servers under test

def start_vocals(work, port, extra_config="", env=None):
    state = work / "vocals-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    admin = free_port(socket.SOCK_STREAM)
    config = work / "vocals.toml"
    config.write_text(
        f'state_dir = "{state}"\n{extra_config}\n'
        f'[sip]\nlisten_udp = "127.0.0.1:{port}"\nlisten_tcp = ""\ninvite_rate = 0\nrequest_rate = 0\nmax_transaction_memory_mb = 1024\nmax_calls = 20000\n'
        f'[media]\npublic_ip = "127.0.0.1"\nrtp_ports = "20000-59999"\n'
        f'[admin]\nlisten = "127.0.0.1:{admin}"\ntoken = "load-token-0123456789"\n'
        '[log]\nlevel = "warn"\n')
    proc = Proc("vocals", [VOCALS_BIN, "serve", "--config", config], SERVER_CPU, work, env)
    proc.admin = f"http://127.0.0.1:{admin}"
    wait_udp_listener(port)
    return proc


def vocals_api(proc, path):
    req = urllib.request.Request(proc.admin + path, headers={"Authorization": "Bearer load-token-0123456789"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def all_calls(proc):
    """Every call record, through the API's pages."""
    calls, cursor = [], None
    while True:
        page = vocals_api(proc, "/v1/calls?limit=500" + (f"&cursor={cursor}" if cursor else ""))
        calls += page.get("calls", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return calls


def kamailio_cfg(work, template, **subst):
    text = (HERE / template).read_text()
    for key, value in subst.items():
        text = text.replace(key, str(value))
    path = work / template
    path.write_text(text)
    return path


def start_kamailio(work, name, cfg, port, cpu):
    # -DD: stay in the foreground (its workers still fork); -E: log to stderr; -m/-M: shared/private memory.
    proc = Proc(name, ["kamailio", "-f", cfg, "-DD", "-E", "-m", "256", "-M", "16", "-w", work], cpu, work)
    wait_udp_listener(port)
    return proc


# ---------------------------------------------------------------- SIPp

def sipp(work, scenario, port, rate, calls, limit=None, hold_ms=0, extra=(), timeout_s=120):
    """Runs one SIPp client to the end; returns its figures (calls, failures, rtt list, its own CPU)."""
    run = work / f"sipp-{scenario.stem}-{rate}-{calls}-{time.time_ns()}"
    run.mkdir()
    shutil.copy(scenario, run / scenario.name)
    if (work / "tone.ulaw").exists():
        shutil.copy(work / "tone.ulaw", run / "tone.ulaw")
    local = free_port()
    argv = ["taskset", "-c", str(GEN_CPU), "sipp", f"127.0.0.1:{port}", "-sf", scenario.name, "-s", DIALED,
            "-i", "127.0.0.1", "-p", str(local), "-mi", "127.0.0.1", "-mp", str(free_port()),
            "-r", str(rate), "-m", str(calls), "-buff_size", "4194304", "-nostdin", "-trace_stat", "-stf",
            "stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "200", "-trace_err", "-timeout",
            f"{timeout_s}s", "-timeout_error", "-d", str(hold_ms), *extra]
    if limit:
        argv += ["-l", str(limit)]
    started = time.time()
    with open(run / "sipp.out", "w") as out:
        p = subprocess.Popen(argv, cwd=run, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    figures = {"wall_s": wall, "exit": p.returncode, "cpu_s": usage.ru_utime + usage.ru_stime}
    figures["gen_core"] = figures["cpu_s"] / wall
    rows = (run / "stat.csv").read_text().splitlines() if (run / "stat.csv").exists() else []
    if len(rows) >= 2:
        head = rows[0].split(";")
        last = rows[-1].split(";")
        col = lambda name: int(last[head.index(name)])
        figures["ok"] = col("SuccessfulCall(C)")
        figures["failed"] = col("FailedCall(C)")
        figures["retrans"] = col("Retransmissions(C)")
        figures["dead_msgs"] = col("DeadCallMsgs(C)")
    else:
        figures.update(ok=0, failed=calls, retrans=0, dead_msgs=0)
    rtts = []
    for f in run.glob("*_rtt.csv"):
        for line in f.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    rtts.append(float(parts[1]))
                except ValueError:
                    pass
    figures["rtt_n"] = len(rtts)
    figures["p50_ms"] = quantile(rtts, 0.50)
    figures["p99_ms"] = quantile(rtts, 0.99)
    figures["dir"] = str(run)
    return figures


def start_sipp_uas(work, name, port, cpu, extra=()):
    proc = Proc(name, ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", port, "-mi", "127.0.0.1",
                       "-buff_size", "4194304", "-nostdin", *extra], cpu, work)
    time.sleep(1.0)  # SIPp's uas scenario would count a probe as an unexpected message: give it a second
    if not proc.alive():
        raise SystemExit(f"{name} did not start: see {work / (name + '.log')}")
    return proc


# ---------------------------------------------------------------- signalling

class Drain:
    """A UDP socket read in a thread: where the signalling calls' offers say to send RTP."""

    def __init__(self):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                self.sock.recv(2048)
                self.packets += 1
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def signalling_step(work, server, port, rate, seconds):
    drain = Drain()
    before_err, before_drops = rcvbuf_errors(), udp_drops()
    before_cpu = tree_cpu(server.pid)
    f = sipp(work, HERE / "uac_calls.xml", port, rate, rate * seconds, timeout_s=seconds + 40,
             extra=["-key", "sink_port", str(drain.port)])
    drain.close()
    f["rtp_drained"] = drain.packets
    f["server_cpu_s"] = tree_cpu(server.pid) - before_cpu
    f["rcvbuf_errors"] = rcvbuf_errors() - before_err
    f["dropped_at"] = {{port: "vocals SIP", drain.port: "RTP drain"}.get(p, str(p)): n
                       for p, n in grown(before_drops, udp_drops()).items()}
    f["rate"] = rate
    f["server_us_per_call"] = 1e6 * f["server_cpu_s"] / max(1, f["ok"])
    f["server_core"] = f["server_cpu_s"] / f["wall_s"]
    f["achieved_cps"] = f["ok"] / f["wall_s"]
    problems = []
    if f["failed"] or f["ok"] < rate * seconds:
        problems.append(f"{f['failed']} failed, {f['ok']} of {rate * seconds} completed")
    if not f["p99_ms"] <= 10.0:
        problems.append(f"p99 {f['p99_ms']:.2f} ms")
    # On loopback nothing should be retransmitted: SIPp retransmitting means an answer came late or was lost,
    # and messages for calls SIPp had finished mean the server retransmitted (its 2xx never saw the ACK).
    if f["retrans"] or f["dead_msgs"]:
        problems.append(f"{f['retrans']} SIPp retransmissions, {f['dead_msgs']} messages for finished calls")
    invalid = []
    if f["rcvbuf_errors"]:
        invalid.append(f"UdpRcvbufErrors grew by {f['rcvbuf_errors']} (sockets: {f['dropped_at']})")
    if f["gen_core"] > GEN_LIMIT:
        invalid.append(f"generator at {100 * f['gen_core']:.0f}% of its core")
    f["problems"], f["invalid"] = problems, invalid
    f["pass"] = not problems and not invalid
    return f


def number_config(rules):
    """The dialed number answered by echo, with `rules` routing rules none of which matches a load call."""
    text = f'[[numbers]]\nnumber = "{DIALED}"\nagent = "echo"\n'
    for i in range(rules):
        if i % 3 == 0:
            when = 'zone = "America/New_York", days = ["sat"], from = "18:00", to = "08:00", dates = ["2027-12-24/2027-12-26"]'
            text += f'[[numbers.rules]]\nwhen = {{ {when} }}\nagent = ""\n'
        elif i % 3 == 1:
            text += '[[numbers.rules]]\nwhen = { zone = "Europe/Berlin", dates = ["2020-02-29"] }\nagent = ""\n'
        else:
            text += '[[numbers.rules]]\ncaller = ["+44", "+353", "+61"]\nagent = ""\n'
    return text


def start_signalling_server(work, peer):
    port = free_port()
    if peer == "vocals":
        return start_vocals(work, port), port
    if peer == "vocals-notrace":
        # The same server without per-call SIP traces: the traces' cost, side by side.
        return start_vocals(work, port, env={"VOCALS_LOG_CALL_TRACE": "false"}), port
    if peer in ("vocals-number", "vocals-rules"):
        # The dialed number in [[numbers]] (echo answers it), and for vocals-rules 32 routing rules, none of
        # which matches (every schedule and caller checked at each INVITE: the worst case), side by side.
        return start_vocals(work, port, number_config(32 if peer == "vocals-rules" else 0)), port
    if peer == "kamailio":
        cfg = kamailio_cfg(work, "kamailio-sl.cfg", PORT=port)
        return start_kamailio(work, "kamailio-sl", cfg, port, SERVER_CPU), port
    if peer == "sipp-uas":
        return start_sipp_uas(work, "sipp-uas", port, SERVER_CPU), port
    raise SystemExit(f"unknown peer {peer}")


def signalling(work, args):
    results = {}
    for peer in args.peers:
        steps = []
        # A fresh server for every step: over UDP a stateful server keeps each call's finished transactions
        # for 32 s, so a step run straight after another would start with the last one's table.
        for rate in args.rates:
            server, port = start_signalling_server(work, peer)
            try:
                f = signalling_step(work, server, port, rate, args.seconds)
            finally:
                server.stop()
            steps.append(f)
            log(f"{peer} {rate}/s: ok {f['ok']} failed {f['failed']} p50 {f['p50_ms']:.2f} ms p99 "
                f"{f['p99_ms']:.2f} ms server {f['server_us_per_call']:.0f} us/call "
                f"({100 * f['server_core']:.0f}% core) generator {100 * f['gen_core']:.0f}% "
                f"rcvbuf+{f['rcvbuf_errors']} {'PASS' if f['pass'] else 'FAIL ' + '; '.join(f['problems'] + f['invalid'])}")
            if not f["pass"]:
                break
        passing = [s for s in steps if s["pass"]]
        results[peer] = {"steps": steps, "best": max((s["rate"] for s in passing), default=0)}
    return results


# ---------------------------------------------------------------- media

def write_tone(path, seconds=2):
    """A 440 Hz tone as raw mu-law (G.711), for SIPp's rtp_stream."""
    def ulaw(sample):
        sign = 0x80 if sample < 0 else 0
        sample = min(abs(sample), 32635) + 0x84
        exponent = max(0, sample.bit_length() - 8)
        mantissa = (sample >> (exponent + 3)) & 0x0F
        return (~(sign | (exponent << 4) | mantissa)) & 0xFF
    data = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 440 * n / 8000))) for n in range(8000 * seconds))
    path.write_bytes(data)


def rtp_intervals(pcap_fields, lo, hi, side):
    """Per-stream inter-packet intervals (ms) from tshark's 'time<TAB>src port<TAB>dst port' lines: of RTP
    from the server's ports lo..hi (side "src") or to them (side "dst"); RTCP (odd ports) left out."""
    last, gaps = {}, []
    for line in pcap_fields.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        port = int(parts[1] if side == "src" else parts[2])
        if not lo <= port <= hi or port % 2:
            continue
        t, key = float(parts[0]), (parts[1], parts[2])
        if key in last:
            gaps.append(1000 * (t - last[key]))
        last[key] = t
    return gaps, len(last)


def capture(work, name, lo, hi, seconds):
    """tshark on loopback for a sample of calls' RTP (the server's ports lo..hi); returns the per-stream
    intervals of the server's packets and, for reference, of the caller's."""
    pcap = work / f"{name}.pcap"
    subprocess.run(["taskset", "-c", str(GEN_CPU), "tshark", "-q", "-i", "lo", "-f", f"udp and portrange {lo}-{hi}",
                    "-a", f"duration:{seconds}", "-w", pcap], capture_output=True, check=True)
    fields = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport",
                             "-e", "udp.dstport"], capture_output=True, text=True, check=True).stdout
    return rtp_intervals(fields, lo, hi, "src"), rtp_intervals(fields, lo, hi, "dst")


def steady_window(server, seconds):
    c0, t0 = tree_cpu(server.pid), time.time()
    time.sleep(seconds)
    return (tree_cpu(server.pid) - c0) / (time.time() - t0)


def histogram_quantile(proc, name, q):
    """The `q` quantile of a Prometheus histogram from vocals' /metrics, interpolated inside its bucket (seconds)."""
    buckets = []
    with urllib.request.urlopen(proc.admin + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            m = re.match(re.escape(name) + r'_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                buckets.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lo_edge, lo_count = 0.0, 0.0
    for edge, count in buckets:
        if count >= rank:
            if math.isinf(edge):
                return lo_edge
            return lo_edge + (edge - lo_edge) * (rank - lo_count) / max(1e-9, count - lo_count)
        lo_edge, lo_count = edge, count
    return buckets[-1][0]


def media_vocals(work, calls, args, record=False, spurts=False):
    """vocals with the agent simulator; `record`: every call recorded (`[recording] record = "dual"`, 16-bit WAV
    to the state directory's disk); `spurts`: the agent replies once a second with 400 ms of audio after silence
    (a voice agent's talk spurts), for the downlink latency."""
    port = free_port()
    agent_port = free_port(socket.SOCK_STREAM)
    agent = Proc(f"agent-{calls}", [RELEASE / "examples" / "load_agent", f"127.0.0.1:{agent_port}",
                                    *(["spurts"] if spurts else [])], GEN_CPU, work)
    recording = '[recording]\nrecord = "dual"\n' if record else ""
    server = start_vocals(work, port, extra_config=(
        f'default_agent = "load"\n{recording}[[agents]]\nname = "load"\nurl = "ws://127.0.0.1:{agent_port}/stream"\n'))
    try:
        time.sleep(1)
        idle_rss = rss_kib(server.pid)
        ramp_s = calls / args.cps
        hold_ms = int(1000 * (ramp_s + args.settle + args.window + 5))
        before_err = rcvbuf_errors()
        runner = subprocess.Popen([sys.executable, __file__, "_sipp", str(work), "uac_media.xml", str(port),
                                   str(args.cps), str(calls), str(hold_ms)], stdout=subprocess.PIPE, text=True)
        time.sleep(ramp_s + args.settle)
        active = len([c for c in all_calls(server) if not c.get("end_at")])
        core = steady_window(server, args.window)
        rss = rss_kib(server.pid)
        (gaps, streams), (caller_gaps, _) = capture(work, f"vocals-{calls}", 20000, 20199, 5)
        sipp_f = json.loads(runner.communicate()[0])
        time.sleep(2)
        summary = {}
        agent.stop(signal.SIGINT)
        text = (work / f"agent-{calls}.log").read_text().strip().splitlines()
        summary = json.loads(text[-1]) if text else {}
        recent = all_calls(server)
        rtp = [(c.get("stats") or {}).get("rtp") or {} for c in recent]
        agents = [(c.get("stats") or {}).get("agent") or {} for c in recent]
        received = sum(r.get("received") or 0 for r in rtp)
        lost = sum((r.get("lost_concealed") or 0) + (r.get("late") or 0) for r in rtp)
        dropped = sum(a.get("uplink_dropped") or 0 for a in agents)
        out = {
            "calls": calls, "active_seen": active, "sipp": sipp_f,
            "server_core": core, "core_pct_per_call": 100 * core / calls,
            "idle_rss_kib": idle_rss, "rss_kib": rss, "rss_kib_per_call": (rss - idle_rss) / calls,
            "egress_streams": streams, "egress_p50_ms": quantile(gaps, 0.5), "egress_p99_ms": quantile(gaps, 0.99),
            "caller_p99_ms": quantile(caller_gaps, 0.99),
            "egress_max_ms": max(gaps) if gaps else float("nan"),
            "agent": summary, "records": len(recent), "rtp_received": received, "rtp_lost": lost,
            "uplink_dropped": dropped,
            "ended": sorted({c.get("end_reason") or "none" for c in recent}),
            "rcvbuf_errors": rcvbuf_errors() - before_err,
        }
        if spurts:
            name = "vocals_agent_downlink_latency_seconds"
            out["downlink_p50_ms"] = 1000 * histogram_quantile(server, name, 0.50)
            out["downlink_p99_ms"] = 1000 * histogram_quantile(server, name, 0.99)
            out["replies"] = metric(server, name + "_count")
            per_call = [a.get("downlink_p50_us") for a in agents if a.get("downlink_p50_us") is not None]
            out["call_downlink_p50_median_ms"] = quantile(per_call, 0.5) / 1000 if per_call else float("nan")
            out["rephased"] = sum(r.get("rephased") or 0 for r in rtp)
        if record:
            recordings = [c.get("recording") or {} for c in recent]
            out["recorded"] = sum(1 for r in recordings if r.get("status") in ("complete", "incomplete"))
            out["recordings_incomplete"] = sum(1 for r in recordings if r.get("status") == "incomplete")
            out["recording_frames_dropped"] = metric(server, "vocals_recording_frames_dropped_total")
            out["recording_bytes"] = sum(r.get("bytes") or 0 for r in recordings)
        return out
    finally:
        server.stop()
        agent.stop(signal.SIGINT)


def media_rtpengine(work, calls, args):
    port, uas_port, ng = free_port(), free_port(), free_port()
    echo_port = free_port()
    rtpe = Proc(f"rtpengine-{calls}", ["rtpengine", "--foreground", "--log-stderr", "--table=-1",
                                      "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng}",
                                      "--port-min=40000", "--port-max=41999", "--num-threads=1",
                                      "--delete-delay=0", "--log-level=3", f"--pidfile={work}/rtpengine.pid",
                                      f"--listen-cli=127.0.0.1:{free_port(socket.SOCK_STREAM)}"],
                SERVER_CPU, work)
    uas = start_sipp_uas(work, f"uas-echo-{calls}", uas_port, GEN_CPU,
                         extra=["-rtp_echo", "-mp", str(echo_port), "-l", str(calls + 100)])
    kam = start_kamailio(work, f"kamailio-proxy-{calls}",
                         kamailio_cfg(work, "kamailio-rtpengine.cfg", PORT=port, UAS=f"127.0.0.1:{uas_port}",
                                      NG=f"127.0.0.1:{ng}"), port, GEN_CPU)
    try:
        time.sleep(1)
        if not rtpe.alive():
            raise SystemExit(f"rtpengine did not start: see {work}/rtpengine-{calls}.log")
        idle_rss = rss_kib(rtpe.pid)
        ramp_s = calls / args.cps
        hold_ms = int(1000 * (ramp_s + args.settle + args.window + 5))
        runner = subprocess.Popen([sys.executable, __file__, "_sipp", str(work), "uac_media.xml", str(port),
                                   str(args.cps), str(calls), str(hold_ms)], stdout=subprocess.PIPE, text=True)
        time.sleep(ramp_s + args.settle)
        core = steady_window(rtpe, args.window)
        rss = rss_kib(rtpe.pid)
        (gaps, streams), (caller_gaps, _) = capture(work, f"rtpengine-{calls}", 40000, 40399, 5)
        sipp_f = json.loads(runner.communicate()[0])
        return {"calls": calls, "sipp": sipp_f, "server_core": core, "core_pct_per_call": 100 * core / calls,
                "idle_rss_kib": idle_rss, "rss_kib": rss, "rss_kib_per_call": (rss - idle_rss) / calls,
                "egress_streams": streams, "egress_p50_ms": quantile(gaps, 0.5),
                "egress_p99_ms": quantile(gaps, 0.99), "caller_p99_ms": quantile(caller_gaps, 0.99)}
    finally:
        kam.stop()
        uas.stop()
        rtpe.stop()


def media(work, args):
    write_tone(work / "tone.ulaw")
    results = {"vocals": [], "vocals-recording": [], "vocals-spurts": [], "rtpengine": []}
    for calls in args.calls:
        if "vocals-spurts" in args.peers:
            r = media_vocals(work, calls, args, spurts=True)
            results["vocals-spurts"].append(r)
            log(f"vocals spurts {calls} calls ({VOCALS_BIN}): downlink p50 {r['downlink_p50_ms']:.2f} ms p99 "
                f"{r['downlink_p99_ms']:.2f} ms over {r['replies']:.0f} replies (per-call medians: "
                f"{r['call_downlink_p50_median_ms']:.2f} ms), re-phased {r['rephased']}, "
                f"{r['core_pct_per_call']:.3f}% core/call, RTP egress p99 {r['egress_p99_ms']:.2f} ms, "
                f"lost {r['rtp_lost']}, sipp failed {r['sipp']['failed']}")
        if "vocals-recording" in args.peers:
            r = media_vocals(work, calls, args, record=True)
            results["vocals-recording"].append(r)
            log(f"vocals recording media {calls} calls: {r['core_pct_per_call']:.3f}% core/call "
                f"({100 * r['server_core']:.0f}% in all), {r['rss_kib_per_call']:.1f} KiB/call, "
                f"RTP egress p99 {r['egress_p99_ms']:.2f} ms, lost {r['rtp_lost']}, recorded {r['recorded']} "
                f"({r['recordings_incomplete']} incomplete, {r['recording_frames_dropped']:.0f} frames dropped), "
                f"sipp failed {r['sipp']['failed']}")
        if "vocals" in args.peers:
            r = media_vocals(work, calls, args)
            results["vocals"].append(r)
            a = r["agent"]
            log(f"vocals media {calls} calls: {r['core_pct_per_call']:.3f}% core/call ({100 * r['server_core']:.0f}% "
                f"in all), {r['rss_kib_per_call']:.1f} KiB/call, RTP egress p99 {r['egress_p99_ms']:.2f} ms over "
                f"{r['egress_streams']} streams (caller's own p99 {r['caller_p99_ms']:.2f} ms), WS gap p99 {a.get('gap_p99_ms')} ms, lost {r['rtp_lost']}, "
                f"sipp failed {r['sipp']['failed']} generator {100 * r['sipp']['gen_core']:.0f}%")
        if "rtpengine" in args.peers:
            r = media_rtpengine(work, calls, args)
            results["rtpengine"].append(r)
            log(f"rtpengine media {calls} calls: {r['core_pct_per_call']:.3f}% core/call, "
                f"{r['rss_kib_per_call']:.1f} KiB/call, egress p99 {r['egress_p99_ms']:.2f} ms "
                f"(caller's own p99 {r['caller_p99_ms']:.2f} ms), "
                f"sipp failed {r['sipp']['failed']}")
    return results


def metric(proc, name):
    """A gauge or counter from vocals' /metrics, summed over its labels (0 before it is first set)."""
    total = 0.0
    with urllib.request.urlopen(proc.admin + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(None, 1)[1])
    return total


def soak(work, args):
    """`--calls` calls held for the whole run, each lasting `--hold` seconds (new calls replace ended ones, so
    thousands of calls pass through), RTP both ways (SIPp's tone and the echo of the agent simulator's audio)
    and the WebSocket both ways. Samples the server's RSS and its tables every `--sample` seconds; after the
    warm-up (`--warmup` seconds) RSS may drift at most 5% and the tables may not grow past the call count."""
    write_tone(work / "tone.ulaw")
    calls, hold = args.calls[0], args.hold
    port = free_port()
    agent_port = free_port(socket.SOCK_STREAM)
    agent = Proc("agent-soak", [RELEASE / "examples" / "load_agent", f"127.0.0.1:{agent_port}"], GEN_CPU, work)
    server = start_vocals(work, port, extra_config=(
        f'default_agent = "load"\n[[agents]]\nname = "load"\nurl = "ws://127.0.0.1:{agent_port}/stream"\n'))
    try:
        time.sleep(1)
        seconds = int(args.minutes * 60)
        cps = max(1, round(calls / hold))
        total = int(cps * seconds)
        runner = subprocess.Popen([sys.executable, __file__, "_sipp", str(work), "uac_media.xml", str(port),
                                   str(cps), str(total), str(hold * 1000), str(calls), str(seconds + hold + 120)],
                                  stdout=subprocess.PIPE, text=True)
        samples = []
        started = time.time()
        while runner.poll() is None:
            time.sleep(args.sample)
            try:
                samples.append({
                    "t": round(time.time() - started), "rss_kib": rss_kib(server.pid),
                    "active": metric(server, "vocals_calls_active"),
                    "dialogs": metric(server, "vocals_sip_dialogs"),
                    "transactions": metric(server, "vocals_sip_transactions"),
                    "ports": metric(server, "vocals_rtp_ports_in_use"),
                })
            except OSError as e:
                log(f"soak: sample failed: {e}")
            s = samples[-1] if samples else {}
            log(f"soak t={s.get('t')} s rss {s.get('rss_kib')} KiB active {s.get('active')} dialogs "
                f"{s.get('dialogs')} transactions {s.get('transactions')} ports {s.get('ports')}")
        sipp_f = json.loads(runner.communicate()[0])
        time.sleep(3)
        agent.stop(signal.SIGINT)
        text = (work / "agent-soak.log").read_text().strip().splitlines()
        summary = json.loads(text[-1]) if text else {}
        recent = all_calls(server)
        rtp = [(c.get("stats") or {}).get("rtp") or {} for c in recent]
        agents = [(c.get("stats") or {}).get("agent") or {} for c in recent]
        warm = [x for x in samples if x["t"] >= args.warmup]
        base = warm[0]["rss_kib"] if warm else float("nan")
        peak = max((x["rss_kib"] for x in warm), default=float("nan"))
        last = warm[-1]["rss_kib"] if warm else float("nan")
        out = {
            "calls": calls, "hold_s": hold, "minutes": args.minutes, "cps": cps, "sipp": sipp_f,
            "samples": samples, "rss_after_warmup_kib": base, "rss_peak_kib": peak, "rss_end_kib": last,
            "rss_drift_pct": 100 * (last - base) / base if warm else float("nan"),
            "rss_peak_drift_pct": 100 * (peak - base) / base if warm else float("nan"),
            "max_dialogs": max((x["dialogs"] for x in samples), default=0),
            "max_transactions": max((x["transactions"] for x in samples), default=0),
            "max_active": max((x["active"] for x in samples), default=0),
            "records": len(recent),
            "rtp_received": sum(r.get("received") or 0 for r in rtp),
            "rtp_lost": sum((r.get("lost_concealed") or 0) + (r.get("late") or 0) for r in rtp),
            "uplink_dropped": sum(a.get("uplink_dropped") or 0 for a in agents),
            "ended": sorted({c.get("end_reason") or "none" for c in recent}),
            "agent": summary,
        }
        log(f"soak: {sipp_f.get('ok')} calls ok, {sipp_f.get('failed')} failed; RSS after warm-up {base} KiB, "
            f"end {last} KiB ({out['rss_drift_pct']:.2f}%), peak {peak} KiB ({out['rss_peak_drift_pct']:.2f}%); "
            f"max dialogs {out['max_dialogs']}, transactions {out['max_transactions']}; RTP lost {out['rtp_lost']}, "
            f"uplink dropped {out['uplink_dropped']}")
        return out
    finally:
        server.stop()
        agent.stop(signal.SIGINT)


# ---------------------------------------------------------------- the report

def markdown(results, machine):
    lines = [f"Machine: {machine}", ""]
    sig = results.get("signalling")
    if sig:
        lines += ["| peer | rate (calls/s) | completed | failed | p50 INVITE->200 | p99 | server µs/call | server core "
                  "| generator core | UdpRcvbufErrors | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for peer, r in sig.items():
            for s in r["steps"]:
                verdict = "pass" if s["pass"] else "; ".join(s["problems"] + [f"invalid: {i}" for i in s["invalid"]])
                lines.append(f"| {peer} | {s['rate']} | {s['ok']} | {s['failed']} | {s['p50_ms']:.2f} ms | "
                             f"{s['p99_ms']:.2f} ms | {s['server_us_per_call']:.0f} | {100 * s['server_core']:.0f}% | "
                             f"{100 * s['gen_core']:.0f}% | {s['rcvbuf_errors']} | {verdict} |")
        lines.append("")
        lines += [f"- {peer}: highest passing rate {r['best']} calls/s" for peer, r in sig.items()]
        lines.append("")
    med = results.get("media")
    if med:
        lines += ["| server | calls | % of a core per call | server core | RSS KiB per call | RTP egress p99 | "
                  "caller's RTP p99 | WS gap p99 | RTP lost | SIPp failed | generator core |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, runs in med.items():
            for r in runs:
                peer = name
                if "recorded" in r:
                    peer = f"{name} ({r['recorded']} recorded, {r['recordings_incomplete']} incomplete)"
                gap = r.get("agent", {}).get("gap_p99_ms", "—")
                lines.append(f"| {peer} | {r['calls']} | {r['core_pct_per_call']:.3f}% | {100 * r['server_core']:.0f}% "
                             f"| {r['rss_kib_per_call']:.1f} | {r['egress_p99_ms']:.2f} ms | {r['caller_p99_ms']:.2f} ms | {gap} ms | "
                             f"{r.get('rtp_lost', '—')} | {r['sipp']['failed']} | {100 * r['sipp']['gen_core']:.0f}% |")
    spurts = (med or {}).get("vocals-spurts")
    if spurts:
        lines += ["", "| agent replying in spurts | calls | replies | downlink p50 | downlink p99 | per-call p50 median | "
                  "re-phased | RTP egress p99 | SIPp failed |", "|---|---|---|---|---|---|---|---|---|"]
        for r in spurts:
            lines.append(f"| {VOCALS_BIN} | {r['calls']} | {r['replies']:.0f} | {r['downlink_p50_ms']:.2f} ms | "
                         f"{r['downlink_p99_ms']:.2f} ms | {r['call_downlink_p50_median_ms']:.2f} ms | {r['rephased']} | "
                         f"{r['egress_p99_ms']:.2f} ms | {r['sipp']['failed']} |")
    soak = results.get("soak")
    if soak:
        lines += ["", "| soak | calls passed | failed | RSS after warm-up | end (drift) | peak (drift) | max dialogs | "
                  "max transactions | RTP lost | uplink dropped |", "|---|---|---|---|---|---|---|---|---|---|",
                  f"| {soak['calls']} calls x {soak['minutes']:g} min, {soak['hold_s']} s each | "
                  f"{soak['sipp'].get('ok')} | {soak['sipp'].get('failed')} | {soak['rss_after_warmup_kib']} KiB | "
                  f"{soak['rss_end_kib']} KiB ({soak['rss_drift_pct']:+.2f}%) | {soak['rss_peak_kib']} KiB "
                  f"({soak['rss_peak_drift_pct']:+.2f}%) | {soak['max_dialogs']:.0f} | {soak['max_transactions']:.0f} | "
                  f"{soak['rtp_lost']} | {soak['uplink_dropped']} |"]
    return "\n".join(lines)


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = int(open("/proc/meminfo").readline().split()[1]) // 1024 // 1024
    return f"{model}, {os.cpu_count()} CPUs, {mem} GiB, kernel {os.uname().release}"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_sipp":
        # A SIPp client in the background of a media run; prints its figures as JSON.
        work, scenario, port, cps, calls, hold = sys.argv[2:8]
        # The soak caps concurrency below its total; the media runs' total is their concurrency.
        limit = int(sys.argv[8]) if len(sys.argv) > 8 else int(calls)
        # SIPp's -timeout bounds its whole run: the soak gives its length.
        timeout_s = int(sys.argv[9]) if len(sys.argv) > 9 else int(hold) // 1000 + 120
        work = Path(work)
        f = sipp(work, HERE / scenario, int(port), int(cps), int(calls), limit=limit, hold_ms=int(hold),
                 extra=["-rtp_threadtasks", "200"], timeout_s=timeout_s)
        print(json.dumps(f))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["signalling", "media", "soak", "all"], nargs="?", default="all")
    ap.add_argument("--peers", default="vocals,kamailio,sipp-uas,rtpengine",
                    help="servers to measure (vocals, kamailio, sipp-uas for signalling; vocals, rtpengine for "
                         "media; vocals-recording: vocals recording every call, for media; vocals-number: the dialed number "
                         "configured, vocals-rules: with 32 routing rules none of which matches, for signalling; "
                         "vocals-notrace: vocals "
                         "without per-call SIP traces, for signalling; vocals-spurts: the agent replying in talk "
                         "spurts, for the downlink latency)")
    ap.add_argument("--rates", default="1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,12000")
    ap.add_argument("--seconds", type=int, default=10, help="length of each signalling step")
    ap.add_argument("--calls", default="250,500,1000", help="concurrent calls for the media runs")
    ap.add_argument("--cps", type=int, default=50, help="call rate while a media run ramps up")
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=20.0, help="seconds of the steady CPU window")
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    ap.add_argument("--hold", type=int, default=60, help="seconds each soak call lasts")
    ap.add_argument("--warmup", type=float, default=300.0, help="soak seconds before RSS is the baseline")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between soak samples")
    ap.add_argument("--out", default=str(REPO / "target" / "load"))
    ap.add_argument("--keep-work", action="store_true",
                    help="keep the work directory (peers' logs, state) after a run that succeeded")
    args = ap.parse_args()
    import atexit
    atexit.register(stop_all)
    # This script and every generator stay off the server's CPU.
    os.sched_setaffinity(0, {GEN_CPU})
    args.peers = args.peers.split(",")
    args.rates = [int(r) for r in args.rates.split(",")]
    args.calls = [int(c) for c in args.calls.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vocals-load-"))
    log(f"work directory {work}")
    # A run leaves tens of megabytes of logs and state behind: removed when the run succeeds (unless
    # --keep-work), kept when it fails so the peers' logs can be read.
    try:
        run(args, work, out)
    except BaseException:
        log(f"the run failed: its work directory {work} is kept")
        raise
    stop_all()
    if args.keep_work:
        log(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work, out):
    results = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.part in ("signalling", "all"):
        sig_peers = [p for p in args.peers
                     if p in ("vocals", "vocals-notrace", "vocals-number", "vocals-rules", "kamailio", "sipp-uas")]
        results["signalling"] = signalling(work, argparse.Namespace(**{**vars(args), "peers": sig_peers}))
    if args.part in ("media", "all"):
        med_peers = [p for p in args.peers if p in ("vocals", "vocals-recording", "vocals-spurts", "rtpengine")]
        results["media"] = media(work, argparse.Namespace(**{**vars(args), "peers": med_peers}))
    if args.part == "soak":
        results["soak"] = soak(work, args)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"load-{args.part}-{stamp}.json").write_text(json.dumps(results, indent=1))
    report = markdown(results, results["machine"])
    (out / f"load-{args.part}-{stamp}.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
