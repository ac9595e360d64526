#!/usr/bin/env python3
"""Summarises bench/etcdv3_grpc.sh's results.jsonl as markdown tables.

Usage: etcdv3_grpc_report.py results.jsonl

Python 3 standard library only.
"""

import json
import sys
from collections import defaultdict


def quantile(values, q):
    """The q-quantile by the nearest-rank method (median: q = 0.5)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


def median(values):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def main():
    rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    reads = defaultdict(list)
    watches = defaultdict(list)
    bursts = defaultdict(list)
    other = []
    for row in rows:
        name = row.get("name", "")
        if name in ("gateway", "grpc", "grpc-single", "confd", "grpc-default-limit"):
            reads[(row["n"], name)].append(row)
        elif name.startswith("watch-"):
            watches[(row["n"], name[6:])].append(row)
        elif name.startswith("burst-"):
            bursts[(row["n"], name[6:])].append(row)
        else:
            other.append(row)

    if reads:
        print("One-shot read of /services/web (each run its own process; `read` = process start to")
        print("pairs decoded, from the program; wall, RSS and CPU from GNU time; etcd CPU from its")
        print("/proc/PID/stat over the run, 10 ms ticks)")
        print()
        print("| keys | path | runs | read median / p95 | wall median / p95 | peak RSS | client CPU | etcd CPU | answer size | vs gateway (read) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (keys, name), runs in sorted(reads.items(), key=lambda kv: (kv[0][0], order(kv[0][1]))):
            ok = [r for r in runs if "error" not in r]
            if not ok:
                error = runs[0]["error"].strip().splitlines()[-1][:120] if runs else "?"
                print("| %s | %s | %d | failed: %s | | | | | | |" % (f"{keys:,}", name, len(runs), error.replace("|", "/")))
                continue
            ms = [r["ms"] for r in ok if "ms" in r]
            wall = [r["wall_s"] * 1e3 for r in ok]
            gateway = [r["ms"] for r in reads.get((keys, "gateway"), []) if "ms" in r]
            ratio = ""
            if ms and gateway and name != "gateway":
                ratio = "%.1f×" % (median(gateway) / median(ms))
            size = ""
            if ok[0].get("bytes"):
                size = "%.2f MB" % (ok[0]["bytes"] / 1e6)
            print("| %s | %s | %d | %s | %.1f / %.1f ms | %.1f MiB | %.0f ms | %.0f ms | %s | %s |" % (
                f"{keys:,}", name, len(ok),
                "%.1f / %.1f ms" % (median(ms), quantile(ms, 0.95)) if ms else "–",
                median(wall), quantile(wall, 0.95),
                median([r["rss_kb"] for r in ok]) / 1024,
                median([r["cpu_s"] for r in ok]) * 1e3,
                median([r["etcd_ticks"] for r in ok]) * 10,
                size, ratio))
        print()

    if watches:
        print("Watch: write → event decoded, single changes (the write's own round trip, etcd's")
        print("commit, is inside both)")
        print()
        print("| keys | path | changes | median | p95 | max | write acknowledged (median) | lost | peak RSS |")
        print("|---|---|---|---|---|---|---|---|---|")
        for (keys, path), runs in sorted(watches.items()):
            ok = [r for r in runs if "latencies_ms" in r]
            lat = [x for r in ok for x in r["latencies_ms"]]
            acks = [x for r in ok for x in r["acks_ms"]]
            print("| %s | %s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d | %.1f MiB |" % (
                f"{keys:,}", path, len(lat), median(lat), quantile(lat, 0.95), max(lat, default=float("nan")),
                median(acks), sum(r["lost"] for r in ok), median([r["rss_kb"] for r in ok]) / 1024))
        print()

    if bursts:
        print("Burst: new keys written back to back, each after the previous one was acknowledged")
        print()
        print("| keys | path | watch | writes took | received | missing | delay median / max | ≥ 50 ms late | batches | last event after last ack |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (keys, path), runs in sorted(bursts.items()):
            for r in runs:
                stream = "new stream per batch" if r.get("reopen") else "one open stream"
                if "delays_ms" not in r:
                    print("| %s | %s | %s | failed | | | | | | |" % (f"{keys:,}", path, stream))
                    continue
                print("| %s | %s | %s | %.0f ms | %d | %d | %.2f / %.2f ms | %d | %d | %.2f ms |" % (
                    f"{keys:,}", path, stream, r["writes_took_ms"], r["received"], r["missing"],
                    median(r["delays_ms"]), max(r["delays_ms"], default=float("nan")), r["late_50ms"],
                    r["messages"], r["last_after_last_ack_ms"]))
        print()

    callgrind = [r for r in other if r.get("name") == "callgrind"]
    if callgrind:
        print("Client instructions for one read (callgrind, whole process)")
        print()
        print("| keys | path | instructions | vs gateway |")
        print("|---|---|---|---|")
        base = {r["n"]: r["ir"] for r in callgrind if r["path"] == "gateway"}
        for r in sorted(callgrind, key=lambda r: (r["n"], order(r["path"]))):
            ratio = "%.1f×" % (base[r["n"]] / r["ir"]) if r["path"] != "gateway" and r["ir"] and r["n"] in base else ""
            print("| %s | %s | %s | %s |" % (f"{r['n']:,}", r["path"], f"{r['ir']:,}", ratio))
        print()

    no_gateway = [r for r in other if r.get("name", "").startswith("no-gateway-")]
    if no_gateway:
        print("An etcd started with --enable-grpc-gateway=false (empty), one read per path")
        print()
        print("| path | outcome |")
        print("|---|---|")
        for r in no_gateway:
            if "error" in r:
                outcome = "failed: " + r["error"].strip().splitlines()[-1][:160].replace("|", "/")
            else:
                outcome = "read %s keys" % r.get("keys", "?") if "keys" in r else "succeeded"
            print("| %s | %s |" % (r["name"][len("no-gateway-"):], outcome))
        print()

    sizes = [r for r in other if r.get("name") == "size"]
    if sizes:
        print("Cost side: release binary (fat LTO, stripped) and a cold build")
        print()
        print("| variant | binary | build (cold, 2 cores) | crates (normal deps) |")
        print("|---|---|---|---|")
        for r in sizes:
            print("| %s | %.2f MB | %.0f s | %d |" % (r["path"], r["bytes"] / 1e6, r["build_s"], r["crates"]))
        print()
    return 0


def order(name):
    names = ["gateway", "grpc", "grpc-single", "grpc-default-limit", "confd"]
    return names.index(name) if name in names else len(names)


if __name__ == "__main__":
    sys.exit(main())
