#!/usr/bin/env bash
# Builds the Debian package, target/debian/confd_<version>-1_<arch>.deb: the
# release binary, the systemd unit, an example /etc/confd, and the man page
# and shell completions generated from the binary itself (so they list
# exactly its flags). Installs cargo-deb from crates.io when it is missing,
# and Debian's protobuf-compiler (protoc, which etcd-client's build script
# runs) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
fi

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet
cargo build --release --locked --quiet
mkdir -p target/packaging
target/release/confd man | gzip -9n > target/packaging/confd.1.gz
target/release/confd completions bash > target/packaging/confd.bash
target/release/confd completions zsh > target/packaging/_confd
target/release/confd completions fish > target/packaging/confd.fish
cargo deb --no-build --quiet
ls target/debian/confd_*.deb
