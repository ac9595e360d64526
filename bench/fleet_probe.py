#!/usr/bin/env python3
"""Measuring helpers for bench/fleet.sh (python3 standard library only).

A fleet is N daemons on one machine, each with its own confdir, all against one
backend (etcd v2, etcd v3, or the in-tree Consul-API server) through the
counting proxy of bench/daemon_probe.py, every destination file in one folder
so that one inotify descriptor sees every write.

Subcommands:

  confdirs --root DIR --daemons N --resources R --prefixes P --dest DEST
           --template FILE
           N confdirs DIR/hNNNN (conf.d/ and templates/), each with R resources
           rendering the same template, resource r under the confd prefix
           PREFIXES[r % P] ("", /blue, /green, /p3, ...), dest
           DEST/hNNNN-rR.cfg.
  run      --api v2|v3|consul --url URL --stats FILE --log FILE --pids FILE
           --backend-pid PID --since MONO --dest DEST --daemons N --resources R
           --prefixes P [--keys 1000 ...]
           The measurements of one cell, once the fleet is started (SINCE is
           time.monotonic() just before the first daemon was started): time
           until every dest is rendered; an idle window; single changes timed
           from the write to every dest holding it; a foreign client's GET/PUT
           latency while idle and during a burst of writes the fleet fans out;
           the backend's and the fleet's CPU; the fleet's memory. Prints JSON.
  foreign  --api v2|v3|consul --url URL [--max-seconds S --max-ops N]
           A client of its own (not through the proxy) timing alternate reads
           and writes of one key outside every watched prefix until stdin is
           closed or a limit is reached; prints JSON (latencies in seconds).
  load-consul --url HOST:PORT --keys N [--data-prefix P]
           Stores the seed layout's N keys (under P) in a Consul KV API, one PUT
           each over one keep-alive connection.
  report   --results FILE
           Markdown tables from fleet.sh's results.jsonl.
"""

import argparse
import base64
import http.client
import json
import os
import random
import select
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import daemon_probe  # noqa: E402  (same folder)
import gen_data  # noqa: E402

from daemon_probe import CLK_TCK, cpu_ticks, median, percentile, status_fields  # noqa: E402

PREFIXES = ["", "/blue", "/green"] + ["/p%d" % i for i in range(3, 64)]
FOREIGN_KEY = "/foreign/probe"


def dest_name(daemon, resource):
    return "h%04d-r%d.cfg" % (daemon, resource)


# --------------------------------------------------------------- confdirs


def cmd_confdirs(args):
    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    dest = os.path.abspath(args.dest)
    os.makedirs(dest, exist_ok=True)
    for d in range(args.daemons):
        base = os.path.join(args.root, "h%04d" % d)
        os.makedirs(os.path.join(base, "conf.d"), exist_ok=True)
        os.makedirs(os.path.join(base, "templates"), exist_ok=True)
        with open(os.path.join(base, "templates", "haproxy.cfg.tmpl"), "w", encoding="utf-8") as f:
            f.write(template)
        for r in range(args.resources):
            prefix = PREFIXES[r % args.prefixes]
            with open(os.path.join(base, "conf.d", "haproxy-%d.toml" % r), "w", encoding="utf-8") as f:
                f.write("[template]\n")
                f.write('src = "haproxy.cfg.tmpl"\n')
                f.write("dest = %s\n" % json.dumps(os.path.join(dest, dest_name(d, r))))
                f.write('keys = ["/services/web"]\n')
                f.write('mode = "0644"\n')
                if prefix:
                    f.write("prefix = %s\n" % json.dumps(prefix))
    return 0


# --------------------------------------------------------------- clients


class Client:
    """One keep-alive connection straight to the backend (not the proxy)."""

    def __init__(self, api, url):
        parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        self.api = api
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = None

    def _request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.connect()
                self.conn.sock.setsockopt(6, 1, 1)  # TCP_NODELAY
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if response.status not in (200, 201):
                raise SystemExit("%s %s: %d %s" % (method, path, response.status, data[:200]))
            return data
        raise AssertionError("unreachable")

    def put(self, key, value):
        if self.api == "v2":
            self._request("PUT", "/v2/keys" + urllib.parse.quote(key, safe="/"),
                          "value=" + urllib.parse.quote(value, safe=""),
                          {"Content-Type": "application/x-www-form-urlencoded"})
        elif self.api == "v3":
            self._request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64(value)}),
                          {"Content-Type": "application/json"})
        else:
            self._request("PUT", "/v1/kv" + urllib.parse.quote(key, safe="/"), value.encode())

    def get(self, key):
        if self.api == "v2":
            self._request("GET", "/v2/keys" + urllib.parse.quote(key, safe="/"))
        elif self.api == "v3":
            self._request("POST", "/v3/kv/range", json.dumps({"key": b64(key)}),
                          {"Content-Type": "application/json"})
        else:
            self._request("GET", "/v1/kv" + urllib.parse.quote(key, safe="/"))


def b64(text):
    return base64.b64encode(text.encode()).decode()


def load_consul(url, keys, data_prefix):
    client = Client("consul", url)
    for key, value in gen_data.pairs(keys, data_prefix):
        client.put(key, value)


def cmd_foreign(args):
    client = Client(args.api, args.url)
    client.put(FOREIGN_KEY, "0")
    print("ready", flush=True)
    gets, puts = [], []
    deadline = time.monotonic() + args.max_seconds
    i = 0
    while i < args.max_ops and time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.read(1):
            break
        t0 = time.monotonic()
        if i % 2:
            client.put(FOREIGN_KEY, str(i))
            puts.append(time.monotonic() - t0)
        else:
            client.get(FOREIGN_KEY)
            gets.append(time.monotonic() - t0)
        i += 1
        time.sleep(args.pause)
    json.dump({"get": gets, "put": puts}, sys.stdout)
    return 0


def foreign_summary(samples):
    out = {}
    for op in ("get", "put"):
        values = samples.get(op, [])
        out[op] = {"n": len(values), "p50": median(values), "p99": percentile(values, 99),
                   "max": max(values) if values else None}
    return out


def start_foreign(args, max_seconds, max_ops):
    """Starts the foreign client and returns once its connection is up."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "foreign", "--api", args.api, "--url", args.url,
         "--max-seconds", str(max_seconds), "--max-ops", str(max_ops)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if select.select([proc.stdout], [], [], 30)[0]:
        proc.stdout.readline()
    return proc


def stop_foreign(proc, timeout=30):
    """Closes the client's stdin (its signal to stop) and collects its figures."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    try:
        return foreign_summary(json.loads(out or b"{}"))
    except ValueError:
        return foreign_summary({})


# ------------------------------------------------------------- the fleet


class Fleet:
    def __init__(self, args):
        with open(args.pids) as f:
            self.pids = [int(line) for line in f if line.strip()]
        self.backend = args.backend_pid

    def ticks(self):
        return sum(cpu_ticks(p) or 0 for p in self.pids), cpu_ticks(self.backend) or 0

    def alive(self):
        return sum(1 for p in self.pids if cpu_ticks(p) is not None)

    def rss_kib(self):
        return sum(daemon_probe.kib(status_fields(p).get("VmRSS")) or 0 for p in self.pids)

    def pss_kib(self):
        """The fleet's proportional set size: shared pages (the binary's code)
        counted once across the fleet, not once per daemon as in VmRSS."""
        total = 0
        for p in self.pids:
            try:
                with open("/proc/%d/smaps_rollup" % p) as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total


def stats(path):
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.02)
    return {"requests": 0, "bytes_up": 0, "bytes_down": 0, "open": 0, "accepted": 0}


def stats_delta(after, before):
    return {k: after[k] - before[k] for k in ("requests", "bytes_up", "bytes_down", "accepted")}


def settle(path, quiet=0.3, limit=5.0):
    """Waits until the proxy's totals stay unchanged for QUIET seconds."""
    deadline = time.monotonic() + limit
    last, since = stats(path), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = stats(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def read(folder, name):
    try:
        with open(os.path.join(folder, name), "rb") as f:
            return f.read()
    except OSError:
        return b""


def wait_for(folder, fd, targets, expected, timeout):
    """Waits until every file in TARGETS holds every bytes string in EXPECTED.
    Returns {name: monotonic arrival time} for those that did within TIMEOUT."""
    pending = set(targets)
    arrived = {}
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + 0.25

    def check(name):
        content = read(folder, name)
        if all(e in content for e in expected):
            arrived[name] = time.monotonic()
            pending.discard(name)

    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        if fd is not None:
            ready = select.select([fd], [], [], max(0.0, min(next_sweep, deadline) - now))[0]
            if ready:
                names = {n.decode() for _m, n in daemon_probe.inotify_events(fd)}
                for name in names & pending:
                    check(name)
        else:
            time.sleep(0.005)
        if time.monotonic() >= next_sweep:
            # The safety net: a write the events missed (a full queue).
            for name in list(pending):
                check(name)
            next_sweep = time.monotonic() + 0.25
    return arrived


def host_choices(keys, rng, count):
    hosts = []
    for domain, entries in gen_data.domains(keys):
        for host, ip, _port in entries:
            hosts.append((domain, host, ip))
    return rng.sample(hosts, count)


def note(text):
    print("[%s]   %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def cmd_run(args):
    fleet = Fleet(args)
    rng = random.Random(args.seed)
    all_dests = [dest_name(d, r) for d in range(args.daemons) for r in range(args.resources)]
    # Changes are written under /services/web: the resources without a prefix.
    targets = [dest_name(d, r) for d in range(args.daemons) for r in range(args.resources)
               if PREFIXES[r % args.prefixes] == ""]
    servers = args.keys // 2
    result = {"daemons": args.daemons, "resources": args.resources, "prefixes": args.prefixes,
              "keys": args.keys, "dests": len(all_dests), "targets": len(targets)}

    # 1. Every dest rendered.
    deadline = time.monotonic() + args.start_timeout
    missing = list(all_dests)
    while missing and time.monotonic() < deadline:
        missing = [n for n in missing if read(args.dest, n).count(b"\n    server ") != servers]
        if missing:
            time.sleep(0.2)
    ready = time.monotonic()
    result["alive"] = fleet.alive()
    if missing:
        result["error"] = "%d of %d dests not rendered after %.0f s" % (
            len(missing), len(all_dests), args.start_timeout)
        print(json.dumps(result))
        return 1
    note("every dest rendered after %.1f s" % (ready - args.since))
    start_stats = settle(args.stats, quiet=1.0, limit=30)
    result["startup"] = {"seconds": ready - args.since, "requests": start_stats["requests"],
                         "bytes_up": start_stats["bytes_up"], "bytes_down": start_stats["bytes_down"],
                         "connections": start_stats["open"]}

    # 2. Idle.
    s0, (f0, b0), t0 = stats(args.stats), fleet.ticks(), time.monotonic()
    time.sleep(args.idle_seconds)
    s1, (f1, b1), t1 = stats(args.stats), fleet.ticks(), time.monotonic()
    span = t1 - t0
    delta = stats_delta(s1, s0)
    result["idle"] = {"seconds": span, "requests": delta["requests"], "bytes_up": delta["bytes_up"],
                      "bytes_down": delta["bytes_down"],
                      "fleet_cpu": 100.0 * (f1 - f0) / CLK_TCK / span,
                      "backend_cpu": 100.0 * (b1 - b0) / CLK_TCK / span,
                      "fleet_rss_kib": fleet.rss_kib(), "fleet_pss_kib": fleet.pss_kib(),
                      "backend_rss_kib": daemon_probe.kib(status_fields(fleet.backend).get("VmRSS"))}

    # 3. The foreign client alone.
    proc = start_foreign(args, args.foreign_seconds, args.foreign_ops)
    result["foreign_idle"] = stop_foreign_after(proc)

    # 4. Single changes.
    note("idle and foreign client done; %d single changes" % args.changes)
    fd = daemon_probe.inotify_folder(os.path.abspath(args.dest))
    client = Client(args.api, args.url)
    chosen = host_choices(args.keys, rng, args.changes + args.burst)
    per_dest, all_times, lost = [], [], 0
    before = settle(args.stats)
    (f0, b0), c0 = fleet.ticks(), time.monotonic()
    for i in range(args.changes):
        domain, host, ip = chosen[i]
        port = args.value_base + i
        expected = [(" %s:%d check" % (ip, port)).encode()]
        if fd is not None:
            list(daemon_probe.inotify_events(fd))
        start = time.monotonic()
        client.put("/services/web/%s/%s/port" % (domain, host), str(port))
        arrived = wait_for(args.dest, fd, targets, expected, args.change_timeout)
        lost += len(targets) - len(arrived)
        delays = [t - start for t in arrived.values()]
        per_dest.extend(delays)
        if len(arrived) == len(targets):
            all_times.append(max(delays))
        time.sleep(max(0.0, args.gap - (time.monotonic() - start)))
    after = settle(args.stats)
    (f1, b1), c1 = fleet.ticks(), time.monotonic()
    delta = stats_delta(after, before)
    result["changes"] = {
        "count": args.changes, "lost": lost,
        "per_dest_p50": median(per_dest), "per_dest_p99": percentile(per_dest, 99),
        "per_dest_max": max(per_dest) if per_dest else None,
        "all_p50": median(all_times), "all_max": max(all_times) if all_times else None,
        "complete": len(all_times),
        "requests": delta["requests"] / args.changes, "bytes_up": delta["bytes_up"] / args.changes,
        "bytes_down": delta["bytes_down"] / args.changes,
        "connections": delta["accepted"] / args.changes,
        "fleet_cpu_s": (f1 - f0) / CLK_TCK / args.changes,
        "backend_cpu_s": (b1 - b0) / CLK_TCK / args.changes,
        "seconds": c1 - c0,
    }

    # 5. A burst the fleet fans out, with the foreign client running.
    note("changes done (%d dest updates lost); a burst of %d writes" % (lost, args.burst))
    burst = chosen[args.changes:]
    expected = [(" %s:%d check" % (ip, args.value_base + 500 + j)).encode()
                for j, (_d, _h, ip) in enumerate(burst)]
    before = settle(args.stats)
    (f0, b0), w0 = fleet.ticks(), time.monotonic()
    proc = start_foreign(args, args.burst_timeout + 30, 10 ** 9)
    if fd is not None:
        list(daemon_probe.inotify_events(fd))
    start = time.monotonic()
    for j, (domain, host, _ip) in enumerate(burst):
        client.put("/services/web/%s/%s/port" % (domain, host), str(args.value_base + 500 + j))
    written = time.monotonic()
    arrived = wait_for(args.dest, fd, targets, expected, args.burst_timeout)
    done = time.monotonic()
    # At least a second of samples, however fast the fan-out was.
    time.sleep(max(0.0, start + 1.0 - done))
    foreign = stop_foreign(proc)
    after = settle(args.stats)
    (f1, b1), w1 = fleet.ticks(), time.monotonic()
    delta = stats_delta(after, before)
    delays = [t - written for t in arrived.values()]
    result["burst"] = {
        "writes": len(burst), "write_seconds": written - start,
        "incomplete": len(targets) - len(arrived),
        "after_last_p50": median(delays), "after_last_max": max(delays) if delays else None,
        "fanout_seconds": done - start,
        "requests": delta["requests"], "bytes_up": delta["bytes_up"], "bytes_down": delta["bytes_down"],
        "fleet_cpu_s": (f1 - f0) / CLK_TCK, "backend_cpu_s": (b1 - b0) / CLK_TCK,
        # Over the whole burst window: the foreign client's start, the
        # writes, the fan-out, at least 1 s, and the settling afterwards.
        "backend_cpu": 100.0 * (b1 - b0) / CLK_TCK / (w1 - w0), "window_seconds": w1 - w0,
        "foreign": foreign,
    }
    result["alive_at_end"] = fleet.alive()
    print(json.dumps(result))
    return 0


def stop_foreign_after(proc):
    """Lets the foreign client run to its own limit (stdin stays open), then
    collects its figures."""
    out = proc.stdout.read()
    proc.wait()
    try:
        return foreign_summary(json.loads(out or b"{}"))
    except ValueError:
        return foreign_summary({})


# ------------------------------------------------------------------ report


def size(n):
    if n is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return "%.3g %s" % (n / scale, unit)
    return "%.0f B" % n


def ms(seconds):
    if seconds is None:
        return "–"
    return "%.0f ms" % (seconds * 1e3) if seconds >= 0.1 else "%.1f ms" % (seconds * 1e3)


def num(value, digits=1):
    return "–" if value is None else "%.*f" % (digits, value)


def cmd_report(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    if not rows:
        print("(no results)")
        return 0

    def cell(r):
        return "%s | %s | %d × %d | %d" % (r["impl"], r["backend"], r["resources"], r["prefixes"], r["daemons"])

    head = "| daemons | backend | resources × prefixes | N |"
    print("#### Load on the backend: start, idle, per change\n")
    print(head + " start: s, requests, bytes ↑/↓ | connections | idle req/s | idle bytes/s ↑/↓ "
          "| per change: requests | per change: bytes ↑/↓ | per change, per daemon ↓ "
          "| backend CPU idle | backend CPU s per change | fleet RSS (PSS) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print("| %s | **%s** |" % (cell(r), r["error"]))
            continue
        s, i, c = r["startup"], r["idle"], r["changes"]
        print("| %s | %.1f s, %d, %s / %s | %d | %.2f | %s / %s | %.1f | %s / %s | %s | %.1f %% | %.3f s | %.0f (%.0f) MiB |" % (
            cell(r), s["seconds"], s["requests"], size(s["bytes_up"]), size(s["bytes_down"]),
            s["connections"], i["requests"] / i["seconds"],
            size(i["bytes_up"] / i["seconds"]), size(i["bytes_down"] / i["seconds"]),
            c["requests"], size(c["bytes_up"]), size(c["bytes_down"]),
            size(c["bytes_down"] / r["daemons"]), i["backend_cpu"], c["backend_cpu_s"],
            i["fleet_rss_kib"] / 1024.0, i.get("fleet_pss_kib", 0) / 1024.0))
    print("\n#### One write → every destination (single changes)\n")
    print(head + " dests per change | per dest p50 | p99 | max | all dests: median | max | lost "
          "| fleet CPU s per change |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            continue
        c = r["changes"]
        print("| %s | %d | %s | %s | %s | %s | %s | %d of %d | %.2f s |" % (
            cell(r), r["targets"], ms(c["per_dest_p50"]), ms(c["per_dest_p99"]), ms(c["per_dest_max"]),
            ms(c["all_p50"]), ms(c["all_max"]), c["lost"], c["count"] * r["targets"], c["fleet_cpu_s"]))
    print("\n#### A foreign client during a burst the fleet fans out\n")
    print(head + " burst: writes, took | fan-out done after last write: p50 / max | incomplete "
          "| requests, bytes ↓ | backend CPU | GET p50 / p99 idle | GET p50 / p99 burst "
          "| PUT p50 / p99 idle | PUT p50 / p99 burst |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            continue
        b, fi, fb = r["burst"], r["foreign_idle"], r["burst"]["foreign"]
        print("| %s | %d, %s | %s / %s | %d | %d, %s | %.0f %% | %s / %s | %s / %s | %s / %s | %s / %s |" % (
            cell(r), b["writes"], ms(b["write_seconds"]), ms(b["after_last_p50"]), ms(b["after_last_max"]),
            b["incomplete"], b["requests"], size(b["bytes_down"]), b["backend_cpu"],
            ms(fi["get"]["p50"]), ms(fi["get"]["p99"]), ms(fb["get"]["p50"]), ms(fb["get"]["p99"]),
            ms(fi["put"]["p50"]), ms(fi["put"]["p99"]), ms(fb["put"]["p50"]), ms(fb["put"]["p99"])))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("confdirs")
    p.add_argument("--root", required=True)
    p.add_argument("--daemons", type=int, required=True)
    p.add_argument("--resources", type=int, default=1)
    p.add_argument("--prefixes", type=int, default=1)
    p.add_argument("--dest", required=True)
    p.add_argument("--template", required=True)

    p = sub.add_parser("load-consul")
    p.add_argument("--url", required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--data-prefix", default="")

    p = sub.add_parser("foreign")
    p.add_argument("--api", choices=("v2", "v3", "consul"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--max-ops", type=int, default=400)
    p.add_argument("--pause", type=float, default=0.002)

    p = sub.add_parser("run")
    p.add_argument("--api", choices=("v2", "v3", "consul"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--pids", required=True)
    p.add_argument("--backend-pid", type=int, required=True)
    p.add_argument("--since", type=float, required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--daemons", type=int, required=True)
    p.add_argument("--resources", type=int, default=1)
    p.add_argument("--prefixes", type=int, default=1)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--start-timeout", type=float, default=180.0)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--foreign-seconds", type=float, default=3.0)
    p.add_argument("--foreign-ops", type=int, default=400)
    p.add_argument("--changes", type=int, default=10)
    p.add_argument("--gap", type=float, default=1.0)
    p.add_argument("--change-timeout", type=float, default=20.0)
    p.add_argument("--burst", type=int, default=50)
    p.add_argument("--burst-timeout", type=float, default=60.0)
    p.add_argument("--value-base", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)

    args = parser.parse_args()
    if args.command == "load-consul":
        load_consul(args.url, args.keys, args.data_prefix)
        return 0
    return {"confdirs": cmd_confdirs, "foreign": cmd_foreign, "run": cmd_run,
            "report": cmd_report}[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
