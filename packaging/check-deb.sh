#!/usr/bin/env bash
# Checks the package packaging/build-deb.sh built: its metadata and files,
# then installs it with dpkg (as root, or through sudo), checks the unit with
# systemd-analyze and runs the installed `confd -version`, and removes it
# again if it was not installed before.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(ls -t target/debian/confd_*.deb | head -n 1)
fail() { echo "check-deb: $deb: $*" >&2; exit 1; }

[ "$(dpkg-deb -f "$deb" Package)" = confd ] || fail "package name is not confd"
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
unit=""
for f in ./usr/bin/confd ./usr/share/man/man1/confd.1.gz \
    ./usr/share/bash-completion/completions/confd \
    ./usr/share/zsh/vendor-completions/_confd \
    ./usr/share/fish/vendor_completions.d/confd.fish \
    ./etc/confd/confd.toml ./etc/confd/conf.d/README ./etc/confd/templates/README \
    ./usr/share/doc/confd/README.md; do
    grep -qxF "$f" <<<"$contents" || fail "lacks $f"
done
unit=$(grep -E '^\./(usr/)?lib/systemd/system/confd\.service$' <<<"$contents") || fail "lacks the systemd unit"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/confd/confd.toml \
    || fail "/etc/confd/confd.toml is not a conffile"

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
was_installed=0
dpkg -s confd >/dev/null 2>&1 && was_installed=1
$sudo dpkg -i "$deb" >/dev/null
installed=$(/usr/bin/confd -version)
echo "$installed"
grep -q "^confd $(dpkg-deb -f "$deb" Version | sed 's/-[0-9]*$//') (commit " <<<"$installed" \
    || fail "the installed binary reports another version: $installed"
zcat /usr/share/man/man1/confd.1.gz | grep -q '^\.TH confd 1' || fail "the man page has no header"
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify "/${unit#./}" || fail "systemd-analyze rejects the unit"
fi
if [ "$was_installed" = 0 ]; then
    $sudo dpkg --purge confd >/dev/null
fi
echo "check-deb: $deb: ok"
