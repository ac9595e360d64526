#!/usr/bin/env bash
# Daemon benchmark of the confd binary against private etcd 3.4 instances, for
# `-backend etcd` (v2 API; data loaded through v2) and `-backend etcdv3` (data
# loaded through the v3 gateway), over the seed layout
# /services/web/<domain>/<host>/{ip,port} and the HAProxy template:
#
#   1. change → file latency in -watch mode (1 resource) at KEYS: CHANGES
#      single-key changes (the port of a random host), ≥ GAP s apart, each timed
#      from just before the write is sent until dest contains the new value
#      (inotify); median and p95;
#   2. the idle -watch daemon (1 resource, IDLE_KEYS keys) IDLE_AT s after its
#      start: VmRSS, CPU % over the last 10 s, threads;
#   3. requests per second sent to etcd by a 10-resource daemon (all on
#      /services/web, or a mix of 3 prefixes), in -interval 1 and in -watch
#      mode, at REQ_KEYS, counted by a TCP proxy (bench/daemon_probe.py proxy)
#      over REQ_SECONDS; confd's and etcd's CPU %;
#   4. a burst of BURST_WRITES writes under the watched prefix: reloads
#      (reload_cmd appends a line to a file) and missing keys at the end.
#
# Prints markdown tables (bench/README.md, "bench/daemon.sh"). Takes ≈ 8.5
# minutes on a 2-core machine, plus the build.
# Every process it starts (etcd, confd, the proxy, probes) is stopped on exit.
#
# Environment:
#   BACKENDS="etcd etcdv3"        which confd backends
#   KEYS="1000 10000 100000"      key counts of the latency cells ("" skips)
#   CHANGES=50 GAP=0.4            changes per latency cell, seconds between them
#   CHANGE_TIMEOUT=10             seconds before a change counts as lost
#   CELL_LIMIT=90                 seconds after which a latency cell stops early
#   IDLE_KEYS=10000 IDLE_AT=30    idle measurement (0 to skip it)
#   IDLE_ALONE=0                  1: run the idle daemon alone (+30 s per
#                                 backend); 0: alongside the request counts at
#                                 IDLE_KEYS (they only read, so it stays idle)
#   REQ_KEYS="1000 10000"         key counts of the request counts ("" skips)
#   REQ_SECONDS=10 REQ_WARMUP=2   counting window, and the wait before it
#   BURST_KEYS=1000               key count of the burst (0 skips it)
#   BURST_WRITES=500
#   CONFD_BIN=                    measure this binary instead of building
#   ETCD_BIN=etcd
#   WORK_DIR=                     keep data, logs and results here (default: a
#                                 temp dir, removed at the end)
#   RESULTS=                      also append the JSON results to this file
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROBE="$ROOT/bench/daemon_probe.py"
GEN="$ROOT/bench/gen_data.py"
BACKENDS=${BACKENDS:-"etcd etcdv3"}
KEYS=${KEYS-"1000 10000 100000"}
CHANGES=${CHANGES:-50}
GAP=${GAP:-0.4}
CHANGE_TIMEOUT=${CHANGE_TIMEOUT:-10}
CELL_LIMIT=${CELL_LIMIT:-90}
IDLE_KEYS=${IDLE_KEYS:-10000}
IDLE_AT=${IDLE_AT:-30}
IDLE_ALONE=${IDLE_ALONE:-0}
REQ_KEYS=${REQ_KEYS-"1000 10000"}
REQ_SECONDS=${REQ_SECONDS:-10}
REQ_WARMUP=${REQ_WARMUP:-2}
BURST_KEYS=${BURST_KEYS:-1000}
BURST_WRITES=${BURST_WRITES:-500}
ETCD_BIN=${ETCD_BIN:-etcd}
REQ_RESOURCES=10
MIX_PREFIXES="/,/blue,/green"

die() { echo "bench/daemon.sh: $*" >&2; exit 1; }
say() { echo "[$(date +%T)] $*" >&2; }
command -v python3 >/dev/null || die "python3 is needed"
command -v "$ETCD_BIN" >/dev/null || die "etcd is needed ($ETCD_BIN not found)"
for b in $BACKENDS; do
    [[ $b == etcd || $b == etcdv3 ]] || die "BACKENDS: $b is neither etcd nor etcdv3"
done
for k in $KEYS $REQ_KEYS $IDLE_KEYS $BURST_KEYS; do
    [[ $k =~ ^[0-9]+$ && $((k % 20)) -eq 0 ]] || die "key count $k is not a multiple of 20"
done

if [[ -n ${WORK_DIR:-} ]]; then
    mkdir -p "$WORK_DIR"
    WORK=$(cd "$WORK_DIR" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/confd-daemon-bench.XXXXXX")
fi

# Every background process we start, so that the trap can stop it.
# A stopped one is taken off the list (its number may be reused later).
PIDS=()
forget_pid() {
    local i rest=()
    for i in "${PIDS[@]}"; do
        [[ $i == "$1" ]] || rest+=("$i")
    done
    PIDS=("${rest[@]}")
}
stop_pid() { # stop_pid PID: SIGTERM, up to 5 s, then SIGKILL
    local pid=$1 i
    forget_pid "$pid"
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    # Newest first: probes, then confd, the proxy, etcd.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    if [[ -z ${WORK_DIR:-} ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SOURCE=""
if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
    dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock | wc -l)
    SOURCE=$(git -C "$ROOT" rev-parse --short HEAD)
    if [[ $dirty -gt 0 ]]; then SOURCE+=" + uncommitted changes under src/"; fi
fi
if [[ -z ${CONFD_BIN:-} ]]; then
    say "building the release binary (cargo build --release --locked)…"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin confd) || die "cargo build failed"
    CONFD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/confd
fi
[[ -x $CONFD_BIN ]] || die "no executable at $CONFD_BIN"
# A private copy, so that a rebuild in the tree cannot swap it mid-run.
cp "$CONFD_BIN" "$WORK/confd"
CONFD="$WORK/confd"

RESULTS_FILE="$WORK/results.jsonl"
: >"$RESULTS_FILE"
record() { # record JSON_FIELDS JSON_RESULT: merges both into one line
    python3 -c 'import json, sys
d = json.loads(sys.argv[1]); d.update(json.loads(sys.argv[2])); print(json.dumps(d))' "$1" "$2" >>"$RESULTS_FILE"
}

. "$ROOT/bench/lib.sh"    # free_port, start_etcd
mono() { python3 "$PROBE" now; }

# fg CMD...: runs CMD in the background and waits for it, so that a signal
# reaches the trap at once (bash runs traps only between foreground commands)
# and the trap can stop CMD.
fg() {
    local pid rc=0
    "$@" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}
# probe OUT SUBCOMMAND ARGS...: daemon_probe.py through fg, its JSON into OUT.
probe() {
    local out=$1
    shift
    fg python3 "$PROBE" "$@" >"$out"
}

ETCD_PID=""

PROXY_PID=""
start_proxy() { # start_proxy NAME: sets PROXY_PID, PROXY_URL, PROXY_LOG
    local i
    PROXY_LOG="$WORK/proxy-$1.log"
    : >"$PROXY_LOG"
    local port
    port=$(free_port)
    python3 "$PROBE" proxy --listen "$port" --target "$ETCD_PORT" --log "$PROXY_LOG" 2>"$WORK/proxy-$1.err" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    PROXY_URL="http://127.0.0.1:$port"
    for ((i = 0; i < 100; i++)); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
            sleep 0.1
            : >"$PROXY_LOG" # forget the probe connection (it sent no request)
            return 0
        fi
        sleep 0.05
    done
    die "the counting proxy did not start"
}

CONFD_PID=""
start_confd() { # start_confd LOG CONFD-ARGS...: sets CONFD_PID
    local log=$1
    shift
    "$CONFD" "$@" --log-level warning >"$log" 2>&1 &
    CONFD_PID=$!
    PIDS+=("$CONFD_PID")
}

wait_servers() { # wait_servers DEST N TIMEOUT
    if ! probe "$WORK/wait.out" wait-file --dest "$1" --servers "$2" --timeout "$3"; then
        [[ -n $CONFD_PID ]] && tail -n 20 "$WORK"/confd-*.log >&2 || true
        die "confd did not render $1"
    fi
}

load() { # load API KEYS [--data-prefix P --keep]
    local api=$1 keys=$2
    shift 2
    fg python3 "$GEN" --keys "$keys" --etcd "$ETCD_URL" --etcd-api "$api" "$@"
}

load_all() { # load_all API KEYS WITH_MIX
    local t0 t1
    t0=$(date +%s.%N)
    load "$1" "$2"
    if [[ $3 == 1 ]]; then
        load "$1" "$2" --data-prefix /blue --keep
        load "$1" "$2" --data-prefix /green --keep
    fi
    t1=$(date +%s.%N)
    say "  loaded $2 keys$([[ $3 == 1 ]] && echo " (and $2 under /blue and /green each)") through $1 in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
}

in_list() { [[ " $2 " == *" $1 "* ]]; }

# Every key count this run needs, in increasing order.
ALL_KEYS=$(printf '%s\n' $KEYS $REQ_KEYS \
    $([[ $IDLE_KEYS != 0 ]] && echo "$IDLE_KEYS") $([[ $BURST_KEYS != 0 ]] && echo "$BURST_KEYS") | sort -nu)

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$SECONDS
say "work dir $WORK; load average $LOAD_START; key counts: $(echo $ALL_KEYS)"

latency_cell() { # latency_cell BACKEND API KEYS
    local backend=$1 api=$2 keys=$3 dir="$WORK/lat-$1-$3" result read
    rm -rf "$dir"
    python3 "$GEN" --resources 1 --confdir "$dir/confdir" --dest-dir "$dir/out"
    start_confd "$WORK/confd-lat-$backend-$keys.log" -watch -backend "$backend" -node "$ETCD_URL" -confdir "$dir/confdir"
    wait_servers "$dir/out/haproxy-000.cfg" $((keys / 2)) 60
    sleep 0.5
    say "  latency: $CHANGES changes, ≥ $GAP s apart…"
    probe "$dir/latency.json" latency --api "$api" --url "$ETCD_URL" --keys "$keys" \
        --dest "$dir/out/haproxy-000.cfg" --changes "$CHANGES" --gap "$GAP" \
        --timeout "$CHANGE_TIMEOUT" --max-seconds "$CELL_LIMIT" || die "latency probe failed"
    result=$(cat "$dir/latency.json")
    stop_pid "$CONFD_PID"
    say "  $result"
    # What one read of the prefix costs at etcd alone, as confd asks for it.
    probe "$dir/read.json" readcost --api "$api" --url "$ETCD_URL" --root /services/web --runs 3 \
        || die "readcost probe failed"
    read=$(cat "$dir/read.json")
    say "  read alone: $read"
    record "{\"part\": \"latency\", \"backend\": \"$backend\", \"keys\": $keys}" "$result"
    python3 - "$RESULTS_FILE" "$read" <<'PY'
import json, sys
path, extra = sys.argv[1], json.loads(sys.argv[2])
lines = open(path).read().splitlines()
row = json.loads(lines[-1]); row.update(extra); lines[-1] = json.dumps(row)
open(path, "w").write("\n".join(lines) + "\n")
PY
}

IDLE_PID=""
IDLE_PROBE_PID=""
IDLE_OUT=""
start_idle() { # start_idle BACKEND KEYS
    local backend=$1 keys=$2 dir="$WORK/idle-$1" since
    rm -rf "$dir"
    python3 "$GEN" --resources 1 --confdir "$dir/confdir" --dest-dir "$dir/out"
    since=$(mono)
    start_confd "$WORK/confd-idle-$backend.log" -watch -backend "$backend" -node "$ETCD_URL" -confdir "$dir/confdir"
    IDLE_PID=$CONFD_PID
    IDLE_OUT="$dir/idle.json"
    python3 "$PROBE" idle --pid "$IDLE_PID" --since "$since" --at "$IDLE_AT" --window 10 >"$IDLE_OUT" &
    IDLE_PROBE_PID=$!
    PIDS+=("$IDLE_PROBE_PID")
    wait_servers "$dir/out/haproxy-000.cfg" $((keys / 2)) 60
    say "  idle daemon (pid $IDLE_PID) started; sampled $IDLE_AT s after its start"
}
finish_idle() { # finish_idle BACKEND KEYS
    local i
    for ((i = 0; i < IDLE_AT + 30; i++)); do
        kill -0 "$IDLE_PROBE_PID" 2>/dev/null || break
        sleep 1
    done
    stop_pid "$IDLE_PROBE_PID"
    stop_pid "$IDLE_PID"
    [[ -s $IDLE_OUT ]] || die "the idle probe wrote nothing"
    say "  idle: $(cat "$IDLE_OUT")"
    record "{\"part\": \"idle\", \"backend\": \"$1\", \"keys\": $2, \"alone\": $IDLE_ALONE}" "$(cat "$IDLE_OUT")"
}

requests_cell() { # requests_cell BACKEND KEYS LAYOUT MODE...
    local backend=$1 keys=$2 layout=$3
    shift 3
    local mode="$*" tag dir since result prefixes=() text i
    tag="$backend-$keys-$layout-$(echo "$mode" | tr -d ' -')"
    dir="$WORK/req-$tag"
    rm -rf "$dir"
    if [[ $layout == mix ]]; then
        prefixes=(--prefixes "$MIX_PREFIXES")
        text="3: /services/web, /blue/…, /green/… (4+3+3)"
    else
        text="1: /services/web"
    fi
    python3 "$GEN" --resources "$REQ_RESOURCES" --confdir "$dir/confdir" --dest-dir "$dir/out" "${prefixes[@]}"
    since=$(mono)
    start_confd "$WORK/confd-req-$tag.log" "$@" -backend "$backend" -node "$PROXY_URL" -confdir "$dir/confdir"
    for ((i = 0; i < REQ_RESOURCES; i++)); do
        wait_servers "$dir/out/haproxy-$(printf %03d "$i").cfg" $((keys / 2)) 60
    done
    sleep "$REQ_WARMUP"
    probe "$dir/window.json" window --pid "$CONFD_PID" --etcd-pid "$ETCD_PID" --log "$PROXY_LOG" \
        --seconds "$REQ_SECONDS" --since "$since" || die "window probe failed"
    result=$(cat "$dir/window.json")
    stop_pid "$CONFD_PID"
    say "  requests, $layout, $mode: $result"
    record "{\"part\": \"requests\", \"backend\": \"$backend\", \"keys\": $keys, \"layout\": \"$layout\", \"layout_text\": \"$text\", \"mode\": \"$mode\"}" "$result"
}

burst_cell() { # burst_cell BACKEND API KEYS
    local backend=$1 api=$2 keys=$3 dir="$WORK/burst-$1" result failed
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$dir/reloads"
    python3 "$GEN" --resources 1 --confdir "$dir/confdir" --dest-dir "$dir/out" \
        --reload-cmd "echo reload >> $dir/reloads"
    start_confd "$WORK/confd-burst-$backend.log" -watch -backend "$backend" -node "$PROXY_URL" -confdir "$dir/confdir"
    wait_servers "$dir/out/haproxy-000.cfg" $((keys / 2)) 60
    say "  burst: $BURST_WRITES writes…"
    probe "$dir/burst.json" burst --api "$api" --url "$ETCD_URL" --keys "$keys" \
        --dest "$dir/out/haproxy-000.cfg" --reloads "$dir/reloads" --writes "$BURST_WRITES" \
        --log "$PROXY_LOG" || die "burst probe failed"
    result=$(cat "$dir/burst.json")
    stop_pid "$CONFD_PID"
    # Renders that failed during the burst (a host whose ip was written but
    # not yet its port: getv fails, the old file is kept).
    failed=$(grep -c 'outcome=failed' "$WORK/confd-burst-$backend.log" || true)
    say "  $result; failed renders: $failed"
    record "{\"part\": \"burst\", \"backend\": \"$backend\", \"keys\": $keys, \"failed_renders\": $failed}" "$result"
}

for backend in $BACKENDS; do
    api=v3
    [[ $backend == etcd ]] && api=v2
    say "== -backend $backend (data through the $api API)"
    start_etcd "bench-$backend" --enable-v2 --log-level warn
    start_proxy "$backend"
    for keys in $ALL_KEYS; do
        with_mix=0
        in_list "$keys" "$REQ_KEYS" && with_mix=1
        load_all "$api" "$keys" "$with_mix"
        if in_list "$keys" "$KEYS"; then
            say "  latency cell: $keys keys"
            latency_cell "$backend" "$api" "$keys"
        fi
        idle_running=0
        if [[ $keys == "$IDLE_KEYS" ]]; then
            start_idle "$backend" "$keys"
            idle_running=1
            if [[ $IDLE_ALONE == 1 ]] || ! in_list "$keys" "$REQ_KEYS"; then
                finish_idle "$backend" "$keys"
                idle_running=0
            fi
        fi
        if in_list "$keys" "$REQ_KEYS"; then
            for layout in all mix; do
                requests_cell "$backend" "$keys" "$layout" -interval 1
                requests_cell "$backend" "$keys" "$layout" -watch
            done
        fi
        if [[ $idle_running == 1 ]]; then
            finish_idle "$backend" "$keys"
        fi
        if [[ $keys == "$BURST_KEYS" ]]; then
            burst_cell "$backend" "$api" "$keys"
        fi
    done
    stop_pid "$PROXY_PID"
    stop_pid "$ETCD_PID"
done

if [[ -n ${RESULTS:-} ]]; then cat "$RESULTS_FILE" >>"$RESULTS"; fi
ETCD_VERSION=$("$ETCD_BIN" --version 2>&1 | awk 'NR == 1 { print $3 }') || ETCD_VERSION=unknown
echo
echo "confd daemon benchmark against etcd $ETCD_VERSION on loopback (private instance per backend, data dir under ${TMPDIR:-/tmp})"
echo "binary: $CONFD_BIN ($("$CONFD" --version 2>/dev/null || echo unknown version))"
if [[ -n $SOURCE ]]; then echo "source: $SOURCE (when the run started)"; fi
echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ { print $2 }') RAM; load average at the start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg); took $((SECONDS - START_S)) s"
echo
python3 "$PROBE" report --results "$RESULTS_FILE"
