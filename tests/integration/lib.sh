# lib.sh - helpers for the black-box tests: free ports, starting and
# stopping the mock upstream and the daemon, waiting for conditions with
# deadlines (never bare sleeps), and assertions that count.
# Sourced by tests/integration/*.sh; BIN selects the build (bin or bin/asan).

BIN=${BIN:-bin}
PASSED=0
FAILED=0
WORK=$(mktemp -d /tmp/rcc-it.XXXXXX)
PIDS=()

it_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
    done
    [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap it_cleanup EXIT

ok()   { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
# check_match NAME REGEX TEXT
check_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"
    else fail "$1: [$2] not in [$(printf '%s' "$3" | head -c 400)]"; fi
}
check_nomatch() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then
        fail "$1: [$2] unexpectedly in [$(printf '%s' "$3" | head -c 400)]"
    else ok "$1"; fi
}

# wait_until SECONDS COMMAND...: polls every 50 ms.
wait_until() {
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -ge $deadline ] && return 1
        sleep 0.05
    done
    return 0
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range, so no client socket holds the port
# we are about to listen on; 'port_free' only sees listeners.
free_port() {
    local p lo
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    while :; do
        p=$(( 10000 + RANDOM % (lo - 10000) ))
        port_free "$p" && { echo "$p"; return; }
    done
}

# start_upstream NAME: a mock upstream; its port in ${NAME}_PORT.
start_upstream() {
    local name=$1 pf="$WORK/$1.port"
    "$BIN/mock_upstream" -q -P "$pf" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    wait_until 10 test -s "$pf" || { echo "mock upstream did not start"; exit 1; }
    printf -v "${name}_PORT" '%s' "$(cat "$pf")"
}

# start_oauth_mock NAME: a mock OAuth server + token-checking chat API
# (tests/mock/mock_oauth.c); its port in ${NAME}_PORT, its pid in
# ${NAME}_PID.
start_oauth_mock() {
    local name=$1 pf="$WORK/$1.port"
    "$BIN/mock_oauth" -q -P "$pf" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    printf -v "${name}_PID" '%s' "$!"
    wait_until 10 test -s "$pf" || { echo "mock oauth did not start"; exit 1; }
    printf -v "${name}_PORT" '%s' "$(cat "$pf")"
}

# start_anthropic_mock NAME [ARGS...]: a mock Anthropic Messages API
# (tests/mock/mock_anthropic.c; ARGS e.g. -k KEY, default key
# sk-ant-mock); its port in ${NAME}_PORT, its pid in ${NAME}_PID.
start_anthropic_mock() {
    local name=$1 pf="$WORK/$1.port"
    shift
    "$BIN/mock_anthropic" -q -P "$pf" "$@" >"$WORK/$name.out" \
        2>"$WORK/$name.err" &
    PIDS+=($!)
    printf -v "${name}_PID" '%s' "$!"
    wait_until 10 test -s "$pf" || { echo "mock anthropic did not start"; exit 1; }
    printf -v "${name}_PORT" '%s' "$(cat "$pf")"
}

# oauth_control NAME 'key=value&key=value': POST /control; prints the
# HTTP status (200 when applied).
oauth_control() {
    local port_var="${1}_PORT"
    curl -s -o /dev/null -w '%{http_code}' -X POST \
        "http://127.0.0.1:${!port_var}/control?$2"
}

# oauth_stat NAME KEY: one member of the mock's GET /stats (a number or
# a string, without quotes).
oauth_stat() {
    local port_var="${1}_PORT" re
    re='"'"$2"'":("[^"]*"|-?[0-9]+|true|false)'
    curl -s "http://127.0.0.1:${!port_var}/stats" |
        grep -Eo "$re" | head -1 | cut -d: -f2- | tr -d '"'
}

# start_daemon CONF: runs pipelined; sets DPID, waits for /health.
start_daemon() {
    DLOG="$WORK/daemon.log"
    # VALGRIND: a command prefix, e.g. "valgrind --leak-check=full ..."
    ${VALGRIND:-} "$BIN/pipelined" -c "$1" >>"$DLOG" 2>&1 &
    DPID=$!
    PIDS+=($DPID)
    if ! wait_until 60 curl -sf "http://127.0.0.1:$DPORT/health"; then
        echo "daemon did not start:"; tail -20 "$DLOG"; exit 1
    fi
}

# stop_daemon: SIGTERM and wait for exit; sets DRC.
stop_daemon() {
    kill -TERM "$DPID" 2>/dev/null
    wait "$DPID"; DRC=$?
}

# post BODY [curl args...]: POST to the chat endpoint; prints status line
# then headers and body into $WORK/last.*
post() {
    local body=$1; shift
    curl -s -o "$WORK/last.body" -D "$WORK/last.head" -w '%{http_code}' \
        -H 'Content-Type: application/json' "$@" \
        --data-binary "$body" "http://127.0.0.1:$DPORT/v1/chat/completions"
}
header() { grep -i "^$1:" "$WORK/last.head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
body()   { cat "$WORK/last.body"; }
msg()    { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2:-hello}" "${3:-}"; }

stats_field() {  # stats_field JQ-LIKE-KEY: crude extraction from --json
    "$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2
}

summary() {
    echo "$1: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# npm_package NAME VERSION: installs NAME@VERSION once into build/npm/
# (ignored by git; reused by the runs of every build) and prints its
# directory; returns 2 when npm or node is missing, 1 when the install
# failed (npm's last lines on stderr).
npm_package() {
    local name=$1 version=$2 dir
    dir=$PWD/build/npm/${name//[@\/]/_}-$version
    command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 ||
        return 2
    if [ ! -f "$dir/node_modules/$name/package.json" ]; then
        mkdir -p "$dir" && echo '{"private":true}' >"$dir/package.json"
        (cd "$dir" && timeout 300 npm install --no-audit --no-fund \
            --silent "$name@$version") >"$dir/npm.log" 2>&1
    fi
    if [ ! -f "$dir/node_modules/$name/package.json" ]; then
        tail -3 "$dir/npm.log" >&2
        return 1
    fi
    echo "$dir"
}

# run_node_checks SCRIPT.mjs DIR [ENV=VALUE...]: runs a node script from
# tests/integration in DIR (where its package is installed) and turns its
# "ok NAME" / "FAIL NAME: why" lines into checks prefixed with "sdk: ".
run_node_checks() {
    local script=$1 dir=$2 out line
    shift 2
    cp "tests/integration/$script" "$dir/"
    out=$(env "$@" timeout 60 node "$dir/$script" 2>&1)
    while IFS= read -r line; do
        case $line in
            "ok "*) ok "sdk: ${line#ok }" ;;
            "FAIL "*) fail "sdk: ${line#FAIL }" ;;
            *) [ -n "$line" ] && fail "sdk: $line" ;;
        esac
    done <<<"$out"
}
