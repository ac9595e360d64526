#!/usr/bin/env bash
# An HAProxy pair behind keepalived's floating address, rendered and
# validated only: nothing here configures an address, starts keepalived or
# reloads a service. From one set of keys (data.yaml), confd renders
# haproxy.cfg and keepalived.conf for host lb1 and for host lb2 (HOSTNAME
# picks the host's entry under /lb/hosts), each file checked by its own
# program (haproxy -c, keepalived -t) before it is written; then it shows
# that the two hosts differ only in state and priority, and that data
# keepalived rejects never reaches the file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib.sh"
confd_binary
PATH=$PATH:/usr/sbin:/sbin
for tool in haproxy keepalived; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done

# CONFD_* variables set the same values as flags: clear any from your shell.
unset "${!CONFD_@}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "run.sh: $*" >&2; exit 1; }

# The example confdir, its reload commands replaced: a demo reloads nothing.
mkdir -p "$work/confd"
cp -r "$here/confd/templates" "$here/confd/conf.d" "$work/confd/"
sed -i 's/^reload_cmd = "systemctl reload \(.*\)"/reload_cmd = "echo \1 >> reloads.log"/' "$work"/confd/conf.d/*.toml
# keepalived -t checks what keepalived would: the VRRP interface must exist
# here, and with `script_user root` it must run as root, as keepalived does.
interface=$(ls /sys/class/net | grep -vx lo | head -n1 || true)
[ -n "$interface" ] || fail "no network interface other than lo"
if [ "$(id -u)" != 0 ]; then
    echo "(not root: keepalived -t left out, as it refuses script_user root)"
    sed -i '/^check_cmd = "keepalived/d' "$work/confd/conf.d/keepalived.toml"
fi
sed "s/interface: eth0/interface: $interface/" "$here/data.yaml" > "$work/data.yaml"

render() {  # host [data file]
    mkdir -p "$work/$1"
    (cd "$work/$1" && HOSTNAME=$1 "$CONFD" -onetime -backend file -file "${2:-$work/data.yaml}" -confdir "$work/confd" 2>confd.log)
}

echo "== 1. render both hosts from one set of keys; haproxy -c and keepalived -t accept each file"
for host in lb1 lb2; do
    echo "\$ HOSTNAME=$host confd -onetime -backend file -file data.yaml -confdir confd"
    render "$host" || { cat "$work/$host/confd.log" >&2; fail "$host: confd failed"; }
    [[ $(wc -l < "$work/$host/reloads.log") == 2 ]] || fail "$host: both files should have been written"
done
sed -n '/^vrrp_instance/,$p' "$work/lb1/keepalived.conf"

echo
echo "== 2. the hosts differ only in state and priority"
cmp -s "$work/lb1/haproxy.cfg" "$work/lb2/haproxy.cfg" || fail "haproxy.cfg differs between the hosts"
echo "haproxy.cfg: identical"
changed=$(diff "$work/lb1/keepalived.conf" "$work/lb2/keepalived.conf" | grep '^[<>]' || true)
echo "$changed"
expected=$'<     state MASTER\n>     state BACKUP\n<     priority 150\n>     priority 100'
[[ $changed == "$expected" ]] || fail "keepalived.conf differs in more than state and priority"

echo
echo "== 3. a priority keepalived rejects (300) never reaches keepalived.conf"
cp "$work/lb1/keepalived.conf" "$work/before.conf"
sed 's/priority: 150/priority: 300/' "$work/data.yaml" > "$work/bad.yaml"
if render lb1 "$work/bad.yaml"; then
    [ "$(id -u)" = 0 ] && fail "confd accepted priority 300"
    echo "(not root: nothing validated keepalived.conf)"
else
    grep -o 'keepalived.toml.*step=check' "$work/lb1/confd.log" | head -n1
    grep -q 'outside range \[1, 255\]' "$work/lb1/confd.log" || fail "keepalived's complaint is not in the log"
    cmp -s "$work/before.conf" "$work/lb1/keepalived.conf" || fail "keepalived.conf changed"
    echo "keepalived -t said: number '300' outside range [1, 255]; keepalived.conf unchanged"
fi

echo
echo "haproxy-keepalived: OK"
