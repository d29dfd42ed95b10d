# cluster_lib.sh - what the cluster-mode suites share, sourced after
# lib.sh with SUITE set to the suite's name: the check that redis-server
# is installed, a throwaway redis-server, a daemon started from
# $WORK/NAME.conf and pipelinectl on its control socket.

if ! command -v redis-server >/dev/null; then
    fail "redis-server not installed (make deps installs it)"
    summary "$SUITE"
    exit 1
fi

# start_redis NAME PORT [ARGS...]: a redis-server on 127.0.0.1:PORT with
# nothing saved, its log in $WORK/NAME.log, its pid in ${NAME}_RPID.
start_redis() {
    local name=$1 port=$2
    shift 2
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    printf -v "${name}_RPID" '%s' "$!"
    wait_until 10 grep -q "Ready to accept" "$WORK/$name.log" ||
        { echo "redis-server did not start"; cat "$WORK/$name.log"; exit 1; }
}

# start_gw NAME: the daemon of $WORK/NAME.conf (under $VALGRIND if set),
# serving on port ${NAME}_DPORT; its pid in ${NAME}_PID, its log
# appended to $WORK/NAME.log.
start_gw() {
    local port_var="${1}_DPORT"
    ${VALGRIND:-} "$BIN/pipelined" -c "$WORK/$1.conf" >>"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    printf -v "${1}_PID" '%s' "$!"
    wait_until 60 curl -sf "http://127.0.0.1:${!port_var}/health" ||
        { echo "daemon $1 did not start:"; tail -20 "$WORK/$1.log"; exit 1; }
}

# ctl NAME ARGS...: pipelinectl --json on $WORK/NAME.sock.
ctl() { local n=$1; shift; "$BIN/pipelinectl" -s "$WORK/$n.sock" --json "$@"; }
