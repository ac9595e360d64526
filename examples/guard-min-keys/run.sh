#!/usr/bin/env bash
# The min_keys guard: once a good haproxy.cfg is in place, data that comes back
# empty (a wiped store, a wrong prefix, a truncated read) must not replace it
# with a configuration without servers. confd refuses, exits 1 and leaves the
# file as it was; `confd check` flags the same data in CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary

# CONFD_* variables set the same values as flags: clear any from your shell.
unset "${!CONFD_@}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "run.sh: $*" >&2; exit 1; }

# The library's HAProxy template; the resource asks for at least one server
# (ip + port = 2 keys) before it writes anything.
mkdir -p confd/conf.d confd/templates
cp "$repo/templates/haproxy/templates/haproxy.cfg.tmpl" confd/templates/
cat > confd/conf.d/haproxy.toml <<'TOML'
[template]
src = "haproxy.cfg.tmpl"
dest = "haproxy.cfg"
keys = ["/services/web"]
min_keys = 2
reload_cmd = "echo reload >> reloads.log"
TOML

cat > good.yaml <<'YAML'
services:
  web:
    shop.example.com:
      web1: {ip: 10.0.1.11, port: "8080"}
      web2: {ip: 10.0.1.12, port: "8080"}
YAML
# What a wiped store looks like: the subtree is there, the servers are gone.
cat > empty.yaml <<'YAML'
services:
  web: {}
YAML

echo "== 1. good data: haproxy.cfg is written"
"$CONFD" -onetime -backend file -file good.yaml -confdir confd
grep -c '^    server ' haproxy.cfg | grep -qx 2 || fail "expected 2 server lines"
cp haproxy.cfg good.cfg

echo
echo "== 2. empty data: confd refuses to write"
status=0
"$CONFD" -onetime -backend file -file empty.yaml -confdir confd 2> confd.log || status=$?
cat confd.log >&2
echo "exit status: $status"
[[ $status -eq 1 ]] || fail "expected exit status 1, got $status"
grep -q 'min_keys' confd.log || fail "the error does not mention min_keys"
cmp -s good.cfg haproxy.cfg || fail "haproxy.cfg was changed"
[[ $(wc -l < reloads.log) -eq 1 ]] || fail "HAProxy was reloaded after the refusal"
echo "haproxy.cfg still has its 2 servers; no reload"

echo
echo "== 3. the same data in CI: confd check fails"
status=0
"$CONFD" check -confdir confd -file empty.yaml || status=$?
echo "exit status: $status"
[[ $status -eq 1 ]] || fail "confd check should fail on empty fixtures"
"$CONFD" check -confdir confd -file good.yaml || fail "confd check should pass on good fixtures"

echo
echo "== 4. without the guard, the same data would have emptied the backends"
sed -i '/^min_keys/d' confd/conf.d/haproxy.toml
"$CONFD" -onetime -noop -backend file -file empty.yaml -confdir confd | tee noop.out
grep -q '^-    server web1 ' noop.out || fail "-noop should show the servers going away"
cmp -s good.cfg haproxy.cfg || fail "-noop changed haproxy.cfg"

echo
echo "guard-min-keys: OK"
