#!/usr/bin/env bash
# A fleet of N `-watch` daemons on this machine against ONE backend: a private
# etcd 3.4 (`-backend etcd`, the v2 API, and `-backend etcdv3`) and the in-tree
# Consul-API server (examples/haproxy-consul/consul_test_server.rs; not Consul).
# Each daemon has its own confdir; every dest is in one folder, so that one
# inotify descriptor sees every write. The seed layout
# /services/web/<domain>/<host>/{ip,port} (KEYS keys per prefix) and the HAProxy
# template (bench/haproxy.cfg.tmpl; bench/haproxy.cfg.gotmpl for the Go confd,
# which renders the same bytes).
#
# The fleet talks to the backend through the counting proxy of
# bench/daemon_probe.py (requests: HTTP/1.x request heads and HTTP/2 streams;
# bytes each way); the writes and the foreign client go straight to the
# backend. Per cell (daemons × backend × layout), bench/fleet_probe.py run:
#
#   1. start: seconds until every dest is rendered, requests and bytes so far,
#      connections open;
#   2. idle, IDLE_SECONDS: requests/s and bytes/s, backend and fleet CPU, the
#      fleet's memory (sum of VmRSS) and the backend's;
#   3. a foreign client alone (its own connection, alternate GET and PUT of
#      /foreign/probe, outside every watched prefix): p50 / p99;
#   4. CHANGES single writes (the port of a random host under /services/web),
#      GAP s apart, each timed until every dest rendering /services/web holds
#      it (inotify IN_MOVED_TO / IN_CLOSE_WRITE, files re-read; a sweep every
#      250 ms as a safety net): per-dest p50 / p99 / max, the all-dests time;
#      requests and bytes per change; backend and fleet CPU seconds per change;
#   5. a burst of BURST writes sent back to back while the foreign client runs:
#      time until every dest holds all of them; the foreign client's p50 / p99.
#
# A layout RxP is R resources per daemon over P distinct prefixes: resource r
# reads /services/web under prefix ("", /blue, /green, …)[r % P]; the backend
# holds KEYS keys under each of the P prefixes; changes go to the first.
#
# Prints markdown tables (bench/README.md, "bench/fleet.sh"). With the defaults
# (ours only, 3 backends × 3 layouts, N = 200) ≈ 7 minutes on 2 cores plus the
# build; GO_CONFD adds 10–25 minutes (a Go cell whose fleet cannot render every
# dest waits START_TIMEOUT). Every process it starts is stopped on exit.
#
# Environment:
#   N=200                         daemons per cell
#   BACKENDS="etcd etcdv3 consul" which backends
#   LAYOUTS="1x1 4x1 3x3"         cells: resources x distinct prefixes
#   KEYS=1000                     keys per prefix (a multiple of 20)
#   IDLE_SECONDS=10               the idle window
#   CHANGES=10 GAP=1              single changes, and the least time between them
#   CHANGE_TIMEOUT=20             seconds before a change counts as lost
#   BURST=50 BURST_TIMEOUT=20     writes in the burst, seconds to wait for every
#                                 dest to hold all of them
#   START_TIMEOUT=180             seconds for a fleet to render every dest
#   GO_CONFD=                     the Go confd 0.16 binary: its cells too (unset: skipped)
#   GO_N=$N GO_LAYOUTS=$LAYOUTS   its fleet size and cells
#   IMPLS="rust go"               which of the two to run (go needs GO_CONFD)
#   CONFD_BIN=                    our binary (default: cargo build --release)
#   CONSUL_SERVER_BIN=            the in-tree Consul-API server (default: built)
#   ETCD_BIN=etcd
#   WORK_DIR=                     keep confdirs, logs and results.jsonl here
#                                 (default: a temp dir, removed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROBE="$ROOT/bench/daemon_probe.py"
FLEET="$ROOT/bench/fleet_probe.py"
GEN="$ROOT/bench/gen_data.py"
N=${N:-200}
BACKENDS=${BACKENDS:-"etcd etcdv3 consul"}
LAYOUTS=${LAYOUTS:-"1x1 4x1 3x3"}
KEYS=${KEYS:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-10}
CHANGES=${CHANGES:-10}
GAP=${GAP:-1}
CHANGE_TIMEOUT=${CHANGE_TIMEOUT:-20}
BURST=${BURST:-50}
BURST_TIMEOUT=${BURST_TIMEOUT:-20}
START_TIMEOUT=${START_TIMEOUT:-180}
GO_N=${GO_N:-$N}
GO_LAYOUTS=${GO_LAYOUTS:-$LAYOUTS}
IMPLS=${IMPLS:-"rust go"}
ETCD_BIN=${ETCD_BIN:-etcd}

die() { echo "bench/fleet.sh: $*" >&2; exit 1; }
say() { echo "[$(date +%T)] $*" >&2; }
command -v python3 >/dev/null || die "python3 is needed"
[[ $KEYS =~ ^[0-9]+$ && $((KEYS % 20)) -eq 0 && $KEYS -gt 0 ]] || die "KEYS=$KEYS is not a positive multiple of 20"
[[ $N =~ ^[0-9]+$ && $GO_N =~ ^[0-9]+$ ]] || die "N and GO_N must be numbers"
MAX_PREFIXES=1
for layout in $LAYOUTS $GO_LAYOUTS; do
    [[ $layout =~ ^([0-9]+)x([0-9]+)$ ]] || die "layout $layout is not RxP (e.g. 4x1)"
    ((BASH_REMATCH[2] >= 1 && BASH_REMATCH[2] <= BASH_REMATCH[1])) || die "layout $layout: 1 ≤ P ≤ R"
    ((BASH_REMATCH[2] > MAX_PREFIXES)) && MAX_PREFIXES=${BASH_REMATCH[2]}
done
for b in $BACKENDS; do
    [[ $b == etcd || $b == etcdv3 || $b == consul ]] || die "BACKENDS: $b is not etcd, etcdv3 or consul"
    [[ $b == consul ]] || command -v "$ETCD_BIN" >/dev/null || die "etcd is needed ($ETCD_BIN not found)"
done
RUN_GO=0
if [[ " $IMPLS " == *" go "* && -n ${GO_CONFD:-} ]]; then
    [[ -x $GO_CONFD ]] || die "GO_CONFD=$GO_CONFD is not executable"
    RUN_GO=1
fi
RUN_RUST=0
[[ " $IMPLS " == *" rust "* ]] && RUN_RUST=1

# Hundreds of daemons: each keeps 1–4 connections, and the proxy two fds each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -n ${WORK_DIR:-} ]]; then
    mkdir -p "$WORK_DIR"
    WORK=$(cd "$WORK_DIR" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/confd-fleet-bench.XXXXXX")
fi

PIDS=()     # the backend, the proxy, probes: stopped newest first
FLEET_PIDS=() # the daemons of the running cell
stop_pid() { # stop_pid PID: SIGTERM, up to 5 s, then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_fleet() { # all at once (one by one would take minutes): TERM, 10 s, KILL
    local pid i alive
    ((${#FLEET_PIDS[@]})) || return 0
    kill -TERM "${FLEET_PIDS[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive=0
        for pid in "${FLEET_PIDS[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; break; fi
        done
        ((alive)) || break
        sleep 0.1
    done
    kill -KILL "${FLEET_PIDS[@]}" 2>/dev/null || true
    for pid in "${FLEET_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    FLEET_PIDS=()
}
stop_last() { # stop_last PID: stops it and takes it off PIDS
    local i rest=()
    for i in "${PIDS[@]}"; do [[ $i == "$1" ]] || rest+=("$i"); done
    PIDS=("${rest[@]}")
    stop_pid "$1"
}
cleanup() {
    local i
    stop_fleet
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    exec 9>&-
    if [[ -z ${WORK_DIR:-} ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/bench/lib.sh"    # free_port, start_etcd
mono() { python3 "$PROBE" now; }
# fg CMD...: in the background, waited for, so that a signal reaches the trap.
fg() {
    local pid rc=0
    "$@" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    local i rest=()
    for i in "${PIDS[@]}"; do [[ $i == "$pid" ]] || rest+=("$i"); done
    PIDS=("${rest[@]}")
    return "$rc"
}

SOURCE=""
if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
    SOURCE=$(git -C "$ROOT" rev-parse --short HEAD)
    if [[ -n $(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock examples) ]]; then
        SOURCE+=" + uncommitted changes"
    fi
fi
if ((RUN_RUST)) && [[ -z ${CONFD_BIN:-} ]]; then
    say "building the release binary (cargo build --release --locked)…"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin confd) || die "cargo build failed"
    CONFD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/confd
fi
if [[ " $BACKENDS " == *" consul "* && -z ${CONSUL_SERVER_BIN:-} ]]; then
    say "building the in-tree Consul-API server (cargo build --release --example consul-test-server)…"
    (cd "$ROOT" && cargo build --release --locked --quiet --example consul-test-server) || die "cargo build failed"
    CONSUL_SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/consul-test-server
fi
# Private copies, so that a rebuild in the tree cannot swap them mid-run.
if ((RUN_RUST)); then
    [[ -x $CONFD_BIN ]] || die "no executable at $CONFD_BIN"
    cp "$CONFD_BIN" "$WORK/confd"
fi
if [[ " $BACKENDS " == *" consul "* ]]; then
    [[ -x $CONSUL_SERVER_BIN ]] || die "no executable at $CONSUL_SERVER_BIN"
    cp "$CONSUL_SERVER_BIN" "$WORK/consul-test-server"
fi
: >"$WORK/empty.toml" # -config-file: no /etc/confd/confd.toml of this machine
RESULTS_FILE="$WORK/results.jsonl"
: >"$RESULTS_FILE"

BACKEND_PID="" BACKEND_PORT="" BACKEND_URL=""
start_etcd_backend() { # start_etcd_backend NAME: the fleet's etcd as BACKEND_*
    start_etcd "$1" --enable-v2 --log-level warn
    BACKEND_PID=$ETCD_PID BACKEND_PORT=$ETCD_PORT BACKEND_URL=$ETCD_URL
}
start_consul() {
    local i
    rm -f "$WORK/consul.port" "$WORK/consul.in"
    mkfifo "$WORK/consul.in"
    # The server stops at the end of its standard input: fd 9 keeps it open.
    "$WORK/consul-test-server" --port-file "$WORK/consul.port" <"$WORK/consul.in" \
        >"$WORK/consul.log" 2>&1 &
    BACKEND_PID=$!
    PIDS+=("$BACKEND_PID")
    exec 9>"$WORK/consul.in"
    for ((i = 0; i < 200; i++)); do
        if [[ -s $WORK/consul.port ]]; then
            BACKEND_PORT=$(cat "$WORK/consul.port")
            BACKEND_URL="127.0.0.1:$BACKEND_PORT"
            return 0
        fi
        kill -0 "$BACKEND_PID" 2>/dev/null || { cat "$WORK/consul.log" >&2; die "the Consul-API server did not start"; }
        sleep 0.1
    done
    die "the Consul-API server wrote no port within 20 s"
}
stop_backend() {
    stop_last "$BACKEND_PID"
    exec 9>&-
}
load_backend() { # load_backend BACKEND: KEYS keys under each of MAX_PREFIXES prefixes
    local backend=$1 p prefix keep=""
    local prefixes=("" /blue /green)
    for ((p = 3; p < MAX_PREFIXES; p++)); do prefixes+=("/p$p"); done
    for ((p = 0; p < MAX_PREFIXES; p++)); do
        prefix=${prefixes[p]}
        case $backend in
            etcd) fg python3 "$GEN" --keys "$KEYS" --etcd "$BACKEND_URL" --etcd-api v2 --data-prefix "$prefix" $keep ;;
            etcdv3) fg python3 "$GEN" --keys "$KEYS" --etcd "$BACKEND_URL" --data-prefix "$prefix" $keep ;;
            consul) fg python3 "$FLEET" load-consul --url "$BACKEND_URL" --keys "$KEYS" --data-prefix "$prefix" ;;
        esac
        keep=--keep
    done
}

PROXY_PID="" PROXY_PORT="" PROXY_STATS="" PROXY_LOG=""
start_proxy() { # start_proxy NAME
    local i
    PROXY_LOG="$WORK/proxy-$1.log"
    PROXY_STATS="$WORK/proxy-$1.stats"
    : >"$PROXY_LOG"
    rm -f "$PROXY_STATS"
    PROXY_PORT=$(free_port)
    python3 "$PROBE" proxy --listen "$PROXY_PORT" --target "$BACKEND_PORT" --log "$PROXY_LOG" \
        --stats "$PROXY_STATS" 2>"$WORK/proxy-$1.err" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for ((i = 0; i < 100; i++)); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PROXY_PORT), 1).close()" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    die "the counting proxy did not start"
}

CELL=0
run_cell() { # run_cell IMPL BACKEND LAYOUT DAEMONS
    local impl=$1 backend=$2 layout=$3 daemons=$4 resources prefixes name dir node d since rc=0
    resources=${layout%x*}
    prefixes=${layout#*x}
    name="$impl-$backend-$layout"
    CELL=$((CELL + 1))
    if [[ $impl == go ]]; then
        local need=$((daemons * 40 * 1024)) avail
        avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
        if ((avail < need)); then
            say "skipping $name: $((avail / 1024)) MiB available, ≈ $((need / 1024)) MiB needed"
            return 0
        fi
    fi
    dir="$WORK/$name"
    rm -rf "$dir"
    mkdir -p "$dir/logs"
    local template="$ROOT/bench/haproxy.cfg.tmpl"
    [[ $impl == go ]] && template="$ROOT/bench/haproxy.cfg.gotmpl"
    fg python3 "$FLEET" confdirs --root "$dir/conf" --daemons "$daemons" --resources "$resources" \
        --prefixes "$prefixes" --dest "$dir/out" --template "$template"
    start_proxy "$name"
    node="127.0.0.1:$PROXY_PORT"
    [[ $backend == consul ]] || node="http://$node"
    say "cell $name: $daemons daemons, $resources resource(s) over $prefixes prefix(es)"
    since=$(mono)
    for ((d = 0; d < daemons; d++)); do
        local conf
        conf=$(printf '%s/conf/h%04d' "$dir" "$d")
        if [[ $impl == go ]]; then
            "$GO_CONFD" -watch -backend "$backend" -node "$node" -confdir "$conf" \
                -config-file "$WORK/empty.toml" -log-level warn >"$dir/logs/$d.log" 2>&1 &
        else
            "$WORK/confd" -watch -backend "$backend" -node "$node" -confdir "$conf" \
                -config-file "$WORK/empty.toml" -log-level warning >"$dir/logs/$d.log" 2>&1 &
        fi
        FLEET_PIDS+=("$!")
    done
    printf '%s\n' "${FLEET_PIDS[@]}" >"$dir/pids"
    local api=$backend
    [[ $backend == etcd ]] && api=v2
    [[ $backend == etcdv3 ]] && api=v3
    fg python3 "$FLEET" run --api "$api" --url "$BACKEND_URL" --stats "$PROXY_STATS" \
        --pids "$dir/pids" --backend-pid "$BACKEND_PID" --since "$since" --dest "$dir/out" \
        --daemons "$daemons" --resources "$resources" --prefixes "$prefixes" --keys "$KEYS" \
        --start-timeout "$START_TIMEOUT" --idle-seconds "$IDLE_SECONDS" --changes "$CHANGES" \
        --gap "$GAP" --change-timeout "$CHANGE_TIMEOUT" --burst "$BURST" --burst-timeout "$BURST_TIMEOUT" \
        --value-base $((20000 + CELL * 1000)) >"$dir/result.json" || rc=$?
    stop_fleet
    stop_last "$PROXY_PID"
    local errors
    errors=$(cat "$dir"/logs/*.log | grep -ciE 'error|fatal|panic' || true)
    python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).read() or "{}")
d.update(impl=sys.argv[2], backend=sys.argv[3], layout=sys.argv[4], error_lines=int(sys.argv[5]))
d.setdefault("daemons", int(sys.argv[6])); d.setdefault("resources", int(sys.argv[7]))
d.setdefault("prefixes", int(sys.argv[8]))
if "startup" not in d: d.setdefault("error", "the probe failed (exit status %s)" % sys.argv[9])
print(json.dumps(d))' "$dir/result.json" "$impl" "$backend" "$layout" "$errors" "$daemons" \
        "$resources" "$prefixes" "$rc" >>"$RESULTS_FILE"
    ((errors == 0)) || say "cell $name: $errors log lines with error/fatal/panic (in $dir/logs)"
    # A cell's confdirs and dests are large (N × R × 28 kB); keep only logs.
    rm -rf "$dir/conf" "$dir/out"
}

say "work dir $WORK; N=$N, GO_N=$GO_N, KEYS=$KEYS per prefix, layouts: $LAYOUTS"
STARTED=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for backend in $BACKENDS; do
    case $backend in
        etcd | etcdv3) start_etcd_backend "$backend" ;;
        consul) start_consul ;;
    esac
    say "$backend: loading $KEYS keys under each of $MAX_PREFIXES prefix(es)…"
    load_backend "$backend"
    if ((RUN_RUST)); then
        for layout in $LAYOUTS; do run_cell rust "$backend" "$layout" "$N"; done
    fi
    if ((RUN_GO)); then
        for layout in $GO_LAYOUTS; do run_cell go "$backend" "$layout" "$GO_N"; done
    fi
    stop_backend
done

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "### bench/fleet.sh, $(date -u +%Y-%m-%d), $((SECONDS - STARTED)) s"
echo
GO_TEXT="not run"
((RUN_GO)) && GO_TEXT=$("$GO_CONFD" -version 2>&1 | sed -n 1p)
ETCD_VERSION=$("$ETCD_BIN" --version 2>/dev/null | sed -n 1p) || ETCD_VERSION="etcd: -"
echo "Ours: commit ${SOURCE:-unknown}; $ETCD_VERSION; load average at the start: $LOAD_START;"
echo "the Go confd: $GO_TEXT; load average at the end: $LOAD; nproc $(nproc)."
echo "\"daemons\": ours or the Go confd; \"N\": daemons in the fleet; \"↑\": fleet → backend, \"↓\": backend → fleet."
echo
python3 "$FLEET" report --results "$RESULTS_FILE"
if [[ -n ${WORK_DIR:-} ]]; then echo; echo "(raw results: $RESULTS_FILE)"; fi
