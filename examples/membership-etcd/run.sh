#!/usr/bin/env bash
# The membership scenario with real traffic: web hosts announce themselves in
# etcd (v2 API) with `confd announce` (a TTL key kept alive while a health
# check passes); `confd -watch` renders HAProxy's pool from /members. Starts a
# private etcd, four small HTTP servers with one announcer each, HAProxy in
# master-worker mode and confd -watch, all on free 127.0.0.1 ports in a
# temporary directory; then a host joins, one stops cleanly, one dies, one
# fails its health check and recovers, while requests go through HAProxy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
for tool in etcd haproxy curl python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done

# CONFD_* variables set the same values as flags: clear any from your shell.
unset "${!CONFD_@}"

TTL=3   # seconds a host outlives its last refresh

start_work

fail() {
    echo "run.sh: $*" >&2
    echo "--- haproxy.cfg" >&2; cat haproxy.cfg >&2 2>/dev/null || true
    echo "--- confd.log"   >&2; cat confd.log   >&2 2>/dev/null || true
    for log in web*.announce.log; do
        echo "--- $log" >&2; cat "$log" >&2 2>/dev/null || true
    done
    exit 1
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# -- etcd, v2 API -----------------------------------------------------------
client=$(free_port) peer=$(free_port)
etcd --name demo --data-dir etcd.data --enable-v2 --log-level warn \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "demo=http://127.0.0.1:$peer" >etcd.log 2>&1 &
pids+=($!)
ETCD=http://127.0.0.1:$client
within 20 curl -fs "$ETCD/health" -o /dev/null || { cat etcd.log >&2; fail "etcd did not start"; }
put() { curl -fsS -X PUT "$ETCD/v2/keys$1" --data-urlencode "value=$2" -o /dev/null; }

# -- HTTP servers answering with their own name ------------------------------
declare -A port server announcer
for name in web1 web2 web3 web4; do
    responder "$name"
    server[$name]=$responder_pid
done

# What each host runs: announce itself while its health check passes (here:
# while the file <host>.up exists; in production, say, -check-http).
join() {
    local name=$1
    touch "$name.up"
    echo "\$ confd announce -backend etcd -node $ETCD -key /members/$name -value 127.0.0.1:${port[$name]} -ttl ${TTL}s -check-cmd 'test -e $name.up' -check-interval 500ms"
    "$CONFD" announce -backend etcd -node "$ETCD" -key "/members/$name" \
        -value "127.0.0.1:${port[$name]}" -ttl "${TTL}s" \
        -check-cmd "test -e $name.up" -check-interval 500ms >"$name.announce.log" 2>&1 &
    announcer[$name]=$!
    pids+=($!)
}

# -- HAProxy, master-worker mode, on a bootstrap configuration ---------------
# It answers 503 until confd renders the real configuration and reloads it.
start_haproxy

# Who answers 12 requests (no Host header: one pool).
is() { [[ $(names "" 12) == "$1" ]]; }
in_pool() { grep -q "^    server $1 " haproxy.cfg; }
not_in_pool() { ! in_pool "$1"; }

put /haproxy/port "$listen"
echo "\$ confd -backend etcd -node $ETCD -confdir $here/confd -watch"
"$CONFD" -backend etcd -node "$ETCD" -confdir "$here/confd" -watch >confd.log 2>&1 &
pids+=($!)

echo "== 1. web1, web2 and web3 announce themselves: HAProxy sends them traffic"
join web1; join web2; join web3
within 15 is "web1 web2 web3" || fail "the pool is not web1 web2 web3: $(names "" 12)"
sed -n '/^backend/,$p' haproxy.cfg
echo "x12 -> $(names "" 12)"

echo
echo "== 2. web4 joins"
start=$(now)
join web4
within 10 is "web1 web2 web3 web4" || fail "web4 gets no traffic: $(names "" 12)"
echo "web4 gets traffic after $(since "$start") s; x12 -> $(names "" 12)"

echo
echo "== 3. web1 stops cleanly (SIGTERM to its announcer): it leaves at once"
start=$(now)
kill -TERM "${announcer[web1]}"
within 10 not_in_pool web1 || fail "web1 is still in the pool"
left=$(since "$start")
within 5 is "web2 web3 web4" || fail "web1 still gets traffic: $(names "" 12)"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$left" "$TTL" \
    || fail "web1 left after $left s, not at once (the TTL is $TTL s)"
grep -q 'withdrawn' web1.announce.log || fail "web1's announcer did not log its withdrawal"
echo "web1 left after $left s (TTL ${TTL} s); x12 -> $(names "" 12)"

echo
echo "== 4. web2 dies (its announcer and server killed): it leaves when its TTL expires"
start=$(now)
kill -KILL "${announcer[web2]}" "${server[web2]}"
{ wait "${announcer[web2]}" "${server[web2]}"; } 2>/dev/null || true
within $((TTL + 5)) not_in_pool web2 || fail "web2 is still in the pool after the TTL"
left=$(since "$start")
within 5 is "web3 web4" || fail "web2 still gets traffic: $(names "" 12)"
echo "web2 left after $left s (TTL ${TTL} s); x12 -> $(names "" 12)"

echo
echo "== 5. web3's health check fails: it stops refreshing and leaves within its TTL"
start=$(now)
rm web3.up
within $((TTL + 5)) not_in_pool web3 || fail "web3 is still in the pool"
left=$(since "$start")
within 5 is "web4" || fail "web3 still gets traffic: $(names "" 12)"
echo "web3 left after $left s; x12 -> $(names "" 12)"

echo
echo "== 6. web3's health check passes again: it is back at once"
start=$(now)
touch web3.up
within 10 is "web3 web4" || fail "web3 did not come back: $(names "" 12)"
echo "web3 back after $(since "$start") s; x12 -> $(names "" 12)"
sed -n '/^backend/,$p' haproxy.cfg

echo
echo "membership-etcd: OK"
