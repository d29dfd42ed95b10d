#!/usr/bin/env bash
# test_cluster_health.sh - health checks and half-open trials shared in
# cluster mode, with a real redis-server on a free loopback port and
# three daemons (gw-a, gw-b, gw-c) in front of one mock upstream, which
# counts what reaches it: the provider is probed once per interval for
# the whole cluster, not once per instance (GET /v1/models counted over
# a window; the other instances never probe, not even at start); a
# provider the probing instance finds unhealthy is unhealthy
# on the two others, which log who probed it, and healthy again
# everywhere when it recovers; a breaker open on every instance lets
# exactly one half-open trial per round reach the upstream however many
# instances get requests, the failed one reopening it everywhere, the
# good one closing it everywhere; with Redis gone, each instance probes
# alone again. Prints "cluster_health: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster_health
. tests/integration/cluster_lib.sh

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Probe interval; valgrind's workers are slow enough that a shorter one
# would time out.
INTERVAL=500
[ -n "${VALGRIND:-}" ] && INTERVAL=1000
RECOVERY=1000                  # the breaker's first open period
GWS="gwa gwb gwc"

write_conf() {  # write_conf NAME PORT INSTANCE
    cat >"$WORK/$1.conf" <<CONF
listen = "127.0.0.1:$2";
control_socket = "$WORK/$1.sock";
workers = 2;
log_level = "info";
retry = { max_retries = 0; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
circuit_breaker = { failure_threshold = 1; recovery_timeout_ms = $RECOVERY; };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$U_PORT/v1"; api_key = "sk-up";
                health_check = { interval_ms = $INTERVAL; timeout_ms = $INTERVAL; unhealthy_after = 2; healthy_after = 1; }; } );
virtual_models = ( { name = "flaky"; targets = ( { provider = "up"; model = "fail2-503"; } ); } );
cluster = { redis = "127.0.0.1:$RPORT"; key_prefix = "$PREFIX"; instance = "$3"; };
CONF
    chmod 600 "$WORK/$1.conf"
}

target_field() {  # target_field GW FIELD: the target's state or health
    ctl "$1" stats | grep -o '"name":"up/fail2-503",[^}]*' |
        grep -o "\"$2\":\"[a-z_]*\"" | cut -d'"' -f4
}
all_field() {  # all_field FIELD VALUE: every instance says so
    local g
    for g in $GWS; do [ "$(target_field "$g" "$1")" = "$2" ] || return 1; done
}
all_three() { ctl "$1" stats | grep -q '"cluster":{"connected":true,"instances":3}'; }
disconnected() { ctl "$1" stats | grep -q '"cluster":{"connected":false'; }
probes() { curl -s "http://127.0.0.1:$U_PORT/stats/models" | grep -o '"models":[0-9]*' | cut -d: -f2; }
chats() { curl -s "http://127.0.0.1:$U_PORT/stats" | grep -o '[0-9]*' | head -1; }
# wave: one request to each instance at once; waits for the three.
wave() {
    local g pids=() port_var
    for g in $GWS; do
        port_var="${g}_DPORT"
        curl -s -o /dev/null -m 10 -H 'Content-Type: application/json' \
            --data-binary "$(msg flaky)" \
            "http://127.0.0.1:${!port_var}/v1/chat/completions" &
        pids+=($!)
    done
    wait "${pids[@]}"
}
# waves_until SECONDS COMMAND...: waves until COMMAND holds.
waves_until() {
    local deadline=$(( $(now_ms) + $1 * 1000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -ge $deadline ] && return 1
        wave
    done
}
chats_at_least() { [ "$(chats)" -ge "$1" ]; }
# probes_over MS: probes the upstream counted in the next MS ms.
probes_over() {
    local p0 t0
    p0=$(probes); t0=$(now_ms)
    while [ $(( $(now_ms) - t0 )) -lt "$1" ]; do sleep 0.1; done
    echo $(( $(probes) - p0 ))
}

RPORT=$(free_port)
start_redis R "$RPORT"
start_upstream U
PREFIX="h$$:"
for g in $GWS; do
    port=$(free_port)
    while [[ " ${USED:-} " == *" $port "* ]]; do port=$(free_port); done
    USED="${USED:-} $port"
    printf -v "${g}_DPORT" '%s' "$port"
    write_conf "$g" "$port" "gw-${g#gw}"
done
for g in $GWS; do start_gw "$g"; done
for g in $GWS; do
    wait_until 20 all_three "$g" || { fail "$g does not see 3 instances: $(ctl "$g" stats | grep -o '"cluster":{[^}]*}')"; }
done

echo "one probe per interval for the cluster"
WINDOW=$(( 6 * INTERVAL ))
n=$(probes_over "$WINDOW")
EXPECT=$(( WINDOW / INTERVAL ))
echo "  ($n probes in $WINDOW ms at interval $INTERVAL ms, three instances;" \
     "one prober: $EXPECT, each alone: $(( 3 * EXPECT )))"
if [ "$n" -ge $(( EXPECT - 2 )) ] && [ "$n" -le $(( EXPECT + 2 )) ]; then
    ok "the upstream was probed about once per interval ($n)"
else
    fail "probes in $WINDOW ms: $n, expected $EXPECT +- 2"
fi
out=$(redis-cli -p "$RPORT" get "${PREFIX}healthlease:up")
check_match "the probe lease names one instance" "^gw-[abc]$" "$out"
PROBER=$out
own_probes() {  # own_probes GW: the probes that instance made itself
    local p="${1}_DPORT"
    curl -s "http://127.0.0.1:${!p}/metrics" |
        awk '/^pipeline_health_checks_total\{provider="up"/ { n += $2 } END { print n + 0 }'
}
idle=0
for g in $GWS; do
    [ "gw-${g#gw}" = "$PROBER" ] && continue
    [ "$(own_probes "$g")" = 0 ] && idle=$((idle + 1))
done
check "the two others never probed, not even at start" 2 "$idle"
out=$(redis-cli -p "$RPORT" get "${PREFIX}health:up")
check_match "the last result is stored" "^H\|1\|0\|[0-9]+\|$PROBER\|up$" "$out"

echo "unhealthy on every instance"
curl -s -X POST "http://127.0.0.1:$U_PORT/stats/models?fail=1" >/dev/null
if wait_until 20 all_field health unhealthy; then ok "all three see the provider unhealthy"
else fail "health: $(for g in $GWS; do echo -n "$g=$(target_field "$g" health) "; done)"; fi
logs=0
for g in $GWS; do
    grep -q "health of provider up: unhealthy (probed by instance gw-" \
        "$WORK/$g.log" && logs=$((logs + 1))
done
check "the two others log who probed it" 2 "$logs"
curl -s -X POST "http://127.0.0.1:$U_PORT/stats/models?fail=0" >/dev/null
if wait_until 20 all_field health healthy; then ok "and all three see it recover"
else fail "health: $(for g in $GWS; do echo -n "$g=$(target_field "$g" health) "; done)"; fi

echo "one half-open trial at a time"
# fail2-503: the first two calls fail, then it answers.
curl -s -X POST "http://127.0.0.1:$U_PORT/stats/reset" >/dev/null
wave_gw() { local p="${1}_DPORT"; curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$(msg flaky)" "http://127.0.0.1:${!p}/v1/chat/completions"; }
check "gw-a's call fails" 502 "$(wave_gw gwa)"
if wait_until 10 all_field state open; then ok "the breaker is open on all three"
else fail "states: $(for g in $GWS; do echo -n "$g=$(target_field "$g" state) "; done)"; fi
check "one call reached the upstream" 1 "$(chats)"
# Requests at all three until the first trial, then for most of the
# doubled open period that its failure starts.
if waves_until 20 chats_at_least 2; then
    T=$(now_ms)
    while [ $(( $(now_ms) - T )) -lt $(( RECOVERY * 3 / 2 )) ]; do wave; done
    check "round 1: one trial reached the upstream, for three instances" 2 "$(chats)"
else
    fail "no trial within 20 s: $(chats) calls"
fi
check "and it failed: open on all three" "open open open" \
    "$(for g in $GWS; do echo -n "$(target_field "$g" state) "; done | sed 's/ $//')"
# One request at a time now, in turn at each instance, stopping at the
# trial: a successful trial closes the breaker, so a request of the same
# parallel wave that arrives after the close rightly reaches the upstream
# too (round 1, whose trial fails, is the one that counts trials against
# parallel waves).
turns_until() {
    local deadline=$(( $(now_ms) + $1 * 1000 )) g; shift
    while [ "$(now_ms)" -lt $deadline ]; do
        for g in $GWS; do
            wave_gw "$g" >/dev/null
            "$@" && return 0
        done
    done
    return 1
}
if turns_until 20 chats_at_least 3; then
    check "round 2: one trial reached the upstream" 3 "$(chats)"
else
    fail "no second trial within 20 s: $(chats) calls"
fi
if wait_until 10 all_field state closed; then ok "it succeeded: closed on all three"
else fail "states: $(for g in $GWS; do echo -n "$g=$(target_field "$g" state) "; done)"; fi
closers=0
for g in $GWS; do
    grep -q "circuit breaker of up/fail2-503 closed by instance" "$WORK/$g.log" &&
        closers=$((closers + 1))
done
check "two instances log the close they were told" 2 "$closers"
wave
check "then every instance's call reaches it" 6 "$(chats)"

echo "Redis down: each probes alone"
kill -TERM "$R_RPID"
wait "$R_RPID" 2>/dev/null
for g in $GWS; do wait_until 10 disconnected "$g"; done
n=$(probes_over "$WINDOW")
echo "  ($n probes in $WINDOW ms without Redis)"
if [ "$n" -ge $(( 3 * EXPECT - 3 )) ]; then ok "each instance probes again ($n)"
else fail "probes without Redis: $n, expected about $(( 3 * EXPECT ))"; fi

echo "shutdown"
rcs=""
for g in $GWS; do
    pid_var="${g}_PID"
    kill -TERM "${!pid_var}"; wait "${!pid_var}"; rcs="$rcs $?"
done
check "every daemon exits 0 on SIGTERM" " 0 0 0" "$rcs"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$WORK"/gw*.log)"

summary cluster_health
