#!/usr/bin/env bash
# The seed scenario with real traffic: etcd (v2 API) -> confd -watch -> HAProxy
# -> HTTP servers. Starts a private etcd, three small HTTP servers, HAProxy in
# master-worker mode and confd -watch with ./confd, all on free 127.0.0.1 ports
# in a temporary directory; then sends requests through HAProxy while it adds
# a server in etcd, removes one, and writes data HAProxy would reject.
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

start_work

fail() {
    echo "run.sh: $*" >&2
    echo "--- haproxy.cfg"   >&2; cat haproxy.cfg  >&2 2>/dev/null || true
    echo "--- confd.log"     >&2; cat confd.log    >&2 2>/dev/null || true
    echo "--- haproxy.log"   >&2; cat haproxy.log  >&2 2>/dev/null || true
    exit 1
}

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
del() { curl -fsS -X DELETE "$ETCD/v2/keys$1?recursive=true" -o /dev/null; }

# -- HTTP servers answering with their own name ------------------------------
declare -A port
for name in web1 web2 web3 blog1; do responder "$name"; done

# -- HAProxy, master-worker mode, on a bootstrap configuration ---------------
# It answers 503 until confd renders the real configuration and reloads it.
start_haproxy

is() { [[ $(names "$1" 9) == "$2" ]]; }

# -- data, then confd -watch -------------------------------------------------
put /haproxy/port "$listen"
for name in web1 web2; do
    put "/services/web/shop.example.com/$name/ip" 127.0.0.1
    put "/services/web/shop.example.com/$name/port" "${port[$name]}"
done
put /services/web/blog.example.com/blog1/ip 127.0.0.1
put /services/web/blog.example.com/blog1/port "${port[blog1]}"

echo "\$ confd -backend etcd -node $ETCD -confdir $here/confd -watch"
"$CONFD" -backend etcd -node "$ETCD" -confdir "$here/confd" -watch >confd.log 2>&1 &
pids+=($!)

echo "== 1. confd renders haproxy.cfg and reloads HAProxy: requests are routed by Host"
within 15 is shop.example.com "web1 web2" || fail "shop.example.com is not served by web1 and web2"
within 5 is blog.example.com "blog1" || fail "blog.example.com is not served by blog1"
sed -n '/^frontend/,$p' haproxy.cfg
echo "shop.example.com x9 -> $(names shop.example.com 9)"
echo "blog.example.com x9 -> $(names blog.example.com 9)"
echo "other.example.com -> $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.example.com' "http://127.0.0.1:$listen/")"

echo
echo "== 2. add web3 to shop.example.com in etcd"
put /services/web/shop.example.com/web3/ip 127.0.0.1
put /services/web/shop.example.com/web3/port "${port[web3]}"
within 15 is shop.example.com "web1 web2 web3" || fail "web3 does not receive requests"
grep '^    server' haproxy.cfg
echo "shop.example.com x9 -> $(names shop.example.com 9)"

echo
echo "== 3. remove web1 from etcd"
del /services/web/shop.example.com/web1
within 15 is shop.example.com "web2 web3" || fail "web1 still receives requests"
echo "shop.example.com x9 -> $(names shop.example.com 9)"

echo
echo "== 4. bad data: web2's port is 'notaport'; haproxy -c rejects the render"
cp haproxy.cfg before.cfg
reloads=$(grep -c 'Loading success' haproxy.log)
put /services/web/shop.example.com/web2/port notaport
within 15 grep -q 'check_cmd rejected' confd.log || fail "confd did not log the check failure"
line=$(grep 'check_cmd rejected' confd.log)
[[ $line == *"invalid character 'n' in port number 'notaport'"* ]] || fail "the log lacks HAProxy's complaint"
echo "confd.log: ${line%%; output:*}"
echo "  haproxy -c said: $(grep -o "\[ALERT\][^\\]*notaport[^\\]*" <<<"$line")"
cmp -s before.cfg haproxy.cfg || fail "haproxy.cfg changed although the check failed"
[[ $(grep -c 'Loading success' haproxy.log) == "$reloads" ]] || fail "HAProxy was reloaded"
is shop.example.com "web2 web3" || fail "HAProxy no longer serves the previous configuration"
echo "haproxy.cfg unchanged; shop.example.com x9 -> $(names shop.example.com 9)"

echo
echo "haproxy-etcd: OK"
