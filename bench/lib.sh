# Shared by the bench scripts (sourced, not run): free loopback ports and a
# private etcd. The caller defines die() and WORK (a scratch folder), and
# may keep the PIDs it must stop in the array PIDS.

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_etcd NAME [ETCD FLAGS...]: a private etcd ($ETCD_BIN) on free
# loopback ports, its data in $WORK/etcd-NAME; waits (at most 20 s) until it
# answers /health. Sets ETCD_PID, ETCD_PORT and ETCD_URL; adds the PID to
# PIDS.
start_etcd() {
    local name=$1 peer i
    shift
    ETCD_PORT=$(free_port)
    peer=$(free_port)
    ETCD_URL="http://127.0.0.1:$ETCD_PORT"
    rm -rf "$WORK/etcd-$name"
    "$ETCD_BIN" --name "$name" --data-dir "$WORK/etcd-$name" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$name=http://127.0.0.1:$peer" \
        "$@" >"$WORK/etcd-$name.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    for ((i = 0; i < 200; i++)); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$ETCD_URL/health', timeout=1)" 2>/dev/null; then
            return 0
        fi
        kill -0 "$ETCD_PID" 2>/dev/null || { tail -n 20 "$WORK/etcd-$name.log" >&2; die "etcd did not start"; }
        sleep 0.1
    done
    die "etcd did not answer on $ETCD_URL within 20 s"
}
