#!/usr/bin/env python3
"""One-shot memory and time of the networked backends next to the backend's
own time to serve the same read (bench/README.md, "One-shot memory: answers
parsed as a stream").

For each backend (etcd v2, etcdv3, consul) and each binary, runs
`confd -onetime -backend B -node URL -confdir DIR` RUNS times, interleaved
with the other binaries and with curl sending the very same request(s):
  etcd    GET  /v2/keys/services/web?recursive=true&quorum=true
  etcdv3  POST /v3/kv/range, the pages confd sends (limit 5000, pinned to the
          first page's revision), curl times summed
  consul  GET  /v1/kv/services/web?recurse=true
Prints, per backend and binary: the answer's size, median peak RSS
(GNU time's %M), RSS / answer, median wall time, median time until the read was
done ("read snapshot" in the debug log), curl's median time, and the ratios.

The data must be loaded already (bench/gen_data.py --etcd URL [--etcd-api
v2]; the Consul-API test server, `cargo run --example consul-test-server`,
with `put` commands) and DIR must hold a confdir rendering /services/web
(bench/gen_data.py --resources 1 --confdir DIR --dest-dir OUT).

    stream.py --confdir DIR --etcd URL --consul URL [--runs 7] BIN...
"""
import argparse
import base64
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = "/services/web"


def curl_v2(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          url + "/v2/keys" + ROOT + "?recursive=true&quorum=true"],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def curl_consul(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          url + "/v1/kv" + ROOT + "?recurse=true"],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def curl_v3(url):
    def b64(raw):
        return base64.b64encode(raw).decode()
    key, end = ROOT.encode(), (ROOT + "0").encode()
    revision, total, size = 0, 0.0, 0
    with tempfile.NamedTemporaryFile() as page_file:
        while True:
            body = {"key": b64(key), "range_end": b64(end), "limit": 5000}
            if revision:
                body["revision"] = revision
            out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json",
                                  "-d", json.dumps(body), "-o", page_file.name,
                                  "-w", "%{time_total} %{size_download}", url + "/v3/kv/range"],
                                 capture_output=True, text=True, check=True).stdout.split()
            total += float(out[0])
            size += int(out[1])
            with open(page_file.name) as f:
                page = json.load(f)
            revision = revision or int(page["header"]["revision"])
            if not page.get("more"):
                return total, size
            key = base64.b64decode(page["kvs"][-1]["key"]) + b"\0"


def onetime(binary, backend, node, confdir, out_dir):
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    # GNU time's %M: os.wait4's ru_maxrss would also count this Python
    # process's pages, inherited by the child between fork and exec.
    args = ["/usr/bin/time", "-f", "cpu=%U+%S maxrss=%M", binary, "-onetime", "-backend", backend,
            "-node", node, "-confdir", confdir, "-log-level", "debug"]
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    log = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit("%s -backend %s failed:\n%s" % (binary, backend, log[-2000:]))
    cpu_field, rss_field = log.strip().splitlines()[-1].split()
    user, system = cpu_field.split("=")[1].split("+")
    rss = int(rss_field.split("=")[1]) * 1024
    read_done = None
    for line in log.splitlines():
        if "read snapshot" in line:
            stamp = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
            read_done = stamp.timestamp() - started
    return wall, rss, read_done, float(user) + float(system)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--confdir", required=True)
    parser.add_argument("--etcd", help="etcd with the data in v2 and v3")
    parser.add_argument("--consul", help="Consul-API server with the data")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    cells = []
    if args.etcd:
        cells += [("etcd", args.etcd, curl_v2), ("etcdv3", args.etcd, curl_v3)]
    if args.consul:
        cells.append(("consul", args.consul, curl_consul))
    out_dir = tempfile.mkdtemp(prefix="confd-stream-")
    try:
        print("| backend | binary | answer | peak RSS | RSS / answer | one-shot | CPU | read done | curl | one-shot / curl | read / curl |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for backend, node, curl in cells:
            runs = {b: [] for b in args.binaries}
            curls = []
            size = 0
            for _ in range(args.runs):
                took, size = curl(node)
                curls.append(took)
                for binary in args.binaries:
                    runs[binary].append(onetime(binary, backend, node, args.confdir, out_dir))
            c = statistics.median(curls)
            for binary in args.binaries:
                rss = statistics.median(r[1] for r in runs[binary])
                wall = statistics.median(r[0] for r in runs[binary])
                read = statistics.median(r[2] for r in runs[binary])
                cpu = statistics.median(r[3] for r in runs[binary])
                print("| %s | %s | %.1f MB | %.1f MB | %.2f× | %.3f s | %.2f s | %.3f s | %.3f s | %.2f× | %.2f× |" % (
                    backend, os.path.basename(binary), size / 1e6, rss / 1e6, rss / size,
                    wall, cpu, read, c, wall / c, read / c), flush=True)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
