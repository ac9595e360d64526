#!/usr/bin/env bash
# service(...) end to end with real traffic: the in-tree Consul API test server
# (NOT Consul: the Rust server in tests/it/common/consul.rs, built as the cargo
# example `consul-test-server`) -> confd -watch -> HAProxy -> HTTP servers.
# Starts the test server, four small HTTP servers, HAProxy in master-worker
# mode and confd -watch with ./confd, all on free 127.0.0.1 ports in a
# temporary directory; then sends requests through HAProxy while instances'
# health checks fail and pass, an instance is added, a node fails, and the KV
# store is given data HAProxy would reject.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
for tool in haproxy curl python3 mkfifo; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done

# The in-tree Consul API test server: CONSUL_TEST_SERVER, or built with cargo
# (a no-op when it is up to date) and found through cargo's own report.
SERVER=${CONSUL_TEST_SERVER:-}
if [[ -z $SERVER ]]; then
    command -v cargo >/dev/null || {
        echo "run.sh: needs cargo to build the in-tree Consul API test server (or set CONSUL_TEST_SERVER)" >&2
        exit 1
    }
    SERVER=$(cd "$repo" && cargo build --quiet --example consul-test-server --message-format=json |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "consul-test-server" and m.get("executable"):
        print(m["executable"])')
fi
if [[ -z $SERVER || ! -x $SERVER ]]; then
    echo "run.sh: no in-tree Consul API test server at '${SERVER}' (cargo build --example consul-test-server)" >&2
    exit 1
fi

# CONFD_* and CONSUL_* variables change what confd does: clear any from your shell.
unset "${!CONFD_@}" "${!CONSUL_HTTP_@}"

start_work

fail() {
    echo "run.sh: $*" >&2
    echo "--- haproxy.cfg"   >&2; cat haproxy.cfg  >&2 2>/dev/null || true
    echo "--- confd.log"     >&2; cat confd.log    >&2 2>/dev/null || true
    echo "--- haproxy.log"   >&2; cat haproxy.log  >&2 2>/dev/null || true
    echo "--- test server"   >&2; cat consul.log consul.out >&2 2>/dev/null || true
    exit 1
}
now_ms() { date +%s%3N; }

# -- the in-tree Consul API test server -------------------------------------
# KV through its HTTP API, as with Consul; catalog changes (which Consul takes
# from agents and health checks) as commands on its standard input, a FIFO.
mkfifo consul.ctl
"$SERVER" --port-file consul.port <consul.ctl >consul.out 2>consul.log &
server_pid=$!
pids+=("$server_pid")
exec 3>consul.ctl
within 10 test -s consul.port || fail "the test server did not start"
CONSUL=127.0.0.1:$(cat consul.port)
sent=0
answered() { (( $(wc -l <consul.out) >= sent )); }
# One command to the test server; waits for its answer, fails on an error.
ctl() {
    kill -0 "$server_pid" 2>/dev/null || fail "the test server is gone"
    echo "$*" >&3
    sent=$((sent + 1))
    within 5 answered || fail "the test server did not answer '$*'"
    local answer
    answer=$(sed -n "${sent}p" consul.out)
    [[ $answer == ok* ]] || fail "test server: '$*' -> $answer"
}
kv_put() { curl -fsS -X PUT --data-binary "$2" "http://$CONSUL/v1/kv/$1" -o /dev/null; }

# -- HTTP servers answering with their own name ------------------------------
declare -A port
for name in web1 web2 web3 blog1; do responder "$name"; done

# -- HAProxy, master-worker mode, on a bootstrap configuration ---------------
# It answers 503 until confd renders the real configuration and reloads it.
start_haproxy

is() { [[ $(names "$1" 9) == "$2" ]]; }
# Waits up to 15 s until 9 requests for host $1 are answered by exactly $2;
# prints how long that took after $3 (a now_ms timestamp).
routes() {
    within 15 is "$1" "$2" || return 1
    echo "$1 x9 -> $(names "$1" 9)   ($(( $(now_ms) - $3 )) ms after the change, 9-request probes included)"
}
servers() { grep -E '^backend|^    server' haproxy.cfg | sed 's/^/    /'; }

# -- data, then confd -watch -------------------------------------------------
kv_put haproxy/port "$listen"
kv_put haproxy/domains/shop.example.com web
kv_put haproxy/domains/blog.example.com blog
ctl register web1 web 127.0.0.1 "${port[web1]}" node=node1
ctl register web2 web 127.0.0.1 "${port[web2]}" node=node2
ctl register blog1 blog 127.0.0.1 "${port[blog1]}" node=node1

echo "\$ confd -backend consul -node $CONSUL -confdir $here/confd -watch"
echo "  ($CONSUL is the in-tree Consul API test server, not Consul)"
"$CONFD" -backend consul -node "$CONSUL" -confdir "$here/confd" -watch >confd.log 2>&1 &
pids+=($!)

echo "== 1. confd renders haproxy.cfg from the KV store and the catalog; requests are routed by Host"
t=$(now_ms)
routes shop.example.com "web1 web2" "$t" || fail "shop.example.com is not served by web1 and web2"
routes blog.example.com "blog1" "$t" || fail "blog.example.com is not served by blog1"
sed -n '/^frontend/,$p' haproxy.cfg
echo "other.example.com -> $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.example.com' "http://127.0.0.1:$listen/")"

echo
echo "== 2. web1's health check turns critical: it leaves the rotation"
t=$(now_ms); ctl check web1 critical
routes shop.example.com "web2" "$t" || fail "web1 still receives requests"
servers

echo
echo "== 3. web1 passes again: it is back"
t=$(now_ms); ctl check web1 passing
routes shop.example.com "web1 web2" "$t" || fail "web1 does not receive requests again"

echo
echo "== 4. web3 registers (on node3)"
t=$(now_ms); ctl register web3 web 127.0.0.1 "${port[web3]}" node=node3
routes shop.example.com "web1 web2 web3" "$t" || fail "web3 does not receive requests"
servers

echo
echo "== 5. node2 fails (its serfHealth check): every instance on it leaves; then it recovers"
t=$(now_ms); ctl node-check node2 critical
routes shop.example.com "web1 web3" "$t" || fail "web2 (on node2) still receives requests"
t=$(now_ms); ctl node-check node2 passing
routes shop.example.com "web1 web2 web3" "$t" || fail "web2 does not receive requests again"

echo
echo "== 6. bad KV data: /haproxy/port is 'notaport'; haproxy -c rejects the render"
cp haproxy.cfg before.cfg
reloads=$(grep -c 'Loading success' haproxy.log)
kv_put haproxy/port notaport
within 15 grep -q 'check_cmd rejected' confd.log || fail "confd did not log the check failure"
line=$(grep 'check_cmd rejected' confd.log)
echo "confd.log: ${line%%; output:*}"
cmp -s before.cfg haproxy.cfg || fail "haproxy.cfg changed although the check failed"
[[ $(grep -c 'Loading success' haproxy.log) == "$reloads" ]] || fail "HAProxy was reloaded"
is shop.example.com "web1 web2 web3" || fail "HAProxy no longer serves the previous configuration"
echo "haproxy.cfg unchanged; shop.example.com x9 -> $(names shop.example.com 9)"

echo
echo "haproxy-consul: OK (against the in-tree Consul API test server)"
