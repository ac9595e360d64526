#!/usr/bin/env bash
# Redis -> confd -watch -> haproxy.cfg. Starts a private redis-server with
# keyspace notifications on, on a free 127.0.0.1 port in a temporary
# directory, stores servers as hashes (services:web:<domain>:<host> with
# fields ip and port) and the frontend's port as a string, and follows
# confd -backend redis -separator : -watch as servers are added, changed and
# removed, and as data HAProxy would reject is written.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
for tool in redis-server redis-cli haproxy python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done

# CONFD_* variables set the same values as flags: clear any from your shell.
unset "${!CONFD_@}"

start_work

fail() {
    echo "run.sh: $*" >&2
    echo "--- haproxy.cfg" >&2; cat haproxy.cfg >&2 2>/dev/null || true
    echo "--- confd.log"   >&2; cat confd.log   >&2 2>/dev/null || true
    exit 1
}
servers() { grep '^    server' haproxy.cfg 2>/dev/null | awk '{print $2, $3}' | paste -sd' '; }
has() { [[ $(servers) == "$1" ]]; }

# -- redis-server ------------------------------------------------------------
port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
    --notify-keyspace-events KA --logfile redis.log &
pids+=($!)
rc() { redis-cli -p "$port" "$@" >/dev/null; }
within 10 rc ping 2>/dev/null || fail "redis-server did not start"
rc set haproxy:port "$(free_port)"
rc hset services:web:shop.example.com:web1 ip 127.0.0.1 port 8001
rc hset services:web:shop.example.com:web2 ip 127.0.0.1 port 8002

echo "== 1. one pass: the hashes' fields are keys (/services/web/shop.example.com/web1/ip)"
echo "\$ confd -onetime -backend redis -node 127.0.0.1:$port -separator : -confdir $here/confd"
"$CONFD" -onetime -backend redis -node "127.0.0.1:$port" -separator : -confdir "$here/confd" \
    >confd.log 2>&1 || fail "confd -onetime failed"
has "web1 127.0.0.1:8001 web2 127.0.0.1:8002" || fail "haproxy.cfg lacks web1 and web2"
sed -n '/^backend/,$p' haproxy.cfg

echo
echo "== 2. confd -watch follows keyspace notifications"
"$CONFD" -watch -backend redis -node "127.0.0.1:$port" -separator : -confdir "$here/confd" \
    >confd.log 2>&1 &
pids+=($!)
within 10 grep -q 'watching for changes' confd.log || fail "confd is not watching"
sleep 0.5
rc hset services:web:shop.example.com:web3 ip 127.0.0.1 port 8003
within 5 has "web1 127.0.0.1:8001 web2 127.0.0.1:8002 web3 127.0.0.1:8003" || fail "web3 was not added"
echo "added web3:    $(servers)"
rc hset services:web:shop.example.com:web2 port 9002
within 5 has "web1 127.0.0.1:8001 web2 127.0.0.1:9002 web3 127.0.0.1:8003" || fail "web2's port did not change"
echo "web2 moved:    $(servers)"
rc del services:web:shop.example.com:web1
within 5 has "web2 127.0.0.1:9002 web3 127.0.0.1:8003" || fail "web1 was not removed"
echo "web1 removed:  $(servers)"
# String keys work too, and their changes are applied from the notification.
rc set services:web:blog.example.com:blog1:ip 127.0.0.1
rc set services:web:blog.example.com:blog1:port 8080
within 5 grep -q 'server blog1 127.0.0.1:8080' haproxy.cfg || fail "blog1 (string keys) is missing"
echo "blog1 (strings): $(grep -c '^backend' haproxy.cfg) backends"

echo
echo "== 3. bad data: web3's port is 'notaport'; haproxy -c rejects the render"
cp haproxy.cfg before.cfg
rc hset services:web:shop.example.com:web3 port notaport
within 10 grep -q 'check_cmd rejected' confd.log || fail "confd did not log the check failure"
cmp -s before.cfg haproxy.cfg || fail "haproxy.cfg changed although the check failed"
echo "haproxy.cfg unchanged: $(servers)"
[[ $(wc -l < reloads.log) -ge 4 ]] || fail "expected a reload per accepted change"

echo
echo "redis-haproxy: OK"
