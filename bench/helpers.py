#!/usr/bin/env python3
"""Small helpers for bench/run (standard library only).

Subcommands:
  ports N                      print N distinct free TCP ports on 127.0.0.1 (asked of the kernel)
  wait-port PORT TIMEOUT [PID] wait until 127.0.0.1:PORT accepts connections; fail early if PID exits
  probe URL SIZE [TOKEN]       GET URL once (keep-alive off, TOKEN as a bearer JWT); succeed if status 200
                               and body is SIZE bytes
  probe-denied URL             GET URL once; succeed if the proxy answers 403 (its policies are on)
  tree PID                     print PID and all its descendants, one per line
  sample PID                   JSON: CPU seconds (utime+stime) and VmHWM/VmRSS summed over PID's tree
  busy SECONDS                 percent of all CPU time busy over SECONDS
  cpustat                      JSON: per-CPU busy and total jiffies from /proc/stat
  record ...                   build one run record (JSON line) from the pieces bench/run collected
  meta KEY=VALUE...            print the run's metadata as JSON
  oneline                      one-line progress text for the run record on stdin
  summarize RESULTS_DIR        print the Markdown summary of RESULTS_DIR/runs.jsonl
  ratelimit-fixture ip|quota   print the RateLimitPolicy of rl-ip-1k or quota-1k / quota-sqlite-1k
  authz-fixture DIR            write DIR/policies.yaml (a RequestAuthentication and 50
                               AuthorizationPolicies) and DIR/token (an RS256 JWT they accept),
                               signed with a key openssl makes in DIR
"""

import base64
import json
import os
import subprocess
import re
import socket
import ssl
import statistics
import sys
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cmd_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < int(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    print(" ".join(str(p) for p in ports))


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cmd_wait_port(port, timeout, pid=None):
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(int(pid)):
            print(f"process {pid} exited before port {port} opened", file=sys.stderr)
            return 1
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
                return 0
        except OSError:
            time.sleep(0.05)
    print(f"port {port} did not open within {timeout}s", file=sys.stderr)
    return 1


def cmd_probe(url, size, token=None):
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, headers=headers)
    # The benchmark's certificate is self-signed: the probe checks the response, not the chain.
    unverified = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=5, context=unverified) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        print(f"{url}: HTTP {e.code}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{url}: {e}", file=sys.stderr)
        return 1
    if status != 200 or len(body) != int(size):
        print(f"{url}: status {status}, {len(body)} bytes (want 200, {size} bytes)", file=sys.stderr)
        return 1
    return 0


def cmd_probe_denied(url):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Connection": "close"}), timeout=5) as resp:
            print(f"{url}: HTTP {resp.status} without a token (want 403: are the policies loaded?)", file=sys.stderr)
            return 1
    except urllib.error.HTTPError as e:
        if e.code == 403:
            return 0
        print(f"{url}: HTTP {e.code} without a token (want 403)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{url}: {e}", file=sys.stderr)
        return 1


H2LOAD_SUMMARY = re.compile(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                            r"(\d+) errored, (\d+) timeout")
H2LOAD_DATA = re.compile(r"\((\d+)\) data")


def cmd_h2load_json(seconds, text_path, tsv_path=None):
    """h2load-json SECONDS TEXT [TSV]: h2load's output (one or more runs appended in TEXT) and optional
    per-request log (TSV: start µs, status, duration µs) as the JSON report.lua writes for wrk. SECONDS is
    the measured time, or "END-BEGIN" in epoch seconds."""
    if "-" in seconds:
        end, begin = (float(x) for x in seconds.split("-", 1))
        seconds = end - begin
    seconds = float(seconds)
    with open(text_path) as f:
        text = f.read()
    succeeded = failed = 0
    for m in H2LOAD_SUMMARY.finditer(text):
        succeeded += int(m.group(2))
        failed += int(m.group(3)) + int(m.group(4)) + int(m.group(5))
    data = sum(int(m.group(1)) for m in H2LOAD_DATA.finditer(text))
    latencies = []
    if tsv_path and os.path.exists(tsv_path):
        with open(tsv_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1].strip() == "200":
                    latencies.append(int(parts[2]))
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100.0))]

    print(json.dumps({
        "requests": succeeded, "duration_us": int(seconds * 1e6), "bytes": data,
        "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "p999_us": pct(99.9),
        "max_us": latencies[-1] if latencies else None,
        "mean_us": sum(latencies) / len(latencies) if latencies else None,
        "err_connect": 0, "err_read": 0, "err_write": 0, "err_status": failed, "err_timeout": 0}))


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cmd_tree(pid):
    for p in tree(pid):
        print(p)


def cmd_sample(pid):
    cpu_ticks, hwm_kb, rss_kb, anon_kb, n = 0, 0, 0, 0, 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # fields[0] is field 3 (state); utime is field 14, stime field 15
            cpu_ticks += int(fields[11]) + int(fields[12])
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm_kb += int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        rss_kb += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon_kb += int(line.split()[1])
            n += 1
        except (OSError, IndexError, ValueError):
            continue
    print(json.dumps({"cpu_s": cpu_ticks / CLK_TCK, "hwm_kb": hwm_kb, "rss_kb": rss_kb, "anon_kb": anon_kb,
                      "procs": n}))


def cmd_cpustat():
    """Per-CPU jiffies from /proc/stat: busy, total, and the softirq and steal parts of busy."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals[:8]] + [0] * (8 - len(vals[:8]))
                idle = vals[3] + vals[4]
                out[name] = {"busy": sum(vals) - idle, "total": sum(vals),
                             "softirq": vals[6], "steal": vals[7]}
    print(json.dumps(out))


def cmd_busy(seconds):
    """Percent of all CPUs' time spent busy over the next SECONDS (other work on the machine)."""
    def totals():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        return sum(vals) - vals[3] - vals[4], sum(vals)
    b0, t0 = totals()
    time.sleep(float(seconds))
    b1, t1 = totals()
    print(f"{100.0 * (b1 - b0) / max(1, t1 - t0):.0f}")


DISTURBED_PCT = 10.0


def parse_times(line):
    """CPU seconds (user + system) from the second line of bash `times`: '0m1.234s 0m0.567s'."""
    total = 0.0
    parts = line.split()
    if len(parts) != 2:
        return None
    for part in parts:
        m, _, sec = part.rstrip("s").partition("m")
        try:
            total += int(m) * 60 + float(sec)
        except ValueError:
            return None
    return total


def cmd_record(args):
    """record KEY=VALUE... KEY@=FILE... ; KEY@=FILE reads FILE as JSON (empty file: null)."""
    rec = {}
    for a in args:
        k, v = a.split("=", 1)
        if k.endswith("@"):
            with open(v) as f:
                text = f.read().strip()
            rec[k[:-1]] = json.loads(text) if text else None
        else:
            try:
                rec[k] = int(v)
            except ValueError:
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
    wrk = rec.pop("wrk", None) or {}
    before = rec.pop("sample_before", None) or {}
    after = rec.pop("sample_after", None) or {}
    during = rec.pop("sample_during", None) or {}
    idle = rec.pop("sample_idle", None) or {}
    cs0 = rec.pop("cpustat_before", None) or {}
    cs1 = rec.pop("cpustat_after", None) or {}
    o0 = rec.pop("origin_before", None) or {}
    o1 = rec.pop("origin_after", None) or {}
    # The -redis- scenarios' redis-server shares the load CPU: its time is the load's, not other work.
    r0 = rec.pop("redis_before", None) or {}
    r1 = rec.pop("redis_after", None) or {}
    redis_cpu_s = r1.get("cpu_s", 0) - r0.get("cpu_s", 0) if r0 and r1 else 0.0
    t0 = parse_times(rec.pop("wrk_times_before", ""))
    t1 = parse_times(rec.pop("wrk_times_after", ""))
    rec["wrk"] = wrk
    reasons = []
    if not wrk:
        reasons.append("no wrk result")
    else:
        dur = wrk["duration_us"] / 1e6
        rec["rps"] = wrk["requests"] / dur if dur > 0 else 0.0
        rec["p50_ms"] = wrk["p50_us"] / 1000.0 if wrk.get("p50_us") is not None else None
        rec["p99_ms"] = wrk["p99_us"] / 1000.0 if wrk.get("p99_us") is not None else None
        rec["duration_s"] = dur
        errs = {k: wrk[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")}
        rec["errors"] = sum(errs.values())
        if wrk["requests"] == 0:
            reasons.append("no requests")
        for k, v in errs.items():
            if v:
                reasons.append(f"{k}={v}")
        if wrk["requests"] and wrk["bytes"] / wrk["requests"] < rec.get("body_bytes", 0):
            reasons.append("responses shorter than the body size")
    if after and not after.get("procs"):
        reasons.append("proxy exited during the run")
    if before and after and after.get("procs"):
        rec["cpu_s"] = after["cpu_s"] - before["cpu_s"]
        rec["peak_rss_mib"] = after["hwm_kb"] / 1024.0
        # Private (anonymous) memory halfway through the load, connections open: what the process adds,
        # without the shared, clean pages of its binary and libraries that RSS also counts.
        if during.get("procs"):
            rec["load_anon_mib"] = during["anon_kb"] / 1024.0
        if idle.get("procs"):
            rec["idle_rss_mib"] = idle["rss_kb"] / 1024.0
            rec["idle_anon_mib"] = idle.get("anon_kb", 0) / 1024.0
        rec["procs"] = after["procs"]
        if wrk and rec["cpu_s"] > 0:
            rec["req_per_cpu_s"] = wrk["requests"] / rec["cpu_s"]
    else:
        reasons.append("no process sample")
    if cs0 and cs1:
        for cpu in cs1:
            if cpu in cs0:
                dt = cs1[cpu]["total"] - cs0[cpu]["total"]
                for part in ("busy", "softirq", "steal"):
                    d = cs1[cpu].get(part, 0) - cs0[cpu].get(part, 0)
                    rec[f"{cpu}_{part}_pct"] = round(100.0 * d / dt, 1) if dt > 0 else 0.0
    # Other work on a benchmark CPU: its busy time not explained by the processes we run there. Loopback
    # softirq work runs in the sending process's context and is charged to it, so a clean run reads
    # about 0 (within ±3 on the reference VM); another process sharing the CPU shows up as a positive value.
    dur = rec.get("duration_s")
    pc, lc = rec.get("proxy_cpu"), rec.get("load_cpu")
    if dur and rec.get("cpu_s") is not None and f"cpu{pc}_busy_pct" in rec:
        rec["proxy_core_other_pct"] = round(rec[f"cpu{pc}_busy_pct"] - 100.0 * rec["cpu_s"] / dur, 1)
    if dur and o0 and o1 and t0 is not None and t1 is not None and f"cpu{lc}_busy_pct" in rec:
        rec["origin_cpu_s"] = round(o1["cpu_s"] - o0["cpu_s"], 2)
        rec["wrk_cpu_s"] = round(t1 - t0, 2)
        if redis_cpu_s:
            rec["redis_cpu_s"] = round(redis_cpu_s, 2)
        rec["load_core_other_pct"] = round(
            rec[f"cpu{lc}_busy_pct"] - 100.0 * (rec["origin_cpu_s"] + rec["wrk_cpu_s"] + redis_cpu_s) / dur, 1)
    rec["disturbed"] = any(rec.get(k, 0) > DISTURBED_PCT for k in ("proxy_core_other_pct", "load_core_other_pct"))
    rec["valid"] = not reasons
    rec["invalid_reasons"] = reasons
    print(json.dumps(rec, sort_keys=True))


# ---------------------------------------------------------------- summary

def fmt_num(v, kind):
    if v is None:
        return "–"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "ms":
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    if kind == "s":
        return f"{v:.2f}"
    if kind == "mib":
        return f"{v:.1f}"
    return str(v)


def cell(values, kind):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt_num(med, kind)
    return f"{fmt_num(med, kind)} ({fmt_num(min(values), kind)}–{fmt_num(max(values), kind)})"


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def placement_of(run):
    return run.get("placement") or f"{run.get('proxy_cpu', '?')}:{run.get('load_cpu', '?')}"


# Gatehouse against each peer in the same logging state.
RATIO_PAIRS = [("gatehouse", "nginx"), ("gatehouse", "haproxy"),
               ("gatehouse-log", "nginx-log"), ("gatehouse-log", "haproxy-log")]


def cmd_summarize(results_dir):
    meta_path = os.path.join(results_dir, "meta.json")
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    runs = []
    runs_path = os.path.join(results_dir, "runs.jsonl")
    if os.path.exists(runs_path):
        with open(runs_path) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    peers = meta.get("peers", ["gatehouse", "nginx", "haproxy"])
    scenarios = meta.get("scenarios", ["1k", "64k"])
    placements = meta.get("placements") or sorted({placement_of(r) for r in runs}) \
        or [f"{meta.get('proxy_cpu', 0)}:{meta.get('load_cpu', 1)}"]
    # Peers that could not be benchmarked: "peer<TAB>reason" lines written by bench/run.
    unavailable = {}
    ua_path = os.path.join(results_dir, "unavailable.tsv")
    if os.path.exists(ua_path):
        with open(ua_path) as f:
            for line in f:
                if "\t" in line:
                    peer, why = line.rstrip("\n").split("\t", 1)
                    unavailable.setdefault(peer, why)

    out = []
    w = out.append
    w(f"Gatehouse benchmark — {meta.get('started', '?')}")
    w("")
    w(f"1k, 64k, tls-1k: wrk -t{meta.get('threads', '?')} -c{meta.get('connections', '?')}; "
      "h2-1k: h2load -t1 -c16 -m10 over TLS; tls-new: h2load --h1 rounds of 100 new TLS connections "
      "(requests/s = full handshakes/s); -ec: the same with an ECDSA P-256 certificate (else RSA-2048). "
      f"{meta.get('duration', '?')} s per run, {meta.get('repeats', '?')} repeat(s) per proxy, scenario and "
      "placement, peers alternated. CPUs: proxy:load (wrk and the origin on the load CPU). The -log peers "
      "write a JSON access log line per request to a file on tmpfs. Cells: median (min–max).")
    w("")
    w("| Scenario | Proxy | CPUs | Runs | Requests/s | p50 ms | p99 ms | Proxy CPU s | Requests per CPU-s | Idle RSS MiB "
      "| Peak RSS MiB | Anon RSS MiB idle | Anon RSS MiB under load |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    medians = {}
    invalid = []
    keys = ("rps", "p50_ms", "p99_ms", "req_per_cpu_s", "cpu_s", "idle_rss_mib", "peak_rss_mib", "idle_anon_mib",
            "load_anon_mib")
    for sc in scenarios:
        for peer in peers:
            for pl in placements:
                all_runs = [r for r in runs if r["scenario"] == sc and r["peer"] == peer and placement_of(r) == pl]
                ok = [r for r in all_runs if r.get("valid")]
                invalid += [r for r in all_runs if not r.get("valid")]
                if not ok:
                    why = "not available" if peer in unavailable or not all_runs else "no valid runs"
                    w(f"| {sc} | {peer}: {why} | {pl} | 0/{len(all_runs)} | – | – | – | – | – | – | – | – | – |")
                    continue
                medians[(sc, peer, pl)] = {k: med(ok, k) for k in keys}
                w(f"| {sc} | {peer} | {pl} | {len(ok)}/{len(all_runs)} "
                  f"| {cell([r['rps'] for r in ok], 'int')} "
                  f"| {cell([r['p50_ms'] for r in ok], 'ms')} "
                  f"| {cell([r['p99_ms'] for r in ok], 'ms')} "
                  f"| {cell([r.get('cpu_s') for r in ok], 's')} "
                  f"| {cell([r.get('req_per_cpu_s') for r in ok], 'int')} "
                  f"| {cell([r.get('idle_rss_mib') for r in ok], 'mib')} "
                  f"| {cell([r.get('peak_rss_mib') for r in ok], 'mib')} "
                  f"| {cell([r.get('idle_anon_mib') for r in ok], 'mib')} "
                  f"| {cell([r.get('load_anon_mib') for r in ok], 'mib')} |")
            ok_all = [r for r in runs if r["scenario"] == sc and r["peer"] == peer and r.get("valid")]
            if ok_all:
                medians[(sc, peer, None)] = {k: med(ok_all, k) for k in keys}
    busy = []
    for sc in scenarios:
        vals = [r.get(f"cpu{r.get('load_cpu')}_busy_pct") for r in runs if r["scenario"] == sc and r.get("valid")]
        vals = [v for v in vals if v is not None]
        if vals:
            busy.append(f"{sc} {statistics.median(vals):.0f} %")
    if busy:
        w("")
        w(f"Load CPU (wrk + origin) busy, median of all runs: {', '.join(busy)}. "
          "Near 100 % the client side, not the proxy, limits requests/s: compare requests per CPU-s then.")

    def mean_over_placements(sc, peer, key):
        vals = [medians[(sc, peer, pl)][key] for pl in placements
                if (sc, peer, pl) in medians and medians[(sc, peer, pl)].get(key)]
        return statistics.mean(vals) if len(vals) == len(placements) else None

    w("")
    w("Ratios, Gatehouse / peer in the same logging state: per placement (CPUs proxy:load), then on the mean "
      "of the placements' medians. rps = requests/s; per CPU-s = requests per proxy CPU-second; p99 lower is better.")
    w("")
    for sc in scenarios:
        lines = []
        for g, peer in RATIO_PAIRS:
            if g not in peers or peer not in peers:
                continue
            parts = []
            for key, label in (("rps", "rps"), ("req_per_cpu_s", "per CPU-s"), ("p99_ms", "p99"),
                               ("idle_rss_mib", "idle RSS"), ("peak_rss_mib", "peak RSS"),
                               ("load_anon_mib", "anon RSS under load")):
                per = []
                for pl in placements:
                    a, b = medians.get((sc, g, pl)), medians.get((sc, peer, pl))
                    if a and b and a.get(key) and b.get(key):
                        per.append(f"{a[key] / b[key]:.2f} ({pl})")
                ma, mb = mean_over_placements(sc, g, key), mean_over_placements(sc, peer, key)
                mean = f", mean {ma / mb:.2f}" if ma and mb else ""
                if per:
                    parts.append(f"{label} " + " ".join(per) + mean)
            if parts:
                lines.append(f"  - {g} / {peer}: " + "; ".join(parts))
        extra = []
        g = medians.get((sc, "gatehouse", None))
        plain = medians.get(("token-1k", "gatehouse", None))
        if sc == "authz-1k" and g and plain and plain["rps"]:
            extra.append(f"50 policies + a JWT rule cost Gatehouse {100 * (1 - g['rps'] / plain['rps']):.1f} % of its "
                         f"token-1k rps ({g['rps'] / plain['rps']:.2f}× of the medians; target ≥ 0.90×)")
            # Repeat r of authz-1k ran right after repeat r of token-1k on the same placement: their ratio
            # cancels the drift that moves both (other tenants), which the medians of each column do not.
            by_rep = {}
            for r in runs:
                if r.get("valid") and r["peer"] == "gatehouse" and r["scenario"] in ("token-1k", "authz-1k"):
                    by_rep.setdefault((r.get("repeat"), placement_of(r)), {})[r["scenario"]] = r["rps"]
            pairs = [v["authz-1k"] / v["token-1k"] for v in by_rep.values()
                     if v.get("token-1k") and v.get("authz-1k")]
            if pairs:
                extra.append(f"median of the {len(pairs)} paired runs {statistics.median(pairs):.2f}× "
                             f"({min(pairs):.2f}–{max(pairs):.2f})")
        if sc in RATE_LIMIT_SCENARIOS and g:
            extra += rate_limit_cost(sc, runs, medians)
        base = medians.get((sc, "gatehouse-base", None))
        if g and base and base["rps"]:
            extra.append(f"Gatehouse/baseline build rps = {g['rps'] / base['rps']:.2f}")
        logged = medians.get((sc, "gatehouse-log", None))
        if g and logged and g["rps"]:
            extra.append(f"with its JSON access log Gatehouse keeps {logged['rps'] / g['rps']:.2f} of its rps")
        for peer in ("nginx", "haproxy"):
            plain_p, logged_p = medians.get((sc, peer, None)), medians.get((sc, f"{peer}-log", None))
            if plain_p and logged_p and plain_p["rps"]:
                extra.append(f"{peer} keeps {logged_p['rps'] / plain_p['rps']:.2f} with its log")
        if not lines and not extra:
            w(f"- {sc}: no peer results to compare")
            continue
        w(f"- {sc}" + (": " + "; ".join(extra) if extra else ""))
        out.extend(lines)
    disturbed = [r for r in runs if r.get("valid") and r.get("disturbed")]
    if disturbed:
        w("")
        w(f"Disturbed runs (other work took more than {DISTURBED_PCT:.0f} % of a benchmark CPU; "
          "kept in the medians, consider a re-run):")
        for r in disturbed:
            w(f"- {r['scenario']} {r['peer']} {placement_of(r)} repeat {r.get('repeat', '?')}: other work "
              f"{r.get('proxy_core_other_pct', 0):.0f} % of the proxy CPU, "
              f"{r.get('load_core_other_pct', 0):.0f} % of the load CPU")
    if unavailable:
        w("")
        for peer, why in unavailable.items():
            w(f"Note: {peer} not available: {why}")
    if invalid:
        w("")
        w("Invalid runs (left out of the medians):")
        for r in invalid:
            w(f"- {r['scenario']} {r['peer']} {placement_of(r)} repeat {r.get('repeat', '?')}: "
              f"{', '.join(r['invalid_reasons'])}")
    busy = meta.get("busy_pct_before")
    if busy is not None and float(busy) > 15:
        w("")
        w(f"Warning: the CPUs were {busy}% busy just before the benchmark: other work on this machine "
          "skews the numbers.")
    print("\n".join(out))


def cmd_oneline():
    """Read one run record on stdin, print a one-line progress summary."""
    r = json.loads(sys.stdin.readline())
    if r.get("valid"):
        def ms(v):
            return "–" if v is None else f"{v:.2f}"
        print(f"{r['rps']:,.0f} rps, p50 {ms(r['p50_ms'])} ms, p99 {ms(r['p99_ms'])} ms, "
              f"CPU {r.get('cpu_s', 0):.2f} s, peak RSS {r.get('peak_rss_mib', 0):.1f} MiB")
    else:
        print("INVALID: " + ", ".join(r["invalid_reasons"]))


def cmd_meta(args):
    """meta KEY=VALUE... ; keys in LIST_KEYS are split on spaces."""
    list_keys = {"peers", "scenarios", "placements"}
    meta = {}
    for a in args:
        k, v = a.split("=", 1)
        if k in list_keys:
            meta[k] = v.split()
        else:
            try:
                meta[k] = int(v)
            except ValueError:
                meta[k] = v
    print(json.dumps(meta, indent=2, sort_keys=True))


# ---------------------------------------------------------------- rate-limit scenarios

RATE_LIMIT_SCENARIOS = {
    "rl-ip-1k": "a per-client-IP limit (memory store)",
    "quota-1k": "a monthly quota per API key (memory store)",
    "quota-sqlite-1k": "a monthly quota per API key (sqlite store)",
    "rl-ip-redis-1k": "a per-client-IP limit (redis store)",
    "quota-redis-1k": "a monthly quota per API key (redis store)",
}


def rate_limit_cost(sc, runs, medians):
    """What a rate-limit scenario costs Gatehouse against the same requests with no policy (key-1k, which
    sends the quota's x-api-key header, for the quota scenarios when it ran; else 1k): the ratio of the
    medians, and the median of the ratios of runs paired by repeat and placement (they ran back to back,
    so the drift that moves both cancels)."""
    base = "key-1k" if sc.startswith("quota") and ("key-1k", "gatehouse", None) in medians else "1k"
    g, plain = medians.get((sc, "gatehouse", None)), medians.get((base, "gatehouse", None))
    if not (g and plain and plain["rps"]):
        return []
    out = [f"{RATE_LIMIT_SCENARIOS[sc]} costs Gatehouse {100 * (1 - g['rps'] / plain['rps']):.1f} % of its {base} rps "
           f"({g['rps'] / plain['rps']:.2f}× of the medians; target ≥ {0.80 if 'redis' in sc else 0.95:.2f}×)"]
    by_rep = {}
    for r in runs:
        if r.get("valid") and r["peer"] == "gatehouse" and r["scenario"] in (base, sc):
            by_rep.setdefault((r.get("repeat"), placement_of(r)), {})[r["scenario"]] = r["rps"]
    pairs = [v[sc] / v[base] for v in by_rep.values() if v.get(base) and v.get(sc)]
    if pairs:
        out.append(f"median of the {len(pairs)} paired runs {statistics.median(pairs):.2f}× "
                   f"({min(pairs):.2f}–{max(pairs):.2f})")
    return out


def cmd_ratelimit_fixture(kind):
    """Prints the RateLimitPolicy of rl-ip-1k (`ip`) or quota-1k / quota-sqlite-1k (`quota`): limits far
    above what the load reaches, so every request is counted and none refused."""
    if kind == "ip":
        rule = ("  - name: per-client-ip\n    key: [source.ip]\n"
                "    limit: {requests: 100000000, unit: Second, burst: 100000000}\n")
    elif kind == "quota":
        rule = ("  - name: monthly-per-api-key\n    key: [\"request.headers[x-api-key]\"]\n"
                "    quota: {requests: 4000000000, period: Month}\n")
    else:
        raise SystemExit(f"ratelimit-fixture: unknown kind {kind!r} (ip, quota)")
    # BENCH_RL_HEADERS=0: no x-ratelimit-* on allowed responses (the policy's allowedResponseHeaders).
    headers = "  allowedResponseHeaders: false\n" if os.environ.get("BENCH_RL_HEADERS") == "0" else ""
    print("apiVersion: gatehouse.dev/v1alpha1\nkind: RateLimitPolicy\n"
          "metadata: {name: bench, namespace: istio-system}\nspec:\n" + headers + "  rules:\n" + rule, end="")


# ---------------------------------------------------------------- authz-1k fixture

BENCH_ISSUER = "https://issuer.bench.local"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cmd_authz_fixture(directory):
    """50 AuthorizationPolicies shaped like a real edge: 40 scoped to other hosts (the host index skips
    them), 5 host-agnostic DENY rules and 5 host-agnostic ALLOW rules, one of which admits the benchmark
    request by its JWT principal and path; plus one RS256 jwtRule with an inline JWKS."""
    key = os.path.join(directory, "jwt-key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "n": b64url(bytes.fromhex(modulus)),
                                 "e": "AQAB"}]})
    header = b64url(json.dumps({"alg": "RS256", "kid": "bench", "typ": "JWT"}).encode())
    claims = {"iss": BENCH_ISSUER, "sub": "bench-client", "aud": "bench", "scope": "read",
              "exp": int(time.time()) + 86400, "iat": int(time.time())}
    payload = b64url(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=f"{header}.{payload}".encode(),
                               check=True, capture_output=True).stdout
    with open(os.path.join(directory, "token"), "w") as f:
        f.write(f"{header}.{payload}.{b64url(signature)}")

    def policy(name, spec):
        return ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                f"metadata: {{name: {name}, namespace: istio-system}}\nspec: {json.dumps(spec)}\n")

    docs = ["apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
            "metadata: {name: bench-jwt, namespace: istio-system}\n"
            f"spec: {json.dumps({'jwtRules': [{'issuer': BENCH_ISSUER, 'audiences': ['bench'], 'jwks': jwks}]})}\n"]
    for i in range(20):
        docs.append(policy(f"deny-svc{i}", {"action": "DENY", "rules": [
            {"to": [{"operation": {"hosts": [f"svc{i}.example.com"], "paths": ["/admin", "/admin/*"]}}]}]}))
        docs.append(policy(f"allow-app{i}", {"rules": [
            {"from": [{"source": {"requestPrincipals": [f"https://idp{i}.example.com/*"]}}],
             "to": [{"operation": {"hosts": [f"app{i}.example.com", f"app{i}.example.com:*"]}}]}]}))
    docs += [
        policy("deny-admin-paths", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*", "/internal/*"]}}]}]}),
        policy("deny-debug-header", {"action": "DENY", "rules": [{"when": [{"key": "request.headers[x-debug]", "values": ["*"]}]}]}),
        policy("deny-bad-networks", {"action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["198.51.100.0/24", "203.0.113.0/24"]}}]}]}),
        policy("deny-odd-methods", {"action": "DENY", "rules": [{"to": [{"operation": {"notMethods": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]}}]}]}),
        policy("deny-banned-role", {"action": "DENY", "rules": [{"when": [{"key": "request.auth.claims[role]", "values": ["banned"]}]}]}),
        policy("allow-internal-net", {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}),
        policy("allow-health", {"rules": [{"to": [{"operation": {"paths": ["/healthz", "/ready"]}}]}]}),
        policy("allow-preflight", {"rules": [{"to": [{"operation": {"methods": ["OPTIONS"]}}]}]}),
        policy("allow-readers", {"rules": [{"from": [{"source": {"requestPrincipals": [f"{BENCH_ISSUER}/*"]}}],
                                            "to": [{"operation": {"paths": ["/1k", "/64k"], "methods": ["GET", "HEAD"]}}],
                                            "when": [{"key": "request.auth.claims[scope]", "values": ["read"]}]}]}),
        policy("allow-writers", {"rules": [{"when": [{"key": "request.auth.claims[scope]", "values": ["write"]}]}]}),
    ]
    with open(os.path.join(directory, "policies.yaml"), "w") as f:
        f.write("---\n".join(docs))


def cmd_alloc_sites(out_path):
    """alloc-sites OUT: reads `perf script -F ip,sym` of malloc uprobe samples (one stack per sample,
    blank line between) on stdin; prints the number of samples, and writes to OUT the allocation sites:
    for each stack, the first frame outside the allocator and the Swift runtime, counted and ranked."""
    import subprocess
    runtime = ("malloc", "swift_slowAlloc", "swift_allocObject", "swift_allocBox", "_swift_", "swift::",
               "operator new", "__libc_", "posix_memalign", "aligned_alloc", "realloc", "_int_malloc",
               "swift_allocEmptyBox", "tryAllocate", "ArrayBuffer", "_allocateUninitialized",
               "_ContiguousArrayBuffer", "_reserveCapacity", "_copyToNewBuffer", "_growArrayCapacity",
               "_StringGuts", "_StringObject", "__StringStorage", "String.init", "_allocate")
    samples, sites, stack = 0, {}, []

    def flush():
        nonlocal samples, stack
        if not stack:
            return
        samples += 1
        site = next((frame for frame in stack if not any(marker in frame for marker in runtime)), stack[-1])
        sites[site] = sites.get(site, 0) + 1
        stack = []

    for line in sys.stdin:
        line = line.strip()
        if not line:
            flush()
            continue
        parts = line.split(None, 1)
        stack.append(parts[1] if len(parts) > 1 else parts[0])
    flush()
    print(samples)
    ranked = sorted(sites.items(), key=lambda item: -item[1])[:40]
    names = [name for name, _ in ranked]
    try:
        demangled = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), text=True,
                                   capture_output=True, timeout=60).stdout.splitlines()
        if len(demangled) == len(names):
            names = demangled
    except (OSError, subprocess.SubprocessError):
        pass
    with open(out_path, "w") as out:
        out.write(f"{samples} allocations; first frame outside the allocator and the Swift runtime:\n")
        for name, (_, count) in zip(names, ranked):
            out.write(f"{count * 100 / max(samples, 1):6.2f}%  {count:9d}  {name}\n")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        cmd_ports(*args)
    elif cmd == "wait-port":
        return cmd_wait_port(*args)
    elif cmd == "h2load-json":
        cmd_h2load_json(*args)
    elif cmd == "probe":
        return cmd_probe(*args)
    elif cmd == "probe-denied":
        return cmd_probe_denied(*args)
    elif cmd == "tree":
        cmd_tree(*args)
    elif cmd == "sample":
        cmd_sample(*args)
    elif cmd == "busy":
        cmd_busy(*args)
    elif cmd == "cpustat":
        cmd_cpustat()
    elif cmd == "record":
        cmd_record(args)
    elif cmd == "oneline":
        cmd_oneline()
    elif cmd == "meta":
        cmd_meta(args)
    elif cmd == "summarize":
        cmd_summarize(*args)
    elif cmd == "ratelimit-fixture":
        cmd_ratelimit_fixture(*args)
    elif cmd == "authz-fixture":
        cmd_authz_fixture(*args)
    elif cmd == "alloc-sites":
        cmd_alloc_sites(*args)
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
