#!/usr/bin/env python3
"""`confd -onetime -backend etcdv3` before and after the switch to gRPC, side by side.

Starts a private etcd on free loopback ports, loads the seed layout with
gen_data.py (KEYS, default 10000 and 100000), and for each key count runs
each variant ROUNDS times (default 11) in a rotating order, each its own
process, 1 resource (the HAProxy template), the dest folder emptied before
every run:

  before   BEFORE_BIN (a confd built before the switch: the gateway path)
  grpc     AFTER_BIN  (default)
  gateway  AFTER_BIN -etcdv3-api gateway

Prints per variant the median and min-max wall time (around the process),
the median peak RSS (GNU time, /usr/bin/time) and the median CPU etcd spent
per run (/proc/<pid>/stat, utime + stime). Every run's output is checked
(N/2 `server` lines).

    BEFORE_BIN=/tmp/confd-before AFTER_BIN=target/release/confd python3 bench/etcdv3_switch.py
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run(cmd, out_dir, etcd_pid):
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    rss_file = os.path.join(os.path.dirname(out_dir), "rss")
    cpu0 = etcd_cpu(etcd_pid)
    t0 = time.perf_counter()
    # GNU time forks confd from a small process: the child's own rusage
    # of a fork of this Python process would count Python's memory too.
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    cpu = etcd_cpu(etcd_pid) - cpu0
    with open(rss_file) as f:
        rss = int(f.read().split()[-1]) / 1024
    return wall, rss, cpu, proc.stderr.decode(errors="replace")


def main():
    before = os.environ.get("BEFORE_BIN") or sys.exit("set BEFORE_BIN")
    after = os.environ.get("AFTER_BIN", os.path.join(ROOT, "target/release/confd"))
    keys_list = [int(k) for k in os.environ.get("KEYS", "10000 100000").split()]
    rounds = int(os.environ.get("ROUNDS", "11"))
    work = tempfile.mkdtemp(prefix="etcdv3-switch-")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    etcd = subprocess.Popen(
        ["etcd", "--name", "bench", "--data-dir", f"{work}/etcd",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=open(f"{work}/etcd.log", "w"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        confdir, out = f"{work}/confdir", f"{work}/out"
        subprocess.run([sys.executable, f"{ROOT}/bench/gen_data.py", "--resources", "1",
                        "--confdir", confdir, "--dest-dir", out], check=True,
                       stdout=subprocess.DEVNULL)
        base = ["-onetime", "-backend", "etcdv3", "-node", url, "-confdir", confdir]
        variants = {
            "before": [before] + base,
            "grpc": [after] + base,
            "gateway": [after] + base + ["-etcdv3-api", "gateway"],
        }
        print(f"before: {subprocess.run([before, '-version'], capture_output=True, text=True).stdout.splitlines()[0]}")
        print(f"after:  {subprocess.run([after, '-version'], capture_output=True, text=True).stdout.splitlines()[0]}")
        print("| keys | variant | wall median (min–max) | peak RSS | etcd CPU / run |")
        print("|---|---|---|---|---|")
        for keys in keys_list:
            subprocess.run([sys.executable, f"{ROOT}/bench/gen_data.py", "--keys", str(keys),
                            "--etcd", url], check=True, stdout=subprocess.DEVNULL)
            names = list(variants)
            results = {name: [] for name in names}
            for r in range(rounds + 1):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    wall, rss, cpu, stderr = run(variants[name], out, etcd.pid)
                    files = os.listdir(out)
                    text = open(os.path.join(out, files[0])).read() if files else ""
                    if sum(1 for line in text.splitlines() if line.startswith("    server ")) != keys // 2:
                        sys.exit(f"{name}: wrong output\n{stderr}")
                    if r > 0:  # the first round warms caches
                        results[name].append((wall, rss, cpu))
            for name in names:
                walls = [w * 1e3 for w, _, _ in results[name]]
                rss = statistics.median(m for _, m, _ in results[name])
                cpu = statistics.median(c * 1e3 for _, _, c in results[name])
                print(f"| {keys:,} | {name} | {statistics.median(walls):.0f} ms "
                      f"({min(walls):.0f}–{max(walls):.0f}) | {rss:.1f} MiB | {cpu:.0f} ms |")
    finally:
        etcd.terminate()
        etcd.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
