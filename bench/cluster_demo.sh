#!/usr/bin/env bash
# bench/cluster_demo.sh - cluster mode, shown: three pipelined instances
# (gw-1, gw-2, gw-3) in one `cluster` group behind HAProxy on loopback,
# sharing a real redis-server (with a password, given to the instances
# through password_env), all in front of one upstream (bin/mock_upstream)
# that this script stops and starts again. Run from anywhere, after
# `make` (or as `make cluster-demo`):
#
#     bench/cluster_demo.sh
#     DEMO_RECOVERY_MS=1000 bench/cluster_demo.sh   # a shorter open period
#
# It sends requests through HAProxy (each answer names the instance that
# served it) and prints a timeline of what each instance reports on its
# control socket (`pipelinectl stats` and `cluster`): the target's
# breaker state, the requests it served, the instances it sees:
#   1. all three up, each listing three instances; requests answered 200;
#   2. the upstream stops: requests fail (502) until one instance's
#      breaker opens; the two others, which never saw the failures that
#      opened it, apply it through Redis: their log lines give the delay
#      (the check: at most DEMO_SPREAD_LIMIT_MS);
#   3. while it is open every instance refuses at once (503);
#   4. the upstream is back; when the open period ends the breaker turns
#      half_open (on every instance, or on the one that won the
#      cluster's half-open probe while the others wait for its result),
#      then requests close the breakers everywhere and everything
#      answers 200 again.
#
# Knobs (environment, all optional):
#   DEMO_RECOVERY_MS      circuit_breaker.recovery_timeout_ms       (2000)
#   DEMO_FAILURES         circuit_breaker.failure_threshold            (3)
#   DEMO_SPREAD_LIMIT_MS  an opening must reach every instance in    (200)
#   DEMO_BIN              the binaries' directory                    (bin)
#   DEMO_KEEP             set: keep the work directory (configs, logs)
#
# Exit status: 0 when every step went as described above; 1 when one did
# not (the failed checks are listed), 2 on a setup failure (a missing
# binary or tool, a process that did not start). Every process it
# started is stopped by its pid on exit, Ctrl-C included, and its temp
# directory removed.
set -u
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

RECOVERY_MS=${DEMO_RECOVERY_MS:-2000}
FAILURES=${DEMO_FAILURES:-3}
SPREAD_LIMIT_MS=${DEMO_SPREAD_LIMIT_MS:-200}
BIN=${DEMO_BIN:-bin}
KEEP=${DEMO_KEEP:-}

GWS=(gw-1 gw-2 gw-3)
TARGET=provider/fast         # the one target: provider "provider", model "fast"
MODEL=chat                   # its virtual model
START_DEADLINE_S=20          # a process to start; every instance to see the others
STEP_DEADLINE_S=10           # each later step of the timeline
MAX_FAILING_REQUESTS=20      # requests sent to a stopped upstream at most
MAX_PROBE_REQUESTS=30        # requests sent to close the breakers at most
ROUND=6                      # requests of a round (twice round the instances)
STOP_DEADLINE_MS=5000        # SIGTERM, then SIGKILL after this
POLL_S=0.05
REQUEST_TIMEOUT_S=5

die() { echo "cluster-demo: $*" >&2; exit 2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 > 0 )); }
for v in RECOVERY_MS FAILURES SPREAD_LIMIT_MS; do
    is_uint "${!v}" || die "DEMO_$v must be a positive integer (got '${!v}')"
done
(( RECOVERY_MS <= 30000 )) || die "DEMO_RECOVERY_MS above 30000 would not end in a minute"

HAPROXY=$(command -v haproxy 2>/dev/null || true)
[[ -z $HAPROXY && -x /usr/sbin/haproxy ]] && HAPROXY=/usr/sbin/haproxy
[[ -n $HAPROXY ]] || die "haproxy not installed (make deps installs it)"
REDIS=$(command -v redis-server 2>/dev/null || true)
[[ -z $REDIS && -x /usr/bin/redis-server ]] && REDIS=/usr/bin/redis-server
[[ -n $REDIS ]] || die "redis-server not installed (make deps installs it)"
command -v curl >/dev/null || die "curl not installed"
for b in pipelined pipelinectl mock_upstream; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing: run make first"
done

# --------------------------------------------------------------- processes
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcc-cluster-demo.XXXXXX") || die "no temp dir"
declare -a PIDS=()
declare -A PID_NAME=()
track() { PIDS+=("$1"); PID_NAME[$1]=$2; }
untrack() {
    local p
    local -a keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
alive() { kill -0 "$1" 2>/dev/null; }

# stop PID...: SIGTERM, wait, SIGKILL after STOP_DEADLINE_MS.
stop() {
    local p deadline
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    deadline=$(( $(now_ms) + STOP_DEADLINE_MS ))
    for p in "$@"; do
        while alive "$p" && (( $(now_ms) < deadline )); do sleep "$POLL_S"; done
        if alive "$p"; then
            echo "cluster-demo: ${PID_NAME[$p]:-pid $p} ignored SIGTERM; killing it" >&2
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
}

cleanup() {
    local rc=$? k
    local -a rev=()
    trap - EXIT INT TERM HUP
    for (( k = ${#PIDS[@]} - 1; k >= 0; k-- )); do rev+=("${PIDS[k]}"); done
    (( ${#rev[@]} )) && stop "${rev[@]}"
    if [[ -n $KEEP ]]; then echo "work directory kept: $WORK"
    else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "cluster-demo: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# wait_until SECONDS COMMAND...: polls every POLL_S.
wait_until() {
    local deadline=$(( $(now_ms) + $1 * 1000 )); shift
    until "$@" >/dev/null 2>&1; do
        (( $(now_ms) >= deadline )) && return 1
        sleep "$POLL_S"
    done
}

# free_port: a loopback port nobody listens on, below the kernel's
# ephemeral range (no client socket takes it meanwhile), not handed out
# before by this script.
declare -A PORT_TAKEN=()
PICKED=""
pick_port() {
    local lo p
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    while :; do
        p=$(( 10000 + RANDOM % (lo - 10000) ))
        [[ -n ${PORT_TAKEN[$p]:-} ]] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        PORT_TAKEN[$p]=1
        PICKED=$p
        return
    done
}

show_log() { echo "---- last lines of $1:"; tail -n 15 "$1" 2>/dev/null; }

UP_PORT="" UP_PID=""
start_upstream() {
    "$BIN/mock_upstream" -q -a 127.0.0.1 -p "$UP_PORT" >>"$WORK/upstream.log" 2>&1 &
    UP_PID=$!
    track "$UP_PID" upstream
    wait_until "$START_DEADLINE_S" curl -s -o /dev/null "http://127.0.0.1:$UP_PORT/stats" ||
        { show_log "$WORK/upstream.log"; die "mock_upstream did not start on port $UP_PORT"; }
}

# ------------------------------------------------------------------ set-up
pick_port; REDIS_PORT=$PICKED
pick_port; UP_PORT=$PICKED
pick_port; LB_PORT=$PICKED
declare -A GW_PORT=() GW_PID=()
for g in "${GWS[@]}"; do pick_port; GW_PORT[$g]=$PICKED; done
PREFIX="demo$$:"
# The password only in Redis's own file and in the instances'
# environment, never in their configuration.
DEMO_REDIS_PASSWORD="demo-$$-$RANDOM$RANDOM"
export DEMO_REDIS_PASSWORD

cat >"$WORK/redis.conf" <<EOF
port $REDIS_PORT
bind 127.0.0.1
save ""
appendonly no
requirepass $DEMO_REDIS_PASSWORD
EOF
chmod 600 "$WORK/redis.conf"
"$REDIS" "$WORK/redis.conf" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
track "$REDIS_PID" redis-server
wait_until "$START_DEADLINE_S" grep -q "Ready to accept" "$WORK/redis.log" ||
    { show_log "$WORK/redis.log"; die "redis-server did not start"; }

start_upstream

for g in "${GWS[@]}"; do
    cat >"$WORK/$g.conf" <<EOF
listen = "127.0.0.1:${GW_PORT[$g]}";
control_socket = "$WORK/$g.sock";
workers = 1;
log_level = "info";
retry = { max_retries = 0; };
circuit_breaker = { failure_threshold = $FAILURES; recovery_timeout_ms = $RECOVERY_MS; };
providers = ( { name = "provider"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "sk-demo"; } );
virtual_models = ( { name = "$MODEL"; targets = ( { provider = "provider"; model = "fast"; } ); } );
cluster = { redis = "127.0.0.1:$REDIS_PORT"; key_prefix = "$PREFIX"; instance = "$g"; password_env = "DEMO_REDIS_PASSWORD"; };
EOF
    chmod 600 "$WORK/$g.conf"
    "$BIN/pipelined" -c "$WORK/$g.conf" >"$WORK/$g.log" 2>&1 &
    GW_PID[$g]=$!
    track "${GW_PID[$g]}" "$g"
done
for g in "${GWS[@]}"; do
    wait_until "$START_DEADLINE_S" curl -sf -o /dev/null "http://127.0.0.1:${GW_PORT[$g]}/health" ||
        { show_log "$WORK/$g.log"; die "$g did not start"; }
done

# Round robin over the three; each answer says who served it. The
# checks are plain TCP connects: an instance whose breakers are all open
# answers /health with 503, and a check on it would take every instance
# out at once here, where the demo wants to see their own answers.
{
    echo "global"
    echo "    maxconn 256"
    echo "defaults"
    echo "    mode http"
    echo "    timeout connect 2s"
    echo "    timeout client 30s"
    echo "    timeout server 30s"
    echo "frontend demo"
    echo "    bind 127.0.0.1:$LB_PORT"
    echo "    http-response set-header X-Served-By %[srv_name]"
    echo "    default_backend gateways"
    echo "backend gateways"
    echo "    balance roundrobin"
    for g in "${GWS[@]}"; do
        echo "    server $g 127.0.0.1:${GW_PORT[$g]} check inter 1s"
    done
} >"$WORK/haproxy.cfg"
"$HAPROXY" -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
LB_PID=$!
track "$LB_PID" haproxy
wait_until "$START_DEADLINE_S" curl -sf -o /dev/null "http://127.0.0.1:$LB_PORT/health" ||
    { show_log "$WORK/haproxy.log"; die "haproxy did not start"; }

# ----------------------------------------------------------------- reading
ctl() { local g=$1; shift; "$BIN/pipelinectl" -s "$WORK/$g.sock" --json "$@" 2>/dev/null; }
declare -A STATE=() SERVED=() SEES=() CONNECTED=()
# read_gw GW: its breaker state for the target, requests served,
# instances seen and whether it reaches Redis, from one `stats`.
read_gw() {
    local s
    s=$(ctl "$1" stats)
    STATE[$1]=$(grep -o "\"name\":\"$TARGET\",[^}]*" <<<"$s" |
                grep -o '"state":"[a-z_]*"' | cut -d'"' -f4)
    SERVED[$1]=$(grep -o '"requests":{"total":[0-9]*' <<<"$s" | grep -o '[0-9]*$')
    SEES[$1]=$(grep -o '"cluster":{"connected":[a-z]*,"instances":[0-9]*' <<<"$s" |
               grep -o '[0-9]*$')
    CONNECTED[$1]=$(grep -o '"cluster":{"connected":[a-z]*' <<<"$s" | cut -d: -f3)
    : "${STATE[$1]:=?}" "${SERVED[$1]:=?}" "${SEES[$1]:=?}" "${CONNECTED[$1]:=?}"
}
read_all() { local g; for g in "${GWS[@]}"; do read_gw "$g"; done; }
all_state() {  # all_state STATE: every instance shows it
    local g
    read_all
    for g in "${GWS[@]}"; do [[ ${STATE[$g]} == "$1" ]] || return 1; done
}
any_state() {  # any_state STATE: some instance shows it
    local g
    read_all
    for g in "${GWS[@]}"; do [[ ${STATE[$g]} == "$1" ]] && return 0; done
    return 1
}
sees_all() {  # sees_all GW: it reaches Redis and lists the three
    local out g
    read_gw "$1"
    [[ ${CONNECTED[$1]} == true && ${SEES[$1]} == "${#GWS[@]}" ]] || return 1
    out=$(ctl "$1" cluster)
    for g in "${GWS[@]}"; do [[ $out == *"\"instance\":\"$g\""* ]] || return 1; done
}

T0=$(now_ms)
stamp() { local d=$(( $(now_ms) - T0 )); printf '%3d.%03d s' $(( d / 1000 )) $(( d % 1000 )); }
event() { printf '[%s]  %s\n' "$(stamp)" "$*"; }
snapshot() {
    local g
    read_all
    for g in "${GWS[@]}"; do
        printf '              %s  breaker %-9s  served %3s  sees %s instances%s\n' \
            "$g" "${STATE[$g]}" "${SERVED[$g]}" "${SEES[$g]}" \
            "$([[ ${CONNECTED[$g]} == true ]] || echo ' (Redis away)')"
    done
}

# request: one chat request through HAProxy; sets CODE and BY (the
# instance that answered).
CODE="" BY=""
request() {
    CODE=$(curl -s -o /dev/null -D "$WORK/last.head" -m "$REQUEST_TIMEOUT_S" \
        -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}" \
        "http://127.0.0.1:$LB_PORT/v1/chat/completions")
    BY=$(grep -i '^x-served-by:' "$WORK/last.head" | cut -d' ' -f2 | tr -d '\r')
    : "${BY:=haproxy}"
}
# round N: N requests; sets ROUND_OUT ("gw-1 200, gw-2 200, ...") and
# ROUND_OK (1 when every answer was 200).
ROUND_OUT="" ROUND_OK=0
round() {
    local i
    ROUND_OUT="" ROUND_OK=1
    for (( i = 0; i < $1; i++ )); do
        request
        ROUND_OUT+="$BY $CODE, "
        [[ $CODE == 200 ]] || ROUND_OK=0
    done
    ROUND_OUT=${ROUND_OUT%, }
}

PASSED=0 FAILED=0
declare -a FAILS=()
check() {  # check WHAT OK(0|1)
    if [[ $2 == 1 ]]; then PASSED=$((PASSED + 1))
    else FAILED=$((FAILED + 1)); FAILS+=("$1"); echo "              !! not as expected: $1"; fi
}

# log_ms GW PATTERN: the time (ms of the day, UTC) of the first line of
# GW's log matching PATTERN.
log_ms() {
    grep -m1 -E -- "$2" "$WORK/$1.log" | cut -c12-23 |
        awk -F'[:.]' '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

# ---------------------------------------------------------------- timeline
echo "rcc-pipeline cluster mode: ${#GWS[@]} instances behind HAProxy, one Redis, one upstream"
echo "  redis-server   127.0.0.1:$REDIS_PORT (pid $REDIS_PID), requirepass; the instances read it from \$DEMO_REDIS_PASSWORD"
echo "  upstream       127.0.0.1:$UP_PORT (pid $UP_PID), bin/mock_upstream; target $TARGET"
for g in "${GWS[@]}"; do
    echo "  $g           127.0.0.1:${GW_PORT[$g]} (pid ${GW_PID[$g]}), cluster key prefix $PREFIX"
done
echo "  haproxy        127.0.0.1:$LB_PORT (pid $LB_PID), round robin over ${GWS[*]}"
echo "  breakers       open after $FAILURES failures in a row, for $RECOVERY_MS ms"
echo

ok=1
for g in "${GWS[@]}"; do wait_until "$START_DEADLINE_S" sees_all "$g" || ok=0; done
event "all up; each instance reaches Redis and lists the others:"
snapshot
check "every instance lists all ${#GWS[@]} instances" "$ok"
echo
"$BIN/pipelinectl" -s "$WORK/gw-1.sock" cluster 2>&1 | sed 's/^/              /'
echo

round "$ROUND"
event "upstream healthy: $ROUND requests through HAProxy: $ROUND_OUT"
snapshot
check "requests answered 200 while the upstream is up" "$ROUND_OK"
echo

stop "$UP_PID"
untrack "$UP_PID"
event "upstream STOPPED (connections refused); requests one at a time until a breaker opens:"
opened=0
for (( i = 0; i < MAX_FAILING_REQUESTS; i++ )); do
    request
    read_all
    line="request -> $BY: $CODE   ("
    for g in "${GWS[@]}"; do line+="$g ${STATE[$g]}, "; done
    event "${line%, })"
    any_state open && { opened=1; break; }
done
# opened_here GW: GW's own worker opened it (not an opening applied
# from another instance, logged as "opened by instance ...").
opened_here() { grep -q -E -- "circuit breaker of $TARGET opened$" "$WORK/$1.log"; }
opener=""
find_opener() {
    local g
    for g in "${GWS[@]}"; do opened_here "$g" && { opener=$g; return 0; }; done
    return 1
}
if (( opened )) && wait_until "$STEP_DEADLINE_S" find_opener; then
    event "$opener opened the breaker of $TARGET; the others learn it through Redis"
    if wait_until "$STEP_DEADLINE_S" all_state open; then
        snapshot
        # One clock for all (one machine): the opener's worker line, the
        # others' master applying the opening it published.
        t_open=$(log_ms "$opener" "circuit breaker of $TARGET opened$")
        spread_ok=1
        for g in "${GWS[@]}"; do
            [[ $g == "$opener" ]] && continue
            t=$(log_ms "$g" "circuit breaker of $TARGET opened by instance $opener")
            if [[ -z $t || -z $t_open ]]; then
                echo "              $g: open, but its log does not say it came from $opener"
                spread_ok=0
                continue
            fi
            d=$(( t - t_open ))
            echo "              $g applied $opener's opening $d ms after it (its log: \"opened by instance $opener\")"
            (( d >= 0 && d <= SPREAD_LIMIT_MS )) || spread_ok=0
        done
        check "an opening on one instance is open on all within $SPREAD_LIMIT_MS ms" "$spread_ok"
    else
        snapshot
        check "an opening on one instance is open on all" 0
    fi
else
    check "a breaker opens after $FAILURES failures" 0
fi
echo

round "$ROUND"
event "while open: $ROUND requests through HAProxy: $ROUND_OUT"
snapshot
refused=1
for g in "${GWS[@]}"; do [[ ${STATE[$g]} == open ]] || refused=0; done
check "every instance still open and refusing at once" "$refused"
echo

start_upstream
event "upstream STARTED again on the same port (pid $UP_PID); the breakers stay open until their period ends"
saw_half=0
if wait_until $(( RECOVERY_MS / 1000 + STEP_DEADLINE_S )) any_state half_open; then
    saw_half=1
    half=""
    for g in "${GWS[@]}"; do [[ ${STATE[$g]} == half_open ]] && half+="$g "; done
    event "open period over: half-open on ${half% } (the next call there is a probe)"
fi
snapshot
check "the breaker half-open once the open period ended" "$saw_half"
echo

event "requests one at a time until every breaker is closed:"
closed=0
for (( i = 0; i < MAX_PROBE_REQUESTS; i++ )); do
    request
    read_all
    line="request -> $BY: $CODE   ("
    for g in "${GWS[@]}"; do line+="$g ${STATE[$g]}, "; done
    event "${line%, })"
    all_state closed && { closed=1; break; }
done
check "every breaker closed again" "$closed"
echo

round "$ROUND"
event "recovered: $ROUND requests through HAProxy: $ROUND_OUT"
snapshot
check "requests answered 200 after the recovery" "$ROUND_OK"
echo

if (( FAILED == 0 )); then
    echo "as expected: $PASSED checks passed, in $(( ($(now_ms) - T0) / 1000 )).$(( ($(now_ms) - T0) % 1000 / 100 )) s"
    exit 0
fi
echo "NOT as expected ($FAILED of $((PASSED + FAILED)) checks failed):"
printf '  - %s\n' "${FAILS[@]}"
for g in "${GWS[@]}"; do show_log "$WORK/$g.log"; done
exit 1
