# Shared by the examples' run.sh scripts (sourced, not run): finds the confd
# binary, works in a temporary directory, and on exit stops every process the
# script started (in reverse order, TERM then KILL) and removes the directory.
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   repo=$(cd "$here/../.." && pwd)
#   . "$here/../lib.sh"
#   confd_binary            # sets CONFD (or takes it from the environment)
#   start_work              # cd into a fresh $work; append PIDs to pids=()

# CONFD, or target/debug/confd of the repository; fails when missing.
confd_binary() {
    CONFD=${CONFD:-$repo/target/debug/confd}
    case $CONFD in /*) ;; */*) CONFD=$PWD/$CONFD ;; esac
    if ! command -v "$CONFD" >/dev/null; then
        echo "run.sh: no confd binary at $CONFD (run 'cargo build' or set CONFD)" >&2
        exit 1
    fi
}

# Stops what the script started and removes $work (the EXIT trap).
cleanup() {
    local i pid n
    exec 3>&- 2>/dev/null || true
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for ((n = 0; n < 50; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}

# A fresh temporary $work as the current directory, cleaned up on exit.
start_work() {
    work=$(mktemp -d)
    pids=()        # started in this order; stopped in reverse
    trap cleanup EXIT
    cd "$work"
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $1 seconds for the command that follows to succeed.
within() {
    local limit=$1 start=$SECONDS
    shift
    until "$@"; do
        (( SECONDS - start < limit )) || return 1
        sleep 0.1
    done
}
