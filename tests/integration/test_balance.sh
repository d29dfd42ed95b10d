#!/usr/bin/env bash
# test_balance.sh - load balancing and circuit breakers against three C
# mock upstreams: each strategy's distribution, direct addressing, a
# breaker opening on a dead target (traffic fails over), 503 with
# Retry-After when every breaker is open, and recovery through half-open
# once the target comes back. Prints "balance: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream A
start_upstream B
start_upstream C
DPORT=$(free_port)
DEAD_PORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
log_level = "info";
retry = { max_retries = 1; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
circuit_breaker = { failure_threshold = 2; recovery_timeout_ms = 1500; half_open_max_requests = 1; };
providers = (
  { name = "a"; type = "openai"; base_url = "http://127.0.0.1:$A_PORT/v1"; api_key = "k"; },
  { name = "b"; type = "openai"; base_url = "http://127.0.0.1:$B_PORT/v1"; api_key = "k"; },
  { name = "c"; type = "openai"; base_url = "http://127.0.0.1:$C_PORT/v1"; api_key = "k"; },
  { name = "dead"; type = "openai"; base_url = "http://127.0.0.1:$DEAD_PORT/v1"; api_key = "k"; }
);
virtual_models = (
  { name = "rr"; strategy = "round-robin"; targets = (
      { provider = "a"; model = "fast"; }, { provider = "b"; model = "fast"; },
      { provider = "c"; model = "fast"; } ); },
  { name = "weighted"; strategy = "weighted"; targets = (
      { provider = "a"; model = "fast"; weight = 5; },
      { provider = "b"; model = "fast"; weight = 1; },
      { provider = "c"; model = "fast"; weight = 1; } ); },
  { name = "random"; strategy = "random"; targets = (
      { provider = "a"; model = "fast"; weight = 3; },
      { provider = "b"; model = "fast"; weight = 1; } ); },
  { name = "least"; strategy = "least-connections"; targets = (
      { provider = "a"; model = "slow-600"; }, { provider = "b"; model = "fast"; } ); },
  { name = "flaky"; targets = (
      { provider = "dead"; model = "x"; }, { provider = "c"; model = "fast"; } ); },
  { name = "lonely"; targets = ( { provider = "dead"; model = "y"; } ); },
  { name = "narrow"; targets = ( { provider = "b"; model = "slow-300"; max_concurrent = 1; } ); }
);
CONF
chmod 600 "$CONF"
start_daemon "$CONF"

reset_all() {
    for p in "$A_PORT" "$B_PORT" "$C_PORT"; do
        curl -s -X POST "http://127.0.0.1:$p/stats/reset" >/dev/null
    done
}
count() { curl -s "http://127.0.0.1:$1/stats" | grep -o '[0-9]*'; }
run() {  # run MODEL N: N sequential requests, all must be 200
    local bad=0
    for _ in $(seq 1 "$2"); do
        [ "$(post "$(msg "$1")")" = 200 ] || bad=$((bad + 1))
    done
    check "$1: $2 requests answered" 0 "$bad"
}

echo "round-robin"
reset_all; run rr 30
check "round-robin evenly" "10 10 10" "$(count "$A_PORT") $(count "$B_PORT") $(count "$C_PORT")"

echo "smooth weighted round-robin 5:1:1"
reset_all; run weighted 70
check "weighted exactly 5:1:1" "50 10 10" "$(count "$A_PORT") $(count "$B_PORT") $(count "$C_PORT")"

echo "weighted random 3:1"
reset_all; run random 200
a=$(count "$A_PORT"); b=$(count "$B_PORT")
check "random: every request went to a or b" 200 $((a + b))
share=$(( a * 100 / 200 ))
if [ "$share" -ge 60 ] && [ "$share" -le 90 ]; then ok "random share of a near 75% ($share%)"
else fail "random share of a $share%, not near 75%"; fi

echo "least-connections under uneven load"
reset_all
post "$(msg least)" >/dev/null &   # a slow call keeps a busy
slowpid=$!
a_busy() { [ "$(count "$A_PORT")" = 1 ]; }
wait_until 10 a_busy
run least 10
wait "$slowpid"
check "least-connections sends new calls to the idle target" "1 10" "$(count "$A_PORT") $(count "$B_PORT")"

echo "a target's max_concurrent: the others wait in the queue"
reset_all
start=$(date +%s%N)
pids=()
for id in n1 n2 n3; do
    post "$(msg narrow)" -H "X-Request-Id: $id" >"$WORK/$id.code" &
    pids+=($!)
done
wait "${pids[@]}"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
for id in n1 n2 n3; do check "$id answered 200" 200 "$(cat "$WORK/$id.code")"; done
if [ "$ms" -ge 850 ]; then ok "one at a time on the narrow target (${ms} ms for 3 x 300 ms)"
else fail "narrow target ran calls together (${ms} ms for 3 x 300 ms)"; fi
check "narrow: each request reached the upstream once" 3 "$(count "$B_PORT")"

echo "direct addressing"
reset_all
code=$(post "$(msg c/fast)"); check "provider/model 200" 200 "$code"
check "provider/model went to c only" "0 0 1" "$(count "$A_PORT") $(count "$B_PORT") $(count "$C_PORT")"

echo "a dead target: the breaker opens and traffic fails over"
reset_all; run flaky 6
check_match "breaker of dead/x open" '"name":"dead/x","virtual_model":"flaky","state":"open"' \
    "$("$BIN/pipelinectl" -s "$SOCK" --json stats)"
code=$(post "$(msg flaky)")
check "open breaker skipped: one attempt" 1 "$(header X-Pipeline-Attempts)"
check "answered by c/fast" c/fast "$(header X-Pipeline-Target)"
check_match "transition logged" 'circuit breaker of dead/x opened' "$(cat "$DLOG")"

echo "every breaker open: 503 with Retry-After"
post "$(msg lonely)" >/dev/null; post "$(msg lonely)" >/dev/null
code=$(post "$(msg lonely)")
check "all open 503" 503 "$code"
ra=$(header Retry-After)
if [ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 2 ]; then ok "Retry-After is the half-open time ($ra s)"
else fail "Retry-After [$ra] not 1..2 s"; fi
check_match "503 names the breakers" 'circuit breaker' "$(body)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/health")
check "health still 200 (other targets usable)" 200 "$code"

echo "recovery through half-open"
"$BIN/mock_upstream" -q -p "$DEAD_PORT" >/dev/null 2>&1 &
PIDS+=($!)
dead_up() { curl -sf "http://127.0.0.1:$DEAD_PORT/stats"; }
wait_until 10 dead_up
half_open_due() { [ "$(post "$(msg lonely)")" = 200 ]; }
if wait_until 10 half_open_due; then ok "lonely answers once half-open lets a probe through"
else fail "lonely never recovered"; fi
check_match "breaker of dead/y closed again" '"name":"dead/y","virtual_model":"lonely","state":"closed"' \
    "$("$BIN/pipelinectl" -s "$SOCK" --json stats)"
out=$("$BIN/pipelinectl" -s "$SOCK" --json breaker reset dead/x); check "breaker reset" '{"ok":true}' "$out"
check_match "reset breaker closed" '"name":"dead/x","virtual_model":"flaky","state":"closed"' \
    "$("$BIN/pipelinectl" -s "$SOCK" --json stats)"
"$BIN/pipelinectl" -s "$SOCK" breaker reset nosuch >/dev/null 2>&1; check "reset of an unknown target exit 1" 1 "$?"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary balance
