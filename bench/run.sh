#!/usr/bin/env bash
# One-shot benchmark of the confd binary: `confd -onetime -backend file` (or,
# with BACKEND=etcdv3, against a private etcd started here) over
# the seed layout /services/web/<domain>/<host>/{ip,port}, for a matrix of key
# counts × resource counts, each resource rendering the whole tree through the
# HAProxy template into its own dest. Prints a markdown table with the median
# wall time and peak RSS of RUNS runs per cell, next to the Go confd's figures
# from the baseline (measured against etcd, so not the same backend: see
# bench/README.md).
#
# Every timed run starts with the dest folder emptied, so every run renders
# and writes every file. One untimed warm-up run per cell checks the output
# (file count and server lines). Exits non-zero as soon as confd fails.
#
# Environment:
#   BACKEND=file               file (YAML data file) or etcdv3 (needs etcd, e.g.
#                              Debian's 3.4; ETCD_BIN picks the binary)
#   KEYS="1000 10000 100000"   key counts (multiples of 20)
#   RESOURCES="1 10 100"       resource counts
#   SKIP=""                    cells to skip, e.g. SKIP="100000x100 100000x10"
#   RUNS=5                     timed runs per cell
#   WARMUP=1                   untimed runs per cell (0 skips the output check)
#   SHARED_TEMPLATE=0          1: every resource uses one template file
#   DISTINCT_TEMPLATES=0       1: every copy's text differs (a Tera comment), so
#                              confd renders each resource on its own
#   CONFD_BIN=                 use this binary instead of building one
#   GNU_TIME=1                 0: take peak RSS from python3's os.wait4 instead
#   WORK_DIR=                  generate data here (default: a temp dir, removed)
#   CARGO_TARGET_DIR           honoured when building
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEYS=${KEYS:-"1000 10000 100000"}
RESOURCES=${RESOURCES:-"1 10 100"}
SKIP=${SKIP:-""}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
SHARED_TEMPLATE=${SHARED_TEMPLATE:-0}
DISTINCT_TEMPLATES=${DISTINCT_TEMPLATES:-0}

die() { echo "bench/run.sh: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
command -v python3 >/dev/null || die "python3 is needed (bench/gen_data.py)"

if [[ -z ${CONFD_BIN:-} ]]; then
    echo "building the release binary (cargo build --release --locked)…" >&2
    (cd "$ROOT" && cargo build --release --locked --quiet --bin confd) || die "cargo build failed"
    CONFD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/confd
fi
[[ -x $CONFD_BIN ]] || die "no executable at $CONFD_BIN"

BACKEND=${BACKEND:-file}
case $BACKEND in
    file | etcdv3) ;;
    *) die "BACKEND must be file or etcdv3" ;;
esac

ETCD_PID=""
cleanup() {
    if [[ -n $ETCD_PID ]]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    if [[ -z ${WORK_DIR:-} ]]; then
        rm -rf "$WORK"
    fi
}
if [[ -n ${WORK_DIR:-} ]]; then
    mkdir -p "$WORK_DIR"
    WORK=$(cd "$WORK_DIR" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/confd-bench.XXXXXX")
fi
trap cleanup EXIT

if [[ $BACKEND == etcdv3 ]]; then
    ETCD_BIN=${ETCD_BIN:-etcd}
    command -v "$ETCD_BIN" >/dev/null || die "BACKEND=etcdv3 needs etcd ($ETCD_BIN not found)"
    read -r CLIENT_PORT PEER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
    ETCD_URL="http://127.0.0.1:$CLIENT_PORT"
    rm -rf "$WORK/etcd"
    "$ETCD_BIN" --name bench --data-dir "$WORK/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "bench=http://127.0.0.1:$PEER_PORT" \
        >"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 100); do
        python3 -c "import urllib.request,sys; urllib.request.urlopen('$ETCD_URL/health', timeout=1)" 2>/dev/null && break
        kill -0 "$ETCD_PID" 2>/dev/null || { tail -n 20 "$WORK/etcd.log" >&2; die "etcd did not start"; }
        sleep 0.1
    done
    python3 -c "import urllib.request; urllib.request.urlopen('$ETCD_URL/health', timeout=1)" 2>/dev/null \
        || die "etcd did not answer on $ETCD_URL"
    # awk reads all of it: `| head` could kill etcd with SIGPIPE, which
    # pipefail would turn into a failure.
    ETCD_VERSION=$("$ETCD_BIN" --version 2>&1 | awk 'NR == 1 { print $3 }') || ETCD_VERSION=unknown
    echo "etcd $ETCD_VERSION on $ETCD_URL (pid $ETCD_PID)" >&2
fi

# Peak RSS: GNU time when it is there. Otherwise a python3 wrapper that polls
# the child's VmHWM in /proc (wait4's ru_maxrss would include python's own
# memory, which the child inherits until exec) and times the child itself, so
# that python's start-up is not counted. `measure FILE CMD...` writes
# "RSS_KiB" or "RSS_KiB WALL_µs" to FILE and returns CMD's status.
if [[ ${GNU_TIME:-1} == 1 ]] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; then
    RSS_TOOL="GNU time (/usr/bin/time -f %M)"
    measure() {
        /usr/bin/time -f '%M' -o "$1" "${@:2}"
    }
else
    RSS_TOOL="VmHWM polled every 1 ms from /proc by a python3 wrapper"
    measure() {
        python3 - "$@" <<'PY'
import os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
name = os.path.basename(cmd[0])[:15]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
hwm = 0
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    try:
        with open("/proc/%d/status" % pid) as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        if fields.get("Name", "").strip() == name and "VmHWM" in fields:
            hwm = max(hwm, int(fields["VmHWM"].split()[0]))
    except (OSError, ValueError):
        pass
    time.sleep(0.001)
wall_us = int((time.perf_counter() - start) * 1e6)
with open(out, "w") as f:
    f.write("%d %d\n" % (hwm, wall_us))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
PY
    }
fi

# now_us VAR: the time in microseconds, into VAR (no subshell).
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us() { printf -v "$1" '%s' "${EPOCHREALTIME/[.,]/}"; }
else
    now_us() { printf -v "$1" '%s' "$(( $(date +%s%N) / 1000 ))"; }
fi
group() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

# The Go confd's one-shot figures (shared/baseline.md, against etcd 3.4):
# "seconds MiB" per cell; empty when not measured.
go_figures() {
    case "$1x$2" in
        1000x1) echo "0.036 26" ;;   1000x10) echo "0.13 31" ;;    1000x100) echo "1.00 57" ;;
        10000x1) echo "0.185 33" ;;  10000x10) echo "1.61 55" ;;   10000x100) echo "15.7 279" ;;
        100000x1) echo "13.3 85" ;;  100000x10) echo "157 294" ;;  100000x100) echo "" ;;
        *) echo "" ;;
    esac
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# What measuring costs by itself: the same timing around a no-op.
overhead=()
for _ in 1 2 3 4 5; do
    now_us t0; measure "$WORK/overhead.rss" true; now_us t1
    read -r _ wall <<<"$(tail -n 1 "$WORK/overhead.rss")"
    overhead+=("${wall:-$((t1 - t0))}")
done
OVERHEAD_MS=$(printf '%s\n' "${overhead[@]}" | median | awk '{ printf "%.1f", $1 / 1000 }')

run_confd() { # run_confd DATA CONFDIR LOG RSSFILE
    local source=(-backend file -file "$1")
    if [[ $BACKEND == etcdv3 ]]; then source=(-backend etcdv3 -node "$ETCD_URL"); fi
    if ! measure "$4" "$CONFD_BIN" -onetime "${source[@]}" -confdir "$2" >"$3" 2>&1; then
        echo "confd failed (${source[*]}, $2); its output:" >&2
        tail -n 20 "$3" >&2
        exit 1
    fi
}

rows=()
for keys in $KEYS; do
    [[ $keys =~ ^[1-9][0-9]*$ && $((keys % 20)) -eq 0 ]] || die "key count $keys is not a multiple of 20"
    data="$WORK/data-$keys.yaml"
    if [[ $BACKEND == etcdv3 ]]; then
        echo "loading $keys keys into etcd…" >&2
        python3 "$ROOT/bench/gen_data.py" --keys "$keys" --etcd "$ETCD_URL"
    else
        python3 "$ROOT/bench/gen_data.py" --keys "$keys" --data "$data"
    fi
    for res in $RESOURCES; do
        if [[ " $SKIP " == *" ${keys}x${res} "* ]]; then
            echo "skipping $keys keys × $res resources (SKIP)" >&2
            rows+=("| $(group "$keys") | $res | skipped | | | | | |")
            continue
        fi
        confdir="$WORK/confdir-$keys-$res"
        out="$WORK/out-$keys-$res"
        rm -rf "$confdir" "$out"
        shared=()
        if [[ $SHARED_TEMPLATE == 1 ]]; then shared=(--shared-template); fi
        if [[ $DISTINCT_TEMPLATES == 1 ]]; then shared+=(--distinct-templates); fi
        python3 "$ROOT/bench/gen_data.py" --resources "$res" --confdir "$confdir" --dest-dir "$out" "${shared[@]}"
        echo "running $keys keys × $res resources…" >&2

        for ((i = 0; i < WARMUP; i++)); do
            rm -f "$out"/*
            run_confd "$data" "$confdir" "$WORK/log" "$WORK/rss"
            files=$(find "$out" -name '*.cfg' | wc -l)
            [[ $files -eq $res ]] || die "$keys×$res: expected $res files in $out, found $files"
            servers=$(grep -c '^    server ' "$out/haproxy-000.cfg" || true)
            [[ $servers -eq $((keys / 2)) ]] || die "$keys×$res: expected $((keys / 2)) server lines, found $servers"
        done

        times=(); rss=()
        for ((i = 0; i < RUNS; i++)); do
            rm -f "$out"/*
            now_us t0
            run_confd "$data" "$confdir" "$WORK/log" "$WORK/rss"
            now_us t1
            read -r peak wall <<<"$(tail -n 1 "$WORK/rss")"
            times+=("${wall:-$((t1 - t0))}")     # µs
            rss+=("$peak")                       # KiB
        done
        files=$(find "$out" -name '*.cfg' | wc -l)
        [[ $files -eq $res ]] || die "$keys×$res: expected $res files after the timed run, found $files"

        t_med=$(printf '%s\n' "${times[@]}" | median)
        t_min=$(printf '%s\n' "${times[@]}" | sort -g | awk 'NR == 1')
        t_max=$(printf '%s\n' "${times[@]}" | sort -g | awk 'END { print }')
        r_med=$(printf '%s\n' "${rss[@]}" | median)
        secs=$(awk -v t="$t_med" 'BEGIN { printf "%.4f", t / 1e6 }')
        mib=$(awk -v r="$r_med" 'BEGIN { printf "%.1f", r / 1024 }')
        range=$(awk -v a="$t_min" -v b="$t_max" 'BEGIN { printf "%.4f–%.4f", a / 1e6, b / 1e6 }')
        go=$(go_figures "$keys" "$res")
        if [[ -n $go ]]; then
            read -r go_s go_mib <<<"$go"
            speed=$(awk -v g="$go_s" -v s="$secs" 'BEGIN { printf "%.1f×", g / s }')
            smaller=$(awk -v g="$go_mib" -v m="$mib" 'BEGIN { printf "%.1f×", g / m }')
            go_cell="$go_s s, $go_mib MiB"
        else
            speed="–"; smaller="–"; go_cell="not run"
        fi
        rows+=("| $(group "$keys") | $res | $secs s | $range | $mib MiB | $go_cell | $speed | $smaller |")
        echo "  median $secs s, $mib MiB" >&2
    done
done

echo
what="-backend file (YAML)"
if [[ $BACKEND == etcdv3 ]]; then
    what="-backend etcdv3 against etcd $ETCD_VERSION on loopback (its work shares the cores)"
fi
echo "confd one-shot, $what, $RUNS timed runs per cell after $WARMUP warm-up; dest folder emptied before each run"
echo "binary: $CONFD_BIN ($("$CONFD_BIN" --version 2>/dev/null || echo unknown version))"
if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
    dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock | wc -l)
    echo "source: $(git -C "$ROOT" rev-parse --short HEAD)$([[ $dirty -gt 0 ]] && echo " + uncommitted changes under src/")"
fi
echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ { print $2 }') RAM; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peak RSS from $RSS_TOOL; wall time includes ~$OVERHEAD_MS ms of measuring overhead (the same measure around \`true\`)"
echo
echo "| keys | resources | median wall | min–max wall | median peak RSS | Go confd (baseline) | faster | smaller |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
