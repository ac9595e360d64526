#!/usr/bin/env bash
# etcdv3: the JSON gateway (confd's path) against a native gRPC client
# (etcd-client), on the same etcd and the same data, interleaved.
#
# Builds bench/etcdv3-grpc (a standalone Cargo project with its own
# Cargo.lock and target dir; etcd-client's build script needs protoc, Debian's
# protobuf-compiler), starts a private etcd on free loopback ports and, for
# every key count in KEYS (seed layout, loaded with bench/gen_data.py):
#
#   1. one-shot reads of /services/web, ROUNDS rounds, each round running
#      every path once in a rotating order, each run its own process:
#        gateway      reqwest POST /v3/kv/range, 5,000 keys a page, JSON,
#                     base64 → (String, String), as confd's etcdv3 backend
#        grpc         Range, 5,000 keys a page, at one revision
#        grpc-single  one Range (decoding limit raised to 256 MiB)
#        confd        confd -onetime -backend etcdv3, 1 resource, the
#                     HAProxy template (reference: read + render + write)
#      Each: the program's own time for the read (process start to pairs
#      decoded, `ms`), wall time, peak RSS and CPU (GNU time), and etcd's
#      CPU ticks over the run (/proc/PID/stat utime + stime).
#      Once more: grpc-default-limit, one Range at tonic's 4 MiB default.
#   2. watch latency, write → event decoded, WATCH_ROUNDS × CHANGES single
#      changes of an existing host's port per path (the writer is the same
#      gateway put for both paths), GAP_MS apart;
#   3. a burst of BURST_WRITES new keys written back to back, BURST_ROUNDS
#      per path: events received, missing, delay after each write, watch
#      messages that carried them. Then (BURST_REOPEN=0 skips it) once per
#      path with a new watch stream after every batch, each from the next
#      revision, as confd's etcdv3 backend did before it kept streams open.
#
# Then every path reads an empty etcd started with --enable-grpc-gateway=false
# (NO_GATEWAY=0 skips that).
#
# CALLGRIND=1 adds client-side instruction counts of one read per path
# (valgrind --tool=callgrind). SIZES=1 adds the cost side: release binaries
# built without the gRPC client, with it, and with it and its TLS, from cold
# target dirs (sizes, build times, crates).
#
# Variables: KEYS ("10000 100000"; "" with SIZES=1: the cost side only), ROUNDS (11), WATCH_ROUNDS (2), CHANGES
# (40), GAP_MS (150), BURST_WRITES (500), BURST_ROUNDS (2), BURST_REOPEN (1), NO_GATEWAY (1),
# CALLGRIND (0), SIZES (0), CONFD_BIN (default: build target/release/confd), ETCD_BIN (etcd),
# WORK_DIR (default: a temp dir, removed at the end).
#
# Prints a markdown summary; WORK_DIR keeps results.jsonl and the logs.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROJECT=$ROOT/bench/etcdv3-grpc
KEYS=${KEYS-"10000 100000"}
ROUNDS=${ROUNDS:-11}
WATCH_ROUNDS=${WATCH_ROUNDS:-2}
CHANGES=${CHANGES:-40}
GAP_MS=${GAP_MS:-150}
BURST_WRITES=${BURST_WRITES:-500}
BURST_ROUNDS=${BURST_ROUNDS:-2}
CALLGRIND=${CALLGRIND:-0}
SIZES=${SIZES:-0}
NO_GATEWAY=${NO_GATEWAY:-1}
BURST_REOPEN=${BURST_REOPEN:-1}
ETCD_BIN=${ETCD_BIN:-etcd}
PREFIX=/services/web

die() { echo "bench/etcdv3_grpc.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }
command -v python3 >/dev/null || die "python3 is needed (bench/gen_data.py)"
command -v "$ETCD_BIN" >/dev/null || die "needs etcd ($ETCD_BIN not found)"
[[ -x /usr/bin/time ]] || die "needs GNU time (/usr/bin/time)"
command -v protoc >/dev/null || die "etcd-client's build needs protoc (apt-get install protobuf-compiler)"
[[ $CALLGRIND == 0 ]] || command -v valgrind >/dev/null || die "CALLGRIND=1 needs valgrind"

ETCD_PID=""
cleanup() {
    if [[ -n $ETCD_PID ]]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    if [[ -z ${WORK_DIR:-} ]]; then rm -rf "$WORK"; fi
}
if [[ -n ${WORK_DIR:-} ]]; then
    mkdir -p "$WORK_DIR"
    WORK=$(cd "$WORK_DIR" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/confd-grpc-bench.XXXXXX")
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

say "building bench/etcdv3-grpc (release)…"
cargo build --release --locked --quiet --manifest-path "$PROJECT/Cargo.toml" || die "cargo build failed"
# A private copy, so that a rebuild during the run cannot swap it.
cp "$PROJECT/target/release/etcdv3-grpc-bench" "$WORK/probe"
PROBE=$WORK/probe
if [[ -z ${CONFD_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked --quiet --bin confd) || die "cargo build of confd failed"
    CONFD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/confd
fi
[[ -x $CONFD_BIN ]] || die "no executable at $CONFD_BIN"
cp "$CONFD_BIN" "$WORK/confd"
CONFD=$WORK/confd

# Starts a private etcd (extra flags after the name) on free loopback ports;
# sets ETCD_URL and ETCD_PID.
start_etcd() {
    local name=$1 client_port peer_port
    shift
    read -r client_port peer_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
    ETCD_URL="http://127.0.0.1:$client_port"
    rm -rf "$WORK/$name"
    "$ETCD_BIN" --name "$name" --data-dir "$WORK/$name" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "$name=http://127.0.0.1:$peer_port" "$@" \
        >"$WORK/$name.log" 2>&1 &
    ETCD_PID=$!
    # /health is etcd's own HTTP handler, served with or without the gateway.
    for _ in $(seq 100); do
        python3 -c "import urllib.request; urllib.request.urlopen('$ETCD_URL/health', timeout=1)" 2>/dev/null && break
        kill -0 "$ETCD_PID" 2>/dev/null || { tail -n 20 "$WORK/$name.log" >&2; die "etcd did not start"; }
        sleep 0.1
    done
    python3 -c "import urllib.request; urllib.request.urlopen('$ETCD_URL/health', timeout=1)" 2>/dev/null \
        || die "etcd did not answer on $ETCD_URL"
}

stop_etcd() {
    kill "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=""
}

start_etcd etcd
ETCD_VERSION=$("$ETCD_BIN" --version 2>&1 | awk 'NR == 1 { print $3 }') || ETCD_VERSION=unknown
say "etcd $ETCD_VERSION on $ETCD_URL (pid $ETCD_PID)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$SECONDS

etcd_ticks() { awk '{ print $14 + $15 }' "/proc/$ETCD_PID/stat"; }

# Runs one measured process: "$1" names it, the rest is the command. Appends
# one JSON line: the program's own output (or {}), wall (taken here, around
# GNU time), peak RSS and CPU (GNU time), etcd's CPU ticks over the run.
measure() {
    local name=$1 keys=$2
    shift 2
    local before after out start end rc=0
    before=$(etcd_ticks)
    start=$EPOCHREALTIME
    /usr/bin/time -f '%M %U %S' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    end=$EPOCHREALTIME
    after=$(etcd_ticks)
    if [[ $rc != 0 ]]; then
        say "  $name failed ($rc): $(tail -c 300 "$WORK/err")"
        out="{\"error\": $(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()[-300:]))' <"$WORK/err")}"
    else
        out=$(tail -n 1 "$WORK/out")
        [[ $out == \{* ]] || out="{}"
    fi
    read -r rss user sys < <(tail -n 1 "$WORK/time")
    wall=$(python3 -c "print($end - $start)")
    python3 -c '
import json, sys
out = json.loads(sys.argv[1])
out.update(name=sys.argv[2], n=int(sys.argv[3]), wall_s=float(sys.argv[4]), rss_kb=int(sys.argv[5]),
           cpu_s=float(sys.argv[6]) + float(sys.argv[7]), etcd_ticks=int(sys.argv[9]) - int(sys.argv[8]))
print(json.dumps(out))' "$out" "$name" "$keys" "$wall" "$rss" "$user" "$sys" "$before" "$after" >>"$RESULTS"
    return $rc
}

READ_PATHS=(gateway grpc grpc-single confd)
for keys in $KEYS; do
    say "== $keys keys: loading"
    python3 "$ROOT/bench/gen_data.py" --keys "$keys" --etcd "$ETCD_URL"
    rm -rf "$WORK/confdir" "$WORK/out-$keys"
    python3 "$ROOT/bench/gen_data.py" --resources 1 --confdir "$WORK/confdir" --dest-dir "$WORK/out-$keys"
    dest=$WORK/out-$keys/haproxy-000.cfg
    say "  one-shot reads, $ROUNDS rounds"
    for round in $(seq "$ROUNDS"); do
        for i in "${!READ_PATHS[@]}"; do
            path=${READ_PATHS[$(((i + round) % ${#READ_PATHS[@]}))]}
            if [[ $path == confd ]]; then
                rm -f "$dest"
                measure confd "$keys" "$CONFD" -onetime -backend etcdv3 -node "$ETCD_URL" \
                    -confdir "$WORK/confdir" -log-level error || die "confd failed"
                lines=$(grep -c '^ *server ' "$dest" || true)
                [[ $lines == $((keys / 2)) ]] || die "confd wrote $lines server lines, expected $((keys / 2))"
            else
                measure "$path" "$keys" "$PROBE" read "$path" "$ETCD_URL" "$PREFIX" "$keys" || die "$path read failed"
            fi
        done
    done
    measure grpc-default-limit "$keys" "$PROBE" read grpc-default-limit "$ETCD_URL" "$PREFIX" "$keys" || true
    if [[ $CALLGRIND == 1 ]]; then
        for path in gateway grpc grpc-single; do
            valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PROBE" read "$path" "$ETCD_URL" \
                "$PREFIX" "$keys" >/dev/null 2>"$WORK/callgrind.err" || die "callgrind $path failed"
            ir=$(awk '/Collected :/ { print $NF }' "$WORK/callgrind.err")
            echo "{\"name\": \"callgrind\", \"path\": \"$path\", \"n\": $keys, \"ir\": ${ir:-0}}" >>"$RESULTS"
        done
    fi
    say "  watch: $WATCH_ROUNDS × $CHANGES single changes per path"
    for round in $(seq "$WATCH_ROUNDS"); do
        for path in $( ((round % 2)) && echo gateway grpc || echo grpc gateway); do
            measure "watch-$path" "$keys" "$PROBE" watch "$path" "$ETCD_URL" "$PREFIX" "$keys" \
                "$CHANGES" "$GAP_MS" "$((round * 7919 + keys))" || die "$path watch failed"
        done
    done
    say "  burst: $BURST_ROUNDS × $BURST_WRITES writes per path"
    for round in $(seq "$BURST_ROUNDS"); do
        for path in $( ((round % 2)) && echo gateway grpc || echo grpc gateway); do
            measure "burst-$path" "$keys" "$PROBE" burst "$path" "$ETCD_URL" "$PREFIX" \
                "$BURST_WRITES" "$path$round" || die "$path burst failed"
        done
    done
    if [[ $BURST_REOPEN == 1 ]]; then
        say "  burst with a new watch stream after every batch, 1 per path"
        for path in gateway grpc; do
            measure "burst-$path" "$keys" "$PROBE" burst-reopen "$path" "$ETCD_URL" "$PREFIX" \
                "$BURST_WRITES" "$path-reopen" || die "$path burst-reopen failed"
        done
    fi
done
stop_etcd
TOOK=$((SECONDS - START_S))

# A cluster that serves no gateway: each path reads it once (a failure is
# the result here, recorded with its message).
if [[ $NO_GATEWAY == 1 ]]; then
    say "== etcd with --enable-grpc-gateway=false"
    start_etcd etcd-no-gateway --enable-grpc-gateway=false
    for path in gateway grpc confd; do
        if [[ $path == confd ]]; then
            [[ -d $WORK/confdir ]] || python3 "$ROOT/bench/gen_data.py" --resources 1 \
                --confdir "$WORK/confdir" --dest-dir "$WORK/out-none"
            measure no-gateway-confd 0 "$CONFD" -onetime -backend etcdv3 -node "$ETCD_URL" \
                -confdir "$WORK/confdir" -log-level error || true
        else
            measure "no-gateway-$path" 0 "$PROBE" read "$path" "$ETCD_URL" "$PREFIX" 0 || true
        fi
    done
    stop_etcd
fi

if [[ $SIZES == 1 ]]; then
    say "== cost side: cold release builds (gateway only; + etcd-client; + its TLS)"
    for variant in gateway grpc grpc-tls; do
        case $variant in
            gateway) features=(--no-default-features) ;;
            grpc) features=() ;;
            grpc-tls) features=(--features grpc-tls) ;;
        esac
        target=$WORK/target-$variant
        rm -rf "$target"
        start=$(date +%s.%N)
        CARGO_TARGET_DIR=$target cargo build --release --locked --quiet \
            --manifest-path "$PROJECT/Cargo.toml" "${features[@]}" || die "build $variant failed"
        end=$(date +%s.%N)
        crates=$(cd "$PROJECT" && cargo tree --locked -e normal --prefix none "${features[@]}" \
            | sed 's/ (\*)$//' | sort -u | wc -l)
        size=$(stat -c %s "$target/release/etcdv3-grpc-bench")
        echo "{\"name\": \"size\", \"path\": \"$variant\", \"bytes\": $size, \"build_s\": $(python3 -c "print(round($end - $start, 1))"), \"crates\": $crates}" >>"$RESULTS"
        rm -rf "$target"
    done
fi

echo
echo "etcd $ETCD_VERSION on loopback (private instance, data dir under ${TMPDIR:-/tmp}); probe built from $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "confd: $CONFD_BIN ($("$CONFD" --version 2>/dev/null | awk 'NR == 1' || echo unknown version))"
echo "machine: $(nproc) cores; load average at the start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg); measurements took $TOOK s"
echo
python3 "$ROOT/bench/etcdv3_grpc_report.py" "$RESULTS"
