#!/usr/bin/env bash
# The file backend with the library's HAProxy template: render from a YAML
# file, edit the YAML, preview the change with -noop (a unified diff; nothing
# written, nothing reloaded), apply it, then run again to show that an
# unchanged render neither rewrites the file nor reloads HAProxy.
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
reloads() { if [[ -f reloads.log ]]; then wc -l < reloads.log; else echo 0; fi; }
confd() { "$CONFD" "$@"; }

# A confdir: the library template and a resource writing to ./haproxy.cfg.
# reload_cmd stands in for `systemctl reload haproxy` by counting reloads;
# check_cmd validates with HAProxy when it is installed.
mkdir -p confd/conf.d confd/templates
cp "$repo/templates/haproxy/templates/haproxy.cfg.tmpl" confd/templates/
cat > confd/conf.d/haproxy.toml <<'TOML'
[template]
src = "haproxy.cfg.tmpl"
dest = "haproxy.cfg"
keys = ["/services/web"]
min_keys = 2
check_cmd = "if command -v haproxy >/dev/null; then haproxy -c -q -f {{.src}}; fi"
reload_cmd = "echo reload >> reloads.log"
TOML

cat > services.yaml <<'YAML'
services:
  web:
    shop.example.com:
      web1: {ip: 10.0.1.11, port: "8080"}
      web2: {ip: 10.0.1.12, port: "8080"}
    blog.example.com:
      blog1: {ip: 10.0.2.21, port: "2368"}
YAML

echo "== 1. first render"
confd -onetime -backend file -file services.yaml -confdir confd
cat haproxy.cfg
[[ $(reloads) -eq 1 ]] || fail "expected 1 reload, saw $(reloads)"
grep -q '^    server web2 10.0.1.12:8080 check$' haproxy.cfg || fail "web2 missing"

echo
echo "== 2. edit the data: add web3 to shop.example.com, move blog1 to port 2369"
cat > services.yaml <<'YAML'
services:
  web:
    shop.example.com:
      web1: {ip: 10.0.1.11, port: "8080"}
      web2: {ip: 10.0.1.12, port: "8080"}
      web3: {ip: 10.0.1.13, port: "8080"}
    blog.example.com:
      blog1: {ip: 10.0.2.21, port: "2369"}
YAML
cp haproxy.cfg before.cfg

echo
echo "== 3. preview with -noop: a diff, nothing written, nothing reloaded"
confd -onetime -noop -backend file -file services.yaml -confdir confd | tee noop.out
grep -q '^+    server web3 10.0.1.13:8080 check$' noop.out || fail "-noop did not show web3"
grep -q '^-    server blog1 10.0.2.21:2368 check$' noop.out || fail "-noop did not show the old blog1"
cmp -s before.cfg haproxy.cfg || fail "-noop changed haproxy.cfg"
[[ $(reloads) -eq 1 ]] || fail "-noop reloaded"

echo
echo "== 4. apply"
confd -onetime -backend file -file services.yaml -confdir confd
grep -q '^    server web3 10.0.1.13:8080 check$' haproxy.cfg || fail "web3 not written"
[[ $(reloads) -eq 2 ]] || fail "expected 2 reloads, saw $(reloads)"

echo
echo "== 5. run again: already in sync, so no write and no reload"
inode=$(stat -c %i haproxy.cfg)
confd -onetime -log-level debug -backend file -file services.yaml -confdir confd
[[ $(stat -c %i haproxy.cfg) == "$inode" ]] || fail "haproxy.cfg was rewritten"
[[ $(reloads) -eq 2 ]] || fail "an unchanged render reloaded"
echo "haproxy.cfg untouched, $(reloads) reloads in all"

echo
echo "file-haproxy: OK"
