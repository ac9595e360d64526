# Shared by the examples' run.sh scripts (sourced, not run): finds the confd
# binary, works in a temporary directory, and on exit stops every process the
# script started (in reverse order, TERM then KILL) and removes the directory.
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   repo=$(cd "$here/../.." && pwd)
#   . "$here/../lib.sh"
#   confd_binary            # sets CONFD (or takes it from the environment)
#   start_work              # cd into a fresh $work; append PIDs to pids=()

# This folder (examples/), for the helper programs beside this file.
examples_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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

# -- a web tier behind HAProxy -------------------------------------------------
#   declare -A port
#   responder web1            # port[web1]=its port; responder_pid=its PID
#   responder web2 127.0.0.3 8080
#   start_haproxy             # listen=its port; 503 until confd's first render
#   names www.example.com 9   # who answered 9 requests for that Host (sorted)

# Starts an HTTP server answering with NAME (on ADDRESS:PORT, by default
# 127.0.0.1 and a free port); sets port[NAME] and responder_pid.
responder() {
    python3 "$examples_dir/responder.py" "$1" "$1.port.tmp" "${@:2}" \
        2>>responders.log &
    responder_pid=$!
    pids+=($!)
    within 10 test -s "$1.port.tmp" || fail "responder $1 did not start"
    port[$1]=$(cat "$1.port.tmp")
}

# HAProxy in master-worker mode on a bootstrap haproxy.cfg that answers 503
# on 127.0.0.1:$listen until confd renders the real one and reloads it.
start_haproxy() {
    listen=$(free_port)
    cat > haproxy.cfg <<CFG
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend http-in
    bind 127.0.0.1:$listen
    http-request return status 503 content-type text/plain string bootstrap
CFG
    haproxy -W -f haproxy.cfg -p haproxy.pid >haproxy.log 2>&1 &
    pids+=($!)
    within 10 test -s haproxy.pid || fail "haproxy did not start"
}

# GET / through HAProxy (with Host: $1 unless empty); prints the answering
# server's name.
hit() {
    local host=()
    [[ -n ${1:-} ]] && host=(-H "Host: $1")
    curl -sS --max-time 5 "${host[@]}" "http://127.0.0.1:$listen/" || echo "(no answer)"
}

# The names answering $2 requests for host $1, sorted and de-duplicated.
names() { local i; for ((i = 0; i < $2; i++)); do hit "$1"; echo; done | sort -u | paste -sd' '; }
