#!/usr/bin/env bash
# HAProxy following a Docker Swarm's DNS, with real traffic: dnsmasq (the
# Swarm's DNS) -> confd polling every second -> HAProxy -> replicas. Starts
# dnsmasq answering from a hosts file of its own, three web replicas on one
# port each on its own loopback address (127.0.0.2-4, like tasks.web's A
# records), one api replica behind an SRV record, HAProxy in master-worker
# mode and confd, all in a temporary directory; then adds and removes replicas
# in DNS and checks the traffic.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
PATH=$PATH:/usr/sbin:/sbin
for tool in dnsmasq haproxy curl python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done

# CONFD_* variables set the same values as flags: clear any from your shell.
unset "${!CONFD_@}"

start_work

fail() {
    echo "run.sh: $*" >&2
    echo "--- haproxy.cfg"   >&2; cat haproxy.cfg  >&2 2>/dev/null || true
    echo "--- confd.log"     >&2; cat confd.log    >&2 2>/dev/null || true
    echo "--- dnsmasq.log"   >&2; cat dnsmasq.log  >&2 2>/dev/null || true
    echo "--- haproxy.log"   >&2; cat haproxy.log  >&2 2>/dev/null || true
    exit 1
}

# -- replicas: HTTP servers answering with their own name --------------------
# Each binds its own address; the port is chosen by the first and shared.
declare -A port
web=$(free_port)
responder web1 127.0.0.2 "$web"
responder web2 127.0.0.3 "$web"
responder web3 127.0.0.4 "$web"
responder api1 127.0.0.5 0
api=${port[api1]}

# -- dnsmasq: the Swarm's DNS --------------------------------------------------
# Answers from dns.hosts only (no forwarding, nothing cached: --local-ttl=0);
# re-reads it on SIGHUP. tasks.web starts with two replicas.
hosts() {  # the web replicas' addresses
    { for ip in "$@"; do echo "$ip tasks.web"; done; echo "127.0.0.5 api-1.swarm"; } > dns.hosts
}
hosts 127.0.0.2 127.0.0.3
dns=$(free_port)
user=(); [ "$(id -u)" = 0 ] && user=(--user=root)   # keep reading our private dir
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --local=/#/ \
    --local-ttl=0 --port="$dns" --listen-address=127.0.0.1 --bind-interfaces \
    --addn-hosts="$work/dns.hosts" --pid-file="$work/dnsmasq.pid" --log-facility="$work/dnsmasq.log" \
    --srv-host="_http._tcp.tasks.api,api-1.swarm,$api" "${user[@]}" &
pids+=($!)
dnsmasq_pid=$!
# How many times dnsmasq has read dns.hosts (it logs each read).
host_reads() { local n; n=$(grep -c "read $work/dns.hosts" dnsmasq.log 2>/dev/null); echo "${n:-0}"; }
more_than() { (( $("$1") > $2 )); }     # more_than COUNTER N: the counter passed N
within 10 more_than host_reads 0 || fail "dnsmasq did not start"
# Replaces the replicas of tasks.web in DNS.
set_replicas() {
    local reads
    reads=$(host_reads)
    hosts "$@"
    kill -HUP "$dnsmasq_pid"
    within 10 more_than host_reads "$reads" || fail "dnsmasq did not re-read dns.hosts"
}

# -- HAProxy, master-worker mode, on a bootstrap configuration ---------------
# It answers 503 until confd renders the real configuration and reloads it.
start_haproxy

is() { [[ $(names "$1" 9) == "$2" ]]; }
loads() { grep -c 'Loading success' haproxy.log; }

# -- data, then confd polling every second -------------------------------------
cat > services.yaml <<YAML
haproxy:
  port: $listen
services:
  web:                 # tasks.web's A records, each on port $web
    domain: web.example.com
    port: $web
  api:                 # _http._tcp.tasks.api's SRV records
    domain: api.example.com
    srv: http
YAML
echo "options timeout:1 attempts:2" > resolv.conf
echo "\$ CONFD_DNS_SERVER=127.0.0.1:$dns confd -backend file -file services.yaml -confdir $here/confd -interval 1"
CONFD_DNS_SERVER=127.0.0.1:$dns CONFD_RESOLV_CONF=$work/resolv.conf \
    "$CONFD" -backend file -file services.yaml -confdir "$here/confd" -interval 1 -log-level debug >confd.log 2>&1 &
pids+=($!)

echo "== 1. confd renders a server per DNS answer; HAProxy routes to them"
within 15 is web.example.com "web1 web2" || fail "web.example.com is not served by web1 and web2"
within 5 is api.example.com "api1" || fail "api.example.com is not served by api1 (SRV)"
grep '^    server' haproxy.cfg
echo "web.example.com x9 -> $(names web.example.com 9)"
echo "api.example.com x9 -> $(names api.example.com 9)"

echo
echo "== 2. a third replica appears in DNS"
set_replicas 127.0.0.2 127.0.0.3 127.0.0.4
within 15 is web.example.com "web1 web2 web3" || fail "web3 does not receive requests"
echo "web.example.com x9 -> $(names web.example.com 9)"

echo
echo "== 3. DNS answers in a new order at every poll: nothing is written, nothing reloaded"
before=$(stat -c '%i %Y.%y' haproxy.cfg) reloads=$(loads)
polls() { local n; n=$(grep -c 'outcome=unchanged' confd.log 2>/dev/null); echo "${n:-0}"; }   # passes that changed nothing
within 15 more_than polls $(($(polls) + 2)) || fail "confd did not poll"
[[ $(stat -c '%i %Y.%y' haproxy.cfg) == "$before" ]] || fail "haproxy.cfg was rewritten"
[[ $(loads) == "$reloads" ]] || fail "HAProxy was reloaded"
echo "3 more polls, haproxy.cfg untouched, no reload"

echo
echo "== 4. the first replica leaves DNS"
set_replicas 127.0.0.3 127.0.0.4
within 15 is web.example.com "web2 web3" || fail "web1 still receives requests"
echo "web.example.com x9 -> $(names web.example.com 9)"

echo
echo "haproxy-swarm-dns: OK"
