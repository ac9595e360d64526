#!/usr/bin/env python3
"""Measuring helpers for bench/daemon.sh (python3 standard library only).

Subcommands:

  proxy    --listen PORT --target PORT --log FILE [--stats FILE]
           A counting TCP proxy on 127.0.0.1:PORT in front of 127.0.0.1:TARGET.
           It parses the client->server byte stream of every connection as
           HTTP/1.x requests (request line, headers, Content-Length or chunked
           body) and logs one line per request: "MONOTONIC CONN METHOD PATH".
           A long-poll or streaming watch is one request, logged when sent.
           HTTP/2 (gRPC) connections are logged as one "H2" line, then one
           "H2-HEADERS" line per HEADERS frame the client sends (a stream
           opened: a call, or a watch stream). --stats keeps the totals
           (requests, bytes each way, connections) in a JSON file.
  latency  --api v2|v3 --url URL --keys N --dest FILE [--changes 50 --gap 0.4
           --timeout 10 --max-seconds S --seed 1]
           Change-to-file latency: sets the port of a random host, timing from
           just before the request is sent to the moment DEST (watched with
           inotify on its folder, re-read on every rename/close-write of it and
           after 50 ms without one; without inotify, stat every 0.5 ms and
           re-read on a change) contains "IP:PORT". The next change goes out
           ≥ GAP after the previous one (and after it was seen). Prints JSON.
  readcost --api v2|v3 --url URL [--root /services/web --runs 3]
           One read of ROOT the way confd asks for it (v2: recursive quorum
           GET; v3: range pages of 5,000 keys), request to last byte; median.
  report   --results FILE
           Markdown tables from daemon.sh's results.jsonl.
  idle     --pid PID --since MONO --at 30 --window 10
           Waits until SINCE+AT (time.monotonic()), prints JSON: VmRSS, VmHWM,
           threads, and CPU % over the last WINDOW seconds (utime+stime).
  window   --pid PID [--etcd-pid PID] --log FILE --seconds 10 [--since MONO]
           Counts the proxy's requests and the CPU of PID (and etcd) over the
           next SECONDS; also the requests since SINCE. Prints JSON.
  burst    --api v2|v3 --url URL --keys N --dest FILE --reloads FILE
           [--writes 500 --timeout 30]
           Writes WRITES new keys (new domains burstNN.example.com, ip then port
           for each host) one after the other as fast as etcd acknowledges
           them, waits until DEST has every new server line (or TIMEOUT), then
           for quiet (no reload for 1 s), and prints JSON: reloads counted in
           RELOADS (one line per reload_cmd run), missing keys, timings.
  wait-file --dest FILE --servers N --timeout S
           Waits until DEST has N "    server " lines.
"""

import argparse
import asyncio
import base64
import ctypes
import http.client
import json
import math
import os
import random
import select
import signal
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_data  # noqa: E402  (same folder)

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- /proc


def cpu_ticks(pid):
    """utime + stime of PID, in clock ticks (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime 15.
    return int(fields[11]) + int(fields[12])


def status_fields(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                name, _, value = line.partition(":")
                out[name] = value.strip()
    except OSError:
        pass
    return out


def kib(value):
    return int(value.split()[0]) if value else None


# ------------------------------------------------------------ HTTP writes


class Writer:
    """One keep-alive connection to etcd that sets keys through v2 or v3."""

    def __init__(self, api, url):
        parsed = urllib.parse.urlsplit(url)
        self.api = api
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 2379, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(6, 1, 1)  # TCP_NODELAY

    def send(self, key, value):
        """Sends the write without waiting for the answer."""
        if self.api == "v2":
            self.conn.request(
                "PUT", "/v2/keys" + urllib.parse.quote(key, safe="/"),
                body="value=" + urllib.parse.quote(value, safe=""),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                               "value": base64.b64encode(value.encode()).decode()})
            self.conn.request("POST", "/v3/kv/put", body=body,
                              headers={"Content-Type": "application/json"})

    def finish(self):
        response = self.conn.getresponse()
        body = response.read()
        if response.status not in (200, 201):
            raise SystemExit("etcd write failed: %d %s" % (response.status, body[:200]))

    def put(self, key, value):
        self.send(key, value)
        self.finish()

    def fileno(self):
        return self.conn.sock.fileno()


# --------------------------------------------------------------- inotify

IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100


def inotify_folder(folder):
    """A non-blocking inotify descriptor watching FOLDER for files written or
    renamed into it, or None when inotify is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, folder.encode(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0:
            os.close(fd)
            return None
        return fd
    except (OSError, AttributeError):
        return None


def inotify_events(fd):
    """Yields (mask, file name as bytes) for every event queued on FD."""
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset + 16 <= len(data):
            _wd, mask, _cookie, length = (int.from_bytes(data[offset + i:offset + i + 4], "little")
                                          for i in (0, 4, 8, 12))
            name = data[offset + 16:offset + 16 + length].rstrip(b"\0")
            offset += 16 + length
            yield mask, name


class DestWatch:
    """inotify on DEST's folder; `drain()` says whether DEST was replaced or
    written. Falls back to stat polling when inotify is unavailable."""

    def __init__(self, dest):
        self.dest = dest
        self.name = os.path.basename(dest).encode()
        self.replaced = 0
        self.fd = inotify_folder(os.path.dirname(os.path.abspath(dest)))
        self.last_stat = self._stat()

    def _stat(self):
        try:
            st = os.stat(self.dest)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def drain(self):
        """True when DEST changed since the last call."""
        if self.fd is None:
            now = self._stat()
            changed = now != self.last_stat
            self.last_stat = now
            return changed
        hit = False
        for mask, name in inotify_events(self.fd):
            if name == self.name:
                hit = True
                if mask & IN_MOVED_TO:
                    self.replaced += 1
        return hit

    def content(self):
        try:
            with open(self.dest, "rb") as f:
                return f.read()
        except OSError:
            return b""


def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values):
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


# ------------------------------------------------------------- latency


def cmd_latency(args):
    hosts = [(d, h, ip) for d, hs in gen_data.domains(args.keys) for h, ip, _port in hs]
    rng = random.Random(args.seed)
    watch = DestWatch(args.dest)
    writer = Writer(args.api, args.url)
    poller = select.poll()
    if watch.fd is not None:
        poller.register(watch.fd, select.POLLIN)
    latencies, acks, timeouts = [], [], 0
    started = time.monotonic()
    replaced_before = watch.replaced
    next_at = time.perf_counter()
    for i in range(args.changes):
        if time.monotonic() - started > args.max_seconds:
            break
        domain, host, ip = rng.choice(hosts)
        port = str(20000 + i)
        needle = ("%s:%s" % (ip, port)).encode()
        key = "/services/web/%s/%s/port" % (domain, host)
        while time.perf_counter() < next_at:
            time.sleep(min(0.005, max(0.0, next_at - time.perf_counter())))
        watch.drain()
        t0 = time.perf_counter()
        writer.send(key, port)
        sock = writer.fileno()
        poller.register(sock, select.POLLIN)
        acked = seen = None
        deadline = t0 + args.timeout
        last_look = t0
        while seen is None or acked is None:
            now = time.perf_counter()
            if now >= deadline:
                break
            wait_ms = 0.5 if watch.fd is None else min(50.0, (deadline - now) * 1000)
            for fd, _event in poller.poll(wait_ms):
                if fd == sock and acked is None:
                    writer.finish()
                    acked = time.perf_counter() - t0
                    poller.unregister(sock)
            if seen is None:
                # On every inotify event for DEST; and, as a safety net,
                # after 50 ms without one.
                if watch.drain() or time.perf_counter() - last_look >= 0.05:
                    last_look = time.perf_counter()
                    if needle in watch.content():
                        seen = time.perf_counter() - t0
        if acked is None:
            try:
                poller.unregister(sock)
            except KeyError:
                pass
            writer.finish()
        if seen is None:
            timeouts += 1
        else:
            latencies.append(seen)
        acks.append(acked if acked is not None else time.perf_counter() - t0)
        next_at = max(t0 + args.gap, time.perf_counter() + 0.05)
    time.sleep(0.3)
    watch.drain()
    result = {
        "changes": len(latencies) + timeouts,
        "timeouts": timeouts,
        "median_ms": ms(median(latencies)),
        "p95_ms": ms(percentile(latencies, 95)),
        "min_ms": ms(min(latencies) if latencies else None),
        "max_ms": ms(max(latencies) if latencies else None),
        "ack_median_ms": ms(median(acks)),
        "renames": (watch.replaced - replaced_before) if watch.fd is not None else None,
        "inotify": watch.fd is not None,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


# ------------------------------------------------------------------ idle


def cmd_idle(args):
    start_at = args.since + args.at - args.window
    end_at = args.since + args.at
    while time.monotonic() < start_at:
        time.sleep(min(0.5, start_at - time.monotonic()))
    c0, t0 = cpu_ticks(args.pid), time.monotonic()
    while time.monotonic() < end_at:
        time.sleep(min(0.5, end_at - time.monotonic()))
    c1, t1 = cpu_ticks(args.pid), time.monotonic()
    st = status_fields(args.pid)
    if c0 is None or c1 is None or not st:
        print(json.dumps({"error": "process %d is gone" % args.pid}))
        return 1
    print(json.dumps({
        "rss_kib": kib(st.get("VmRSS")),
        "hwm_kib": kib(st.get("VmHWM")),
        "anon_kib": kib(st.get("RssAnon")),
        "file_kib": kib(st.get("RssFile")),
        "threads": int(st.get("Threads", "0")),
        "cpu_pct": round(100.0 * (c1 - c0) / CLK_TCK / (t1 - t0), 2),
        "cpu_ticks": c1 - c0,
        "window_s": round(t1 - t0, 2),
        "age_s": round(t1 - args.since, 1),
    }))
    return 0


# ---------------------------------------------------------------- window


def read_log(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split(None, 3)
                if len(parts) == 4:
                    out.append((float(parts[0]), int(parts[1]), parts[2], parts[3].strip()))
    except OSError:
        pass
    return out


def kind(method, path):
    if path.startswith("/v3/watch") or "wait=true" in path:
        return "watch"
    if path.startswith("/v3/kv/range") or (method == "GET" and path.startswith("/v2/keys")):
        return "read"
    return method + " " + path.split("?")[0]


def clusters(times, gap=0.3):
    """Groups of request times separated by more than GAP seconds: one per
    pass in -interval mode. Returns [(first, count), ...]."""
    out = []
    for t in sorted(times):
        if out and t - out[-1][2] <= gap:
            out[-1][1] += 1
            out[-1][2] = t
        else:
            out.append([t, 1, t])
    return [(first, count) for first, count, _last in out]


def cmd_window(args):
    c0, e0, t0 = cpu_ticks(args.pid), cpu_ticks(args.etcd_pid) if args.etcd_pid else None, time.monotonic()
    time.sleep(args.seconds)
    c1, e1, t1 = cpu_ticks(args.pid), cpu_ticks(args.etcd_pid) if args.etcd_pid else None, time.monotonic()
    time.sleep(0.2)  # let the proxy log what it saw before t1
    log = read_log(args.log)
    inside = [r for r in log if t0 <= r[0] <= t1]
    since = [r for r in log if args.since is not None and r[0] >= args.since]
    kinds, kinds_since = {}, {}
    for _t, _c, method, path in inside:
        k = kind(method, path)
        kinds[k] = kinds.get(k, 0) + 1
    for _t, _c, method, path in since:
        k = kind(method, path)
        kinds_since[k] = kinds_since.get(k, 0) + 1
    span = t1 - t0
    # Passes: clusters of reads since the start (so none is cut by the window),
    # counted when they start inside it.
    passes = clusters([r[0] for r in (since or inside) if kind(r[2], r[3]) == "read"])
    st = status_fields(args.pid)
    result = {
        "seconds": round(span, 2),
        "requests": len(inside),
        "req_per_s": round(len(inside) / span, 2),
        "kinds": kinds,
        "passes": sum(1 for first, _n in passes if t0 <= first <= t1),
        "reads_per_pass": median([n for _first, n in passes]),
        "connections": len({r[1] for r in inside}),
        "requests_since_start": len(since) if args.since is not None else None,
        "kinds_since_start": kinds_since,
        "cpu_pct": None if c0 is None or c1 is None else round(100.0 * (c1 - c0) / CLK_TCK / span, 2),
        "etcd_cpu_pct": None if e0 is None or e1 is None else round(100.0 * (e1 - e0) / CLK_TCK / span, 2),
        "rss_kib": kib(st.get("VmRSS")),
        "threads": int(st.get("Threads", "0") or 0),
    }
    print(json.dumps(result))
    return 0


# ----------------------------------------------------------------- burst


def burst_hosts(writes):
    """(domain, host, ip, port) for WRITES/2 new hosts, 10 per new domain."""
    hosts = []
    for n in range(writes // 2):
        d, h = divmod(n, gen_data.HOSTS_PER_DOMAIN)
        hosts.append(("burst%02d.example.com" % d, "web%d" % (h + 1),
                      "10.250.%d.%d" % (d, h + 1), str(9000 + h + 1)))
    return hosts


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def cmd_burst(args):
    hosts = burst_hosts(args.writes)
    writer = Writer(args.api, args.url)
    # Quiet first: no reload for 1 s.
    stable_since, last = time.monotonic(), count_lines(args.reloads)
    limit = time.monotonic() + 15
    while time.monotonic() - stable_since < 1.0 and time.monotonic() < limit:
        time.sleep(0.05)
        now = count_lines(args.reloads)
        if now != last:
            last, stable_since = now, time.monotonic()
    before = count_lines(args.reloads)
    t0 = time.monotonic()
    for domain, host, ip, port in hosts:
        base = "/services/web/%s/%s" % (domain, host)
        writer.put(base + "/ip", ip)
        writer.put(base + "/port", port)
    t_written = time.monotonic()
    needles = [("server %s %s:%s check" % (host, ip, port)).encode() for _d, host, ip, port in hosts]
    deadline = t_written + args.timeout
    missing = len(needles)
    complete_at = None
    while time.monotonic() < deadline:
        try:
            with open(args.dest, "rb") as f:
                text = f.read()
        except OSError:
            text = b""
        missing = sum(1 for n in needles if n not in text)
        if missing == 0:
            complete_at = time.monotonic()
            break
        time.sleep(0.005)
    # Then quiet: no new reload for 1 s (at most 10 s more).
    stable_since, last = time.monotonic(), count_lines(args.reloads)
    limit = time.monotonic() + 10
    while time.monotonic() - stable_since < 1.0 and time.monotonic() < limit:
        time.sleep(0.05)
        now = count_lines(args.reloads)
        if now != last:
            last, stable_since = now, time.monotonic()
    t_quiet = time.monotonic()
    requests = None
    if args.log:
        time.sleep(0.2)
        requests = {}
        for t, _c, method, path in read_log(args.log):
            if t0 <= t <= t_quiet:
                k = kind(method, path)
                requests[k] = requests.get(k, 0) + 1
    with open(args.dest, "rb") as f:
        final = f.read()
    missing_final = sum(1 for n in needles if n not in final)
    servers = final.count(b"\n    server ")
    print(json.dumps({
        "writes": 2 * len(hosts),
        "write_seconds": round(t_written - t0, 3),
        "reloads": count_lines(args.reloads) - before,
        "missing_keys_final": 2 * missing_final,
        "complete_after_last_write_ms": None if complete_at is None else round((complete_at - t_written) * 1000, 1),
        "server_lines": servers,
        "expected_server_lines": args.keys // 2 + len(hosts),
        "requests": requests,
    }))
    return 0


# ------------------------------------------------------------- wait-file


def cmd_wait_file(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            with open(args.dest, "rb") as f:
                if f.read().count(b"\n    server ") == args.servers:
                    return 0
        except OSError:
            pass
        time.sleep(0.02)
    print("wait-file: %s did not reach %d server lines in %.0f s" % (args.dest, args.servers, args.timeout),
          file=sys.stderr)
    return 1


# ----------------------------------------------------------------- proxy


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_HEADERS = 0x1


def cmd_proxy(args):
    log = open(args.log, "a", buffering=1)
    counter = [0]
    # Totals since the proxy started: requests (HTTP/1.x request heads and
    # HTTP/2 HEADERS frames from the client, i.e. streams opened), bytes in
    # each direction, connections open and accepted.
    totals = {"requests": 0, "bytes_up": 0, "bytes_down": 0, "open": 0, "accepted": 0}
    try:
        import resource  # a fleet keeps hundreds of connections open (2 fds each)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass

    def request(conn, method, path):
        totals["requests"] += 1
        log.write("%.6f %d %s %s\n" % (time.monotonic(), conn, method, path))

    async def pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                totals["bytes_down"] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def client_to_server(reader, writer, conn):
        buf = b""
        state, remaining = "head", 0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                totals["bytes_up"] += len(data)
                writer.write(data)
                buf += data
                while True:
                    if state == "head":
                        if buf.startswith(H2_PREFACE[:len(buf)]) and buf:
                            if len(buf) < len(H2_PREFACE):
                                break
                            request(conn, "H2", "-")
                            buf = buf[len(H2_PREFACE):]
                            state = "h2"
                            continue
                        end = buf.find(b"\r\n\r\n")
                        if end < 0:
                            break
                        head = buf[:end].decode("latin-1")
                        buf = buf[end + 4:]
                        lines = head.split("\r\n")
                        parts = lines[0].split(" ")
                        method = parts[0] if parts else "?"
                        path = parts[1] if len(parts) > 1 else "?"
                        request(conn, method, path)
                        headers = {}
                        for line in lines[1:]:
                            name, _, value = line.partition(":")
                            headers[name.strip().lower()] = value.strip()
                        if "chunked" in headers.get("transfer-encoding", "").lower():
                            state = "chunk-size"
                        elif int(headers.get("content-length", "0") or 0) > 0:
                            state, remaining = "body", int(headers["content-length"])
                    elif state == "body":
                        take = min(remaining, len(buf))
                        buf, remaining = buf[take:], remaining - take
                        if remaining:
                            break
                        state = "head"
                    elif state == "chunk-size":
                        end = buf.find(b"\r\n")
                        if end < 0:
                            break
                        size = int(buf[:end].split(b";")[0] or b"0", 16)
                        buf = buf[end + 2:]
                        state, remaining = ("chunk-data", size + 2) if size else ("trailer", 0)
                    elif state == "chunk-data":
                        take = min(remaining, len(buf))
                        buf, remaining = buf[take:], remaining - take
                        if remaining:
                            break
                        state = "chunk-size"
                    elif state == "trailer":
                        end = buf.find(b"\r\n")
                        if end < 0:
                            break
                        buf = buf[end + 2:]
                        if end == 0:
                            state = "head"
                    else:  # h2: 9-byte frame headers; a client HEADERS frame opens a stream
                        if len(buf) < 9:
                            break
                        length = int.from_bytes(buf[0:3], "big")
                        if len(buf) < 9 + length:
                            break
                        if buf[3] == H2_HEADERS:
                            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                            request(conn, "H2-HEADERS", "stream=%d" % stream)
                        buf = buf[9 + length:]
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def handle(reader, writer):
        counter[0] += 1
        conn = counter[0]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", args.target)
        except OSError:
            writer.close()
            return
        totals["accepted"] += 1
        totals["open"] += 1
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(6, 1, 1)  # TCP_NODELAY
        try:
            await asyncio.gather(client_to_server(reader, up_writer, conn), pipe(up_reader, writer))
        finally:
            totals["open"] -= 1

    async def write_stats():
        # The totals, rewritten atomically every 50 ms while they change, so
        # that another process can take differences over any window.
        last = None
        while True:
            now = dict(totals)
            if now != last:
                tmp = args.stats + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(now, f)
                os.replace(tmp, args.stats)
                last = now
            await asyncio.sleep(0.05)

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", args.listen, backlog=1024)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stats = asyncio.ensure_future(write_stats()) if args.stats else None
        async with server:
            await stop.wait()
        if stats is not None:
            stats.cancel()

    asyncio.run(main())
    return 0


# -------------------------------------------------------------- readcost


def cmd_readcost(args):
    """What one read of ROOT costs at etcd, the way confd asks for it (v2: one
    recursive quorum GET; v3: ranges of 5,000 keys), request to last byte,
    without parsing (v3 pages are parsed untimed to find the next key)."""
    parsed = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 2379, timeout=60)
    times, sizes = [], []
    for _ in range(args.runs):
        spent, size = 0.0, 0
        if args.api == "v2":
            t = time.perf_counter()
            conn.request("GET", "/v2/keys%s?recursive=true&quorum=true" % urllib.parse.quote(args.root))
            body = conn.getresponse().read()
            spent, size = time.perf_counter() - t, len(body)
        else:
            key, end = args.root.encode(), (args.root + "0").encode()
            while True:
                request = json.dumps({"key": base64.b64encode(key).decode(),
                                      "range_end": base64.b64encode(end).decode(), "limit": 5000})
                t = time.perf_counter()
                conn.request("POST", "/v3/kv/range", body=request, headers={"Content-Type": "application/json"})
                body = conn.getresponse().read()
                spent += time.perf_counter() - t
                size += len(body)
                page = json.loads(body)
                if not page.get("more") or not page.get("kvs"):
                    break
                key = base64.b64decode(page["kvs"][-1]["key"]) + b"\0"
        times.append(spent)
        sizes.append(size)
    print(json.dumps({"read_ms": ms(median(times)), "read_bytes": sizes[-1]}))
    return 0


# ---------------------------------------------------------------- report

GO_LATENCY = {1000: "17 ms / 24 ms", 10000: "160 ms / 256 ms", 100000: "≈ 11.7 s"}
TARGET_LATENCY_MS = {1000: 5, 10000: 10, 100000: 100}
GO_REQUESTS = {1000: "9 req/s, 9.6 % CPU", 10000: "4 req/s, 63 % CPU"}
BACKEND_NAME = {"etcd": "`etcd` (v2)", "etcdv3": "`etcdv3`"}


def group(n):
    return "{:,}".format(n)


def fmt(value, unit="", digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return ("%." + str(digits) + "f%s") % (value, unit)
    return "%s%s" % (value, unit)


def fmt_ms(value):
    if value is None:
        return "–"
    if value >= 1000:
        return "%.2f s" % (value / 1000)
    if value >= 100:
        return "%.0f ms" % value
    if value >= 10:
        return "%.1f ms" % value
    return "%.2f ms" % value


def size_text(n):
    if n is None:
        return "?"
    if n >= 1 << 20:
        return "%.1f MB" % (n / 1e6)
    return "%.0f KB" % (n / 1e3)


def kinds_text(kinds):
    if not kinds:
        return "–"
    return ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items()))


def cmd_report(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    out = []

    lat = [r for r in rows if r["part"] == "latency"]
    if lat:
        out.append("#### 1. Change → file, `-watch`, 1 resource (HAProxy template over /services/web)")
        out.append("")
        out.append("| backend | keys | median | p95 | min–max | write acknowledged | one read of the prefix | "
                   "changes | renders seen | Go confd (median / p95) | target | met |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in lat:
            target = TARGET_LATENCY_MS.get(r["keys"])
            met = "–"
            if target is not None and r.get("median_ms") is not None:
                met = "yes" if r["median_ms"] < target and not r["timeouts"] else "**no**"
            changes = "%d" % r["changes"]
            if r["timeouts"]:
                changes += " (%d timed out)" % r["timeouts"]
            read = "–"
            if r.get("read_ms") is not None:
                read = "%s (%s)" % (fmt_ms(r["read_ms"]), size_text(r.get("read_bytes")))
            out.append("| %s | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | < %s ms | %s |" % (
                BACKEND_NAME.get(r["backend"], r["backend"]), group(r["keys"]),
                fmt_ms(r["median_ms"]), fmt_ms(r["p95_ms"]), fmt_ms(r["min_ms"]), fmt_ms(r["max_ms"]),
                fmt_ms(r["ack_median_ms"]), read, changes, fmt(r.get("renames")),
                GO_LATENCY.get(r["keys"], "–"), target, met))
        out.append("")

    idle = [r for r in rows if r["part"] == "idle"]
    if idle:
        out.append("#### 2. Idle daemon, `-watch`, 1 resource, %s keys" % group(idle[0]["keys"]))
        out.append("")
        out.append("| backend | age | VmRSS | of which anon / file | VmHWM | CPU over the last 10 s | threads | "
                   "Go confd | target | met |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in idle:
            if "error" in r:
                out.append("| %s | %s | | | | | | | | |" % (r["backend"], r["error"]))
                continue
            met = "yes" if r["rss_kib"] < 10 * 1024 and r["cpu_pct"] < 0.5 else "**no**"
            split = "–"
            if r.get("anon_kib") is not None:
                split = "%.1f / %.1f MiB" % (r["anon_kib"] / 1024, r["file_kib"] / 1024)
            out.append("| %s | %.0f s | %.1f MiB | %s | %.1f MiB | %.2f %% (%d ticks) | %d | 32 MiB, 0 %%, 8 threads | "
                       "< 10 MiB, ≈ 0 %% | %s |" % (
                           BACKEND_NAME.get(r["backend"], r["backend"]), r["age_s"], r["rss_kib"] / 1024, split,
                           r["hwm_kib"] / 1024, r["cpu_pct"], r["cpu_ticks"], r["threads"], met))
        out.append("")

    req = [r for r in rows if r["part"] == "requests"]
    if req:
        out.append("#### 3. Requests to etcd, 10 resources, over %.0f s" % req[0]["seconds"])
        out.append("")
        out.append("| backend | keys | prefixes | mode | requests/s | passes in window | per pass | "
                   "what (in the window) | since start | confd CPU | etcd CPU | confd RSS | Go confd |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in req:
            per_pass = "–"
            if r["passes"] and r.get("reads_per_pass") is not None:
                per_pass = "%g read%s" % (r["reads_per_pass"], "" if r["reads_per_pass"] == 1 else "s")
            go = GO_REQUESTS.get(r["keys"], "–") if r["mode"] == "-interval 1" and r["layout"] == "all" else ""
            out.append("| %s | %s | %s | `%s` | %.1f | %d | %s | %s | %s | %s | %s | %.1f MiB | %s |" % (
                BACKEND_NAME.get(r["backend"], r["backend"]), group(r["keys"]), r["layout_text"], r["mode"],
                r["req_per_s"], r["passes"], per_pass, kinds_text(r.get("kinds")),
                kinds_text(r.get("kinds_since_start")), fmt(r.get("cpu_pct"), " %"),
                fmt(r.get("etcd_cpu_pct"), " %"), (r.get("rss_kib") or 0) / 1024, go))
        out.append("")

    burst = [r for r in rows if r["part"] == "burst"]
    if burst:
        out.append("#### 4. Burst: %d writes as fast as etcd acknowledges them, `-watch`, 1 resource, %s keys"
                   % (burst[0]["writes"], group(burst[0]["keys"])))
        out.append("")
        out.append("| backend | writes took | reloads | failed renders | missing keys at the end | "
                   "server lines (expected) | complete after the last write | confd's requests during it | "
                   "Go confd | target | met |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in burst:
            met = "yes" if r["reloads"] <= 5 and r["missing_keys_final"] == 0 else "**no**"
            out.append("| %s | %.2f s | %d | %s | %d | %d (%d) | %s | %s | 21–53 reloads | ≤ 5, none missing | %s |" % (
                BACKEND_NAME.get(r["backend"], r["backend"]), r["write_seconds"], r["reloads"],
                fmt(r.get("failed_renders")),
                r["missing_keys_final"], r["server_lines"], r["expected_server_lines"],
                fmt_ms(r["complete_after_last_write_ms"]), kinds_text(r.get("requests")), met))
        out.append("")
    print("\n".join(out))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("proxy")
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--stats", help="keep the totals (requests, bytes each way, connections) "
                   "in this JSON file, rewritten every 50 ms")

    p = sub.add_parser("latency")
    p.add_argument("--api", choices=("v2", "v3"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--gap", type=float, default=0.4)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--max-seconds", type=float, default=1e9)
    p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("idle")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--since", type=float, required=True)
    p.add_argument("--at", type=float, default=30.0)
    p.add_argument("--window", type=float, default=10.0)

    p = sub.add_parser("window")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--etcd-pid", type=int)
    p.add_argument("--log", required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--since", type=float)

    p = sub.add_parser("burst")
    p.add_argument("--api", choices=("v2", "v3"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--reloads", required=True)
    p.add_argument("--writes", type=int, default=500)
    p.add_argument("--log", help="the proxy's log, to count confd's requests during the burst")
    p.add_argument("--timeout", type=float, default=30.0)

    p = sub.add_parser("wait-file")
    p.add_argument("--dest", required=True)
    p.add_argument("--servers", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)

    p = sub.add_parser("readcost")
    p.add_argument("--api", choices=("v2", "v3"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--root", default="/services/web")
    p.add_argument("--runs", type=int, default=3)

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)

    sub.add_parser("now")

    args = parser.parse_args()
    if args.command == "now":
        print("%.6f" % time.monotonic())
        return 0
    return {
        "proxy": cmd_proxy,
        "latency": cmd_latency,
        "idle": cmd_idle,
        "window": cmd_window,
        "burst": cmd_burst,
        "wait-file": cmd_wait_file,
        "report": cmd_report,
        "readcost": cmd_readcost,
    }[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
