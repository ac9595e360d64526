#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the system packages
# the tests use when they are missing (Debian's apt-get: haproxy, and
# etcd-server and redis-server for the real servers the backend tests start), then checks
# formatting, lints, builds and runs every test, and builds the docs.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v haproxy >/dev/null 2>&1 || packages+=(haproxy)
command -v etcd >/dev/null 2>&1 || packages+=(etcd-server)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
if ((${#packages[@]})); then
    echo "== installing ${packages[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
echo "== all checks passed"
