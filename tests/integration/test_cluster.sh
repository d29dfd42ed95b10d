#!/usr/bin/env bash
# test_cluster.sh - cluster mode against a real redis-server on a free
# loopback port, with two daemons (gw-a, gw-b), each with its own mock
# upstream behind the same target names: the cluster group's checks; a
# breaker opened on gw-a (its upstream failing) is open on gw-b, which
# never called its own upstream, within 200 ms (measured and printed);
# `breaker reset` on gw-b travels back; `pipelinectl cluster` lists
# both; stats and /metrics cluster fields; Redis killed and restarted
# under light load with every request answered, the loss logged once
# and both instances reconnected; AUTH through password_env with the
# password never in the log; a daemon without `cluster` shows none of it.
# Prints "cluster: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster
. tests/integration/cluster_lib.sh

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# write_conf NAME PORT UPSTREAM_PORT CLUSTER_GROUP
write_conf() {
    cat >"$WORK/$1.conf" <<CONF
listen = "127.0.0.1:$2";
control_socket = "$WORK/$1.sock";
workers = 2;
log_level = "info";
retry = { max_retries = 0; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
circuit_breaker = { failure_threshold = 2; recovery_timeout_ms = 600000; };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$3/v1"; api_key = "sk-up"; } );
virtual_models = (
  { name = "bad"; targets = ( { provider = "up"; model = "status-500"; } ); },
  { name = "good"; targets = ( { provider = "up"; model = "fast"; } ); }
);
$4
CONF
    chmod 600 "$WORK/$1.conf"
}

state_of() {  # state_of GW TARGET
    ctl "$1" stats | grep -o "\"name\":\"$2\",[^}]*" | grep -o '"state":"[a-z_]*"' |
        cut -d'"' -f4
}
is_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
connected() { ctl "$1" stats | grep -q '"cluster":{"connected":true'; }
disconnected() { ctl "$1" stats | grep -q '"cluster":{"connected":false'; }
lists_both() { local o; o=$(ctl "$1" cluster); [[ $o == *'"gw-a"'* && $o == *'"gw-b"'* ]]; }
chat() {  # chat GW MODEL: prints the HTTP status
    local port_var="${1}_DPORT"
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$(msg "$2")" "http://127.0.0.1:${!port_var}/v1/chat/completions"
}
upstream_chats() { curl -s "http://127.0.0.1:$1/stats" | grep -o '[0-9]*' | head -1; }

RPORT=$(free_port)
start_redis R "$RPORT"
start_upstream UA
start_upstream UB
PREFIX="t$$:"
CLUSTER_A="cluster = { redis = \"127.0.0.1:$RPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-a\"; };"
CLUSTER_B="cluster = { redis = \"127.0.0.1:$RPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-b\"; };"
gwa_DPORT=$(free_port)
write_conf gwa "$gwa_DPORT" "$UA_PORT" "$CLUSTER_A"
gwb_DPORT=$(free_port)
while [ "$gwb_DPORT" = "$gwa_DPORT" ]; do gwb_DPORT=$(free_port); done
write_conf gwb "$gwb_DPORT" "$UB_PORT" "$CLUSTER_B"

echo "configuration"
bad_conf() {  # bad_conf GROUP: pipelined -t's output on gw-a's with GROUP
    sed "s|^cluster = .*|$1|" "$WORK/gwa.conf" >"$WORK/bad.conf"
    "$BIN/pipelined" -t -c "$WORK/bad.conf" 2>&1
}
out=$(bad_conf 'cluster = { redis = "nohost"; };')
check_match "redis without a port refused at FILE:LINE" "bad.conf:[0-9]+: .*'redis'" "$out"
out=$(bad_conf 'cluster = { redis = "unix:relative"; };')
check_match "a relative unix path refused" "bad.conf:[0-9]+: .*unix:/absolute" "$out"
out=$(bad_conf 'cluster = { redis = "127.0.0.1:1"; instance = "a b"; };')
check_match "a bad instance name refused" "bad.conf:[0-9]+: .*'instance'" "$out"
out=$(bad_conf 'cluster = { redis = "127.0.0.1:1"; password_env = "1X"; };')
check_match "a bad password_env refused" "bad.conf:[0-9]+: .*'password_env'" "$out"
out=$(bad_conf 'cluster = { redis = "127.0.0.1:1"; shards = 2; };')
check_match "an unknown cluster key refused" "bad.conf:[0-9]+: .*shards" "$out"
out=$(bad_conf 'cluster = { key_prefix = "x:"; };')
check_match "redis is required" "bad.conf:[0-9]+: .*'redis'" "$out"

start_gw gwa
start_gw gwb

echo "instances"
if wait_until 20 lists_both gwa && wait_until 20 lists_both gwb; then
    ok "pipelinectl cluster lists gw-a and gw-b on both"
else
    fail "pipelinectl cluster: $(ctl gwa cluster)"
fi
out=$(ctl gwa cluster)
check_match "an instance has its pid, host, listen, last_seen_ms, requests" \
    "\"instance\":\"gw-b\",\"pid\":$gwb_PID,\"host\":\"[^\"]+\",\"listen\":\"127.0.0.1:$gwb_DPORT\",\"last_seen_ms\":[0-9]{13},\"requests\":[0-9]+" "$out"
out=$("$BIN/pipelinectl" -s "$WORK/gwa.sock" cluster)
check_match "pipelinectl cluster prints a table" "INSTANCE +PID.*"$'\n'"gw-a +$gwa_PID " "$out"
out=$(ctl gwa stats)
check_match "stats: cluster connected, 2 instances" '"cluster":\{"connected":true,"instances":2\}' "$out"
out=$(curl -s "http://127.0.0.1:$gwb_DPORT/metrics")
check_match "/metrics: pipeline_cluster_connected 1" "^pipeline_cluster_connected 1$" "$(printf '%s' "$out" | grep cluster_connected)"
check_match "/metrics: pipeline_cluster_instances 2" "^pipeline_cluster_instances 2$" "$(printf '%s' "$out" | grep '^pipeline_cluster_instances')"

echo "breakers"
check "gw-b's target starts closed" closed "$(state_of gwb up/status-500)"
chat gwa bad >/dev/null
chat gwa bad >/dev/null
T0=$(now_ms)
check "gw-a's breaker opened after 2 failures" open "$(state_of gwa up/status-500)"
# log_ms FILE PATTERN: the time (ms of the day) of the first line matching.
log_ms() {
    grep -m1 -- "$2" "$1" | cut -c12-23 |
        awk -F'[:.]' '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}
if wait_until 10 is_state gwb up/status-500 open; then
    T1=$(now_ms)
    ok "gw-b's breaker open too"
    # Measured by the daemons' own log lines (one clock): gw-a's worker
    # opening it, gw-b applying it. Under valgrind it only has to happen.
    A_MS=$(log_ms "$WORK/gwa.log" "circuit breaker of up/status-500 opened$")
    B_MS=$(log_ms "$WORK/gwb.log" "circuit breaker of up/status-500 opened by instance gw-a")
    echo "  (gw-b applied it $((B_MS - A_MS)) ms after gw-a opened it;" \
         "$((T1 - T0)) ms as seen through pipelinectl)"
    LIMIT=200
    [ -n "${VALGRIND:-}" ] && LIMIT=5000
    if [ $((B_MS - A_MS)) -ge 0 ] && [ $((B_MS - A_MS)) -le "$LIMIT" ]; then
        ok "within $LIMIT ms"
    else
        fail "gw-b applied it $((B_MS - A_MS)) ms after (limit $LIMIT)"
    fi
else
    fail "gw-b's breaker: $(state_of gwb up/status-500)"
fi
check "gw-b refuses the target at once" 503 "$(chat gwb bad)"
check "gw-b never called its upstream" 0 "$(upstream_chats "$UB_PORT")"
check_match "gw-b logs who opened it" "circuit breaker of up/status-500 opened by instance gw-a" "$(cat "$WORK/gwb.log")"
check "the other target stays closed on gw-b" closed "$(state_of gwb up/fast)"

out=$(ctl gwb breaker reset up/status-500)
check "breaker reset on gw-b" '{"ok":true}' "$out"
if wait_until 10 is_state gwa up/status-500 closed; then ok "the reset reached gw-a"
else fail "gw-a's breaker after the reset: $(state_of gwa up/status-500)"; fi
check_match "gw-a logs the remote reset" "breaker of up/status-500 reset by instance gw-b" "$(cat "$WORK/gwa.log")"
out=$(redis-cli -p "$RPORT" exists "${PREFIX}breaker:up/status-500")
check "the breaker key is gone" 0 "$out"

echo "a late joiner learns open breakers"
chat gwb bad >/dev/null
chat gwb bad >/dev/null
wait_until 10 is_state gwa up/status-500 open
ttl=$(redis-cli -p "$RPORT" pttl "${PREFIX}breaker:up/status-500")
check_match "the key carries the open-until time as its expiry" "^[0-9]{5,6}$" "$ttl"
gwe_DPORT=$(free_port)
write_conf gwe "$gwe_DPORT" "$UA_PORT" "${CLUSTER_A//gw-a/gw-e}"
start_gw gwe
if wait_until 10 is_state gwe up/status-500 open; then ok "gw-e, started now, finds it open"
else fail "gw-e's breaker: $(state_of gwe up/status-500)"; fi
check_match "and names who opened it" "circuit breaker of up/status-500 opened by instance gw-b" "$(cat "$WORK/gwe.log")"
kill -TERM "$gwe_PID"; wait "$gwe_PID"
check "gw-e exits 0" 0 "$?"

echo "reload"
check "a reload keeping the group is applied" '{"ok":true}' "$(ctl gwa reload)"
sed -i 's/instance = "gw-a"/instance = "gw-z"/' "$WORK/gwa.conf"
check_match "a reload changing it is refused" "reload cannot change 'cluster'" "$(ctl gwa reload)"
sed -i 's/instance = "gw-z"/instance = "gw-a"/' "$WORK/gwa.conf"
if wait_until 10 connected gwa; then ok "still connected after the reload"
else fail "gw-a after a reload: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"; fi

echo "Redis down and back"
# gw-b's opening is still on: it must outlive the outage.
kill -TERM "$R_RPID"
wait "$R_RPID" 2>/dev/null
if wait_until 10 disconnected gwa && wait_until 10 disconnected gwb; then
    ok "both see Redis gone"
else
    fail "stats after Redis stopped: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi
bad_answers=0
for i in $(seq 1 10); do
    for g in gwa gwb; do
        s=$(chat "$g" good); [ "$s" = 200 ] || bad_answers=$((bad_answers + 1))
    done
done
check "every request answered while Redis is down" 0 "$bad_answers"
start_redis R "$RPORT"
for i in $(seq 1 5); do
    for g in gwa gwb; do
        s=$(chat "$g" good); [ "$s" = 200 ] || bad_answers=$((bad_answers + 1))
    done
done
check "every request answered while Redis comes back" 0 "$bad_answers"
if wait_until 15 connected gwa && wait_until 15 connected gwb; then
    ok "both reconnected"
else
    fail "stats after Redis restarted: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi
check "gw-a logged the loss once" 1 "$(grep -c 'cluster: lost Redis' "$WORK/gwa.log")"
check "gw-b logged the loss once" 1 "$(grep -c 'cluster: lost Redis' "$WORK/gwb.log")"
check_match "gw-a logged the reconnection" "cluster: reconnected to Redis" "$(cat "$WORK/gwa.log")"
check "the open breaker stayed open on gw-a" open "$(state_of gwa up/status-500)"
has_key() { [ "$(redis-cli -p "$RPORT" exists "${PREFIX}breaker:up/status-500")" = 1 ]; }
if wait_until 10 has_key; then ok "and is published again to the new Redis"
else fail "no breaker key after the reconnection"; fi
wait_until 10 lists_both gwa
out=$(ctl gwa cluster)
check_match "the instance list is back" '"gw-a".*"gw-b"' "$out"

echo "a Redis that hangs"
# gw-b is frozen meanwhile: at its own reconnection it would publish its
# opening of up/status-500 again, racing gw-a's reset below.
kill -STOP "$gwb_PID"
kill -STOP "$R_RPID"
hung=0
for i in $(seq 1 5); do
    s=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$(msg good)" "http://127.0.0.1:$gwa_DPORT/v1/chat/completions")
    [ "$s" = 200 ] || hung=$((hung + 1))
done
check "requests answered at once while Redis hangs" 0 "$hung"
if wait_until 10 disconnected gwa; then ok "a Redis that does not answer counts as lost"
else fail "gw-a still connected to a stopped Redis"; fi
# gw-b's opening is still stored: a reset made on gw-a meanwhile is for
# the whole cluster once Redis answers, not undone by reading it back.
check "the breaker is still open on gw-a" open "$(state_of gwa up/status-500)"
check "reset on gw-a while Redis hangs" '{"ok":true}' "$(ctl gwa breaker reset up/status-500)"
check "closed there at once" closed "$(state_of gwa up/status-500)"
check_match "gw-a says the cluster hears of it later" \
    "breaker of up/status-500 reset on this instance, and for the cluster when Redis is back" \
    "$(cat "$WORK/gwa.log")"
kill -CONT "$R_RPID"
if wait_until 15 connected gwa; then ok "and it reconnects when Redis answers again"
else fail "gw-a after SIGCONT: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"; fi
if wait_until 10 grep -q "breaker of up/status-500 reset for the cluster" "$WORK/gwa.log"
then ok "the reset is sent at the reconnection"
else fail "gw-a's log: $(tail -3 "$WORK/gwa.log")"; fi
if wait_until 10 eval '! has_key'; then ok "the stored opening is gone"
else fail "the breaker key is still there"; fi
check "the breaker stays closed on gw-a" closed "$(state_of gwa up/status-500)"
kill -CONT "$gwb_PID"
check_match "the loss is logged with its reason" "lost Redis at .*no answer in time" "$(cat "$WORK/gwa.log")"

echo "AUTH with password_env"
PW="pw-$$-$RANDOM-secret"
APORT=$(free_port)
start_redis RA "$APORT" --requirepass "$PW"
gwc_DPORT=$(free_port)
write_conf gwc "$gwc_DPORT" "$UA_PORT" \
    "cluster = { redis = \"127.0.0.1:$APORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-c\"; password_env = \"RCC_TEST_REDIS_PW\"; };"
out=$("$BIN/pipelined" -c "$WORK/gwc.conf" 2>&1)
check_match "an unset password variable stops the start" "RCC_TEST_REDIS_PW is not set" "$out"
RCC_TEST_REDIS_PW="$PW" start_gw gwc
if wait_until 15 connected gwc; then ok "AUTH accepted"
else fail "gw-c: $(ctl gwc stats | grep -o '"cluster":{[^}]*}'); $(tail -3 "$WORK/gwc.log")"; fi
out=$(REDISCLI_AUTH="$PW" redis-cli -p "$APORT" exists "${PREFIX}instance:gw-c")
check "gw-c's heartbeat key is there" 1 "$out"
if grep -q -- "$PW" "$WORK"/gw*.log; then fail "the password is in a log"
else ok "the password is in no log"; fi

echo "a host name, looked up at each connection"
HPORT=$(free_port)
start_redis RH "$HPORT" --bind 127.0.0.1 -::1
gwe_DPORT=$(free_port)
write_conf gwe "$gwe_DPORT" "$UA_PORT" \
    "cluster = { redis = \"localhost:$HPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-e\"; };"
start_gw gwe
if wait_until 15 connected gwe; then ok "localhost:PORT is found and connected"
else fail "gw-e: $(ctl gwe stats | grep -o '"cluster":{[^}]*}'); $(tail -3 "$WORK/gwe.log")"; fi
gwf_DPORT=$(free_port)
write_conf gwf "$gwf_DPORT" "$UA_PORT" \
    "cluster = { redis = \"no-such-host.invalid:$HPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-f\"; };"
start_gw gwf
ok "a name that does not resolve does not stop the start"
check "and requests are served" 200 "$(chat gwf good)"
if wait_until 15 grep -q "cannot reach Redis at no-such-host.invalid" "$WORK/gwf.log"
then ok "the failure is logged"
else fail "gw-f's log: $(tail -3 "$WORK/gwf.log")"; fi
check "once" 1 "$(grep -c 'cannot reach Redis' "$WORK/gwf.log")"
check_match "it is not connected" '"connected":false' "$(ctl gwf stats)"

echo "two daemons given one instance name"
check_nomatch "alone, gw-e warns of no namesake" "is also used" "$(cat "$WORK/gwe.log")"
gwg_DPORT=$(free_port)
write_conf gwg "$gwg_DPORT" "$UA_PORT" \
    "cluster = { redis = \"127.0.0.1:$HPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-e\"; };"
start_gw gwg
if wait_until 15 grep -q "instance name gw-e is also used by the daemon on" \
    "$WORK/gwe.log" "$WORK/gwg.log"
then ok "a second daemon named gw-e is reported"
else fail "no report: $(tail -2 "$WORK/gwe.log") / $(tail -2 "$WORK/gwg.log")"; fi
check "once per daemon" 1 "$(cat "$WORK/gwe.log" "$WORK/gwg.log" | grep -c 'is also used' |
    awk '{ print ($1 >= 1 && $1 <= 2) }')"
check_nomatch "the daemons with names of their own report none" "is also used" \
    "$(cat "$WORK/gwa.log" "$WORK/gwb.log" "$WORK/gwc.log")"

echo "without cluster"
gwd_DPORT=$(free_port)
write_conf gwd "$gwd_DPORT" "$UA_PORT" ""
start_gw gwd
check_nomatch "stats has no cluster" '"cluster"' "$(ctl gwd stats)"
check_nomatch "/metrics has no cluster" "pipeline_cluster" "$(curl -s "http://127.0.0.1:$gwd_DPORT/metrics")"
out=$(ctl gwd cluster); rc=$?
check_match "pipelinectl cluster says it is not configured" "not configured" "$out"
check_nomatch "no cluster line in its log" "cluster" "$(cat "$WORK/gwd.log")"

echo "shutdown"
rcs=""
for g in gwa gwb gwc gwd gwe gwf gwg; do
    pid_var="${g}_PID"
    kill -TERM "${!pid_var}"; wait "${!pid_var}"; rcs="$rcs $?"
done
check "every daemon exits 0 on SIGTERM" " 0 0 0 0 0 0 0" "$rcs"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$WORK"/gw*.log)"

summary cluster
