#!/usr/bin/env python3
"""Cost of -backend redis against a private redis-server on a free loopback port.

For each key count of the seed layout /services/web/<domain>/<host>/{ip,port}
(string keys, default separator), loaded with pipelined SETs:

  1. one-shot: `confd -onetime -backend redis` with 1 resource (the HAProxy
     template), RUNS timed runs after one untimed, dest emptied before each
     (so each run renders and writes); median and min-max wall time;
  2. change -> file under `-watch`: CHANGES single-key changes (the port of a
     random host), GAP s apart, each timed from just before the SET is sent
     until dest holds the new value (dest polled every 0.5 ms); median, p95.
     String changes are applied from the keyspace notification without
     reading the prefix; with HASH=1 the hosts are hashes instead
     (HSET .../<host> ip port), whose changes re-read the prefix.

Usage: bench/redis.py [--keys 1000,10000,100000] [--runs 5] [--changes 30]
       [--gap 0.4] [--hash] [--confd target/release/confd]
Standard library only; needs redis-server on PATH. Everything it starts is
stopped on exit.
"""

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_data  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    """Pipelined commands; replies are read and only counted."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def reply(self):
        line = self.file.readline()
        kind = line[:1]
        if kind == b"-":
            raise RuntimeError(line.decode().strip())
        if kind == b"$":
            n = int(line[1:])
            return self.file.read(n + 2)[:-2] if n >= 0 else None
        if kind == b"*":
            return [self.reply() for _ in range(int(line[1:]))]
        return line[1:].strip()

    def pipeline(self, commands):
        for i in range(0, len(commands), 1000):
            chunk = commands[i:i + 1000]
            self.sock.sendall(b"".join(encode(*c) for c in chunk))
            for _ in chunk:
                self.reply()


def load(client, keys, as_hash):
    client.pipeline([("FLUSHDB",)])
    if as_hash:
        commands = []
        for domain, hosts in gen_data.domains(keys):
            for host, ip, port in hosts:
                commands.append(("HSET", "/services/web/%s/%s" % (domain, host), "ip", ip, "port", port))
    else:
        commands = [("SET", k, v) for k, v in gen_data.pairs(keys)]
    client.pipeline(commands)


def one_shot(confd, port, confdir, dest_dir, runs):
    times = []
    for i in range(runs + 1):
        shutil.rmtree(dest_dir, ignore_errors=True)
        os.makedirs(dest_dir)
        start = time.perf_counter()
        subprocess.run([confd, "-onetime", "-backend", "redis", "-node", "127.0.0.1:%d" % port,
                        "-confdir", confdir, "-log-level", "error"], check=True)
        elapsed = time.perf_counter() - start
        if i > 0:
            times.append(elapsed)
    return times


def watch_latency(confd, client, port, confdir, dest, keys, changes, gap, as_hash, log):
    daemon = subprocess.Popen([confd, "-watch", "-backend", "redis", "-node", "127.0.0.1:%d" % port,
                               "-confdir", confdir, "-log-level", "debug"],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 60
        while not os.path.exists(dest) and time.time() < deadline:
            time.sleep(0.01)
        # The first read, then the subscription's catch-up read.
        while time.time() < deadline:
            log.flush()
            with open(log.name) as f:
                if f.read().count("read snapshot") >= 2:
                    break
            time.sleep(0.05)
        time.sleep(0.5)
        log.flush()
        with open(log.name) as f:
            reads_before = f.read().count("read snapshot")
        hosts = [(d, h) for d, hs in gen_data.domains(keys) for h, _, _ in hs]
        rng = random.Random(7)
        latencies = []
        for n in range(changes):
            domain, host = rng.choice(hosts)
            port_value = str(20000 + n)
            key = "/services/web/%s/%s" % (domain, host)
            command = ("HSET", key, "port", port_value) if as_hash else ("SET", key + "/port", port_value)
            needle = (":" + port_value).encode()
            start = time.perf_counter()
            client.pipeline([command])
            limit = start + 10
            seen = None
            while True:
                # The file is replaced by a rename: read it only when its
                # inode or mtime moved, so polling costs a stat, not a read.
                st = os.stat(dest)
                if (st.st_ino, st.st_mtime_ns) != seen:
                    seen = (st.st_ino, st.st_mtime_ns)
                    with open(dest, "rb") as f:
                        if needle in f.read():
                            break
                if time.perf_counter() > limit:
                    log.flush()
                    with open(log.name) as f:
                        tail = f.readlines()[-40:]
                    raise RuntimeError("change %d (%s) not seen within 10 s; confd's log ends:\n%s"
                                       % (n, " ".join(command), "".join(tail)))
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - start)
            time.sleep(gap)
        log.flush()
        with open(log.name) as f:
            reads = f.read().count("read snapshot") - reads_before
        return latencies, reads
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def ms(seconds):
    return "%.1f ms" % (seconds * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.4)
    parser.add_argument("--hash", action="store_true", help="hosts as hashes (changes re-read the prefix)")
    parser.add_argument("--confd", default="target/release/confd")
    args = parser.parse_args()
    confd = os.path.abspath(args.confd)
    work = tempfile.mkdtemp(prefix="confd-redis-bench-")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", work,
                               "--save", "", "--appendonly", "no", "--notify-keyspace-events", "KA",
                               "--logfile", os.path.join(work, "redis.log")])
    try:
        deadline = time.time() + 10
        while True:
            try:
                client = Client(port)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
        print("redis-server %s, %s keys, 1 resource\n" % (version, "hashes" if args.hash else "string"))
        print("| keys | one-shot median (min-max) | change -> file median | p95 | prefix reads during the changes |")
        print("|---|---|---|---|---|")
        confdir = os.path.join(work, "confdir")
        dest_dir = os.path.join(work, "out")
        gen_data.write_confdir(confdir, dest_dir, 1, False)
        dest = os.path.join(dest_dir, "haproxy-000.cfg")
        for keys in [int(k) for k in args.keys.split(",")]:
            with open(os.path.join(work, "confd-%d.log" % keys), "w") as log:
                load(client, keys, args.hash)
                shot = one_shot(confd, port, confdir, dest_dir, args.runs)
                lat, reads = watch_latency(confd, client, port, confdir, dest, keys, args.changes, args.gap,
                                           args.hash, log)
                lat.sort()
                p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
                print("| %d | %s (%s-%s) | %s | %s | %d of %d |" % (
                    keys, ms(statistics.median(shot)), ms(min(shot)), ms(max(shot)),
                    ms(statistics.median(lat)), ms(p95), reads, len(lat)))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
