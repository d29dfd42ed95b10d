#!/usr/bin/env bash
# test_errors.sh - which error a failed request answers and logs: one
# whose own failures opened its target's breaker before its last retry
# answers its last upstream failure (plain and streamed, garbage and an
# idle upstream), not 503 circuit_open, which stays for a request that
# could not be attempted at all; a stream cut after its 200 is logged
# status=200 with error= beside it, and counted failed. The proxy
# environment (read once per worker, not per transfer) is honoured:
# no_proxy exempts the mock, another host goes to http_proxy. An
# upstream that restarts (closing the kept-alive connections the worker
# keeps registered between transfers) is reached again at once.
# Prints "errors: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
UP_PID=${PIDS[-1]}
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
# One target per model (each model's target has its own breaker): three
# failures open it, and the fourth attempt (the third retry) finds it so.
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 1;
upstream_idle_timeout_ms = 1000;
retry = { max_retries = 3; base_delay_ms = 5; max_delay_ms = 20; jitter = "none"; };
circuit_breaker = { enabled = true; failure_threshold = 3; recovery_timeout_ms = 600000; };
providers = (
  { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; },
  { name = "proxied"; type = "openai"; base_url = "http://proxied.invalid/v1"; api_key = "k"; }
);
virtual_models = (
  { name = "garbage"; targets = ( { provider = "up"; model = "garbage"; } ); },
  { name = "garbage_stream"; targets = ( { provider = "up"; model = "garbage"; } ); },
  { name = "stall"; targets = ( { provider = "up"; model = "slow-20000"; } ); },
  { name = "cut"; targets = ( { provider = "up"; model = "stream-cut"; } ); },
  { name = "drip"; targets = ( { provider = "up"; model = "drip-300"; } ); },
  { name = "proxied"; targets = ( { provider = "proxied"; model = "m"; } ); },
  { name = "fine"; targets = ( { provider = "up"; model = "fast"; } ); }
);
CONF
chmod 600 "$CONF"
# Nothing listens on the proxy's port: a request sent there fails.
PROXY_PORT=$(free_port)
http_proxy="http://127.0.0.1:$PROXY_PORT" no_proxy=127.0.0.1 start_daemon "$CONF"

# log_line ID: the request's one line, once the master wrote it.
log_line() {
    wait_until 10 grep -q "req=$1 model=" "$DLOG"
    grep "req=$1 model=" "$DLOG"
}
metric() { curl -s "http://127.0.0.1:$DPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "an upstream answering garbage: its own failures open the breaker"
code=$(post "$(msg garbage)" -H 'X-Request-Id: garbage-1')
check "the last upstream failure: 502, not 503" 502 "$code"
check_match "its code names it" '"code":"bad_upstream_response"' "$(body)"
check_match "its message is the upstream's failure" '"message":"upstream answer[^"]*"' "$(body)"
check "three attempts made" 3 "$(header X-Pipeline-Attempts)"
check "the target that failed" up/garbage "$(header X-Pipeline-Target)"
check_match "logged as what the client got" 'status=502 attempts=3 ' "$(log_line garbage-1)"
check_match "the breaker is open now" 'pipeline_breaker_state\{target="up/garbage",virtual_model="garbage"\} 1' \
    "$(curl -s "http://127.0.0.1:$DPORT/metrics")"
code=$(post "$(msg garbage)")
check "a request that cannot be attempted: 503" 503 "$code"
check_match "503 circuit_open" '"code":"circuit_open"' "$(body)"
check_match "it says every breaker is open" "circuit breaker is open" "$(body)"

echo "the same before a stream's first byte"
code=$(post "$(msg garbage_stream hi ',"stream":true')" -H 'X-Request-Id: garbage-2')
check "stream: the last upstream failure, 502" 502 "$code"
check_match "stream: a JSON error, not an event" '^\{"error":\{"message":"upstream stream[^"]*","type":"upstream_error","code":"[a-z_]+"\}\}$' "$(body)"
check "stream: three attempts made" 3 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg garbage_stream hi ',"stream":true')")
check "stream after the breaker opened: 503" 503 "$code"
check_match "stream: 503 circuit_open" '"code":"circuit_open"' "$(body)"

echo "an upstream that sends nothing (idle timeout of 1 s)"
code=$(post "$(msg stall)")
check "the last failure: the idle upstream's 502" 502 "$code"
check_match "it names the upstream's silence" '"message":"upstream up/slow-20000 sent nothing for 1000 ms","type":"upstream_error","code":"upstream_idle"' "$(body)"
check "three idle attempts" 3 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg stall)")
check "then 503 circuit_open" 503 "$code"

echo "a stream cut after its 200: logged with the 200, error= beside it"
failed0=$(metric pipeline_requests_failed_total)
ok0=$(metric pipeline_requests_succeeded_total)
code=$(post "$(msg cut "a b c d e" ',"stream":true')" -H 'X-Request-Id: cut-1')
check "the client got 200" 200 "$code"
check_match "and an error event" '^event: error' "$(grep -v '^$' "$WORK/last.body" | tail -2 | head -1)"
ev_code=$(grep '^data: {"error"' "$WORK/last.body" | grep -o '"code":"[a-z_]*"' | cut -d'"' -f4)
check_match "logged status=200 error=<the event's code>" \
    "req=cut-1 model=cut target=up/stream-cut status=200 attempts=1 ms=[0-9.]+ first_byte_ms=[0-9.]+ error=${ev_code:-none}\$" \
    "$(log_line cut-1)"
check "counted failed" $((failed0 + 1)) "$(metric pipeline_requests_failed_total)"
check "not counted succeeded" "$ok0" "$(metric pipeline_requests_succeeded_total)"

echo "a stream the master's deadline cut: the same"
code=$(post "$(msg drip "a b c d e f g h" ',"stream":true')" -H 'X-Request-Id: cut-2' \
    -H 'X-Request-Timeout-Ms: 1500')
check "the client got 200" 200 "$code"
check_match "and a timeout event" '"code":"timeout"' "$(grep '^data: {"error"' "$WORK/last.body")"
check_match "logged status=200 error=timeout" 'req=cut-2 model=drip target=up/drip-300 status=200 .* error=timeout' \
    "$(log_line cut-2)"
check "counted failed" $((failed0 + 2)) "$(metric pipeline_requests_failed_total)"

echo "the proxy environment: no_proxy exempts the mock, http_proxy takes the rest"
check "a request to the mock (no_proxy) answered" 200 "$(post "$(msg fine)")"
code=$(post "$(msg proxied)")
check "a request to another host went to http_proxy: 502" 502 "$code"
check_match "it failed at the proxy's port" "port $PROXY_PORT" "$(body)"

echo "the upstream restarted: the connections it closed are not used again"
ok=0
for i in 1 2 3; do [ "$(post "$(msg fine)" --max-time 10)" = 200 ] && ok=$((ok + 1)); done
check "three answers over kept-alive connections" 3 "$ok"
kill "$UP_PID" 2>/dev/null
wait "$UP_PID" 2>/dev/null
wait_until 10 port_free "$UP_PORT"
"$BIN/mock_upstream" -q -a 127.0.0.1 -p "$UP_PORT" >"$WORK/up2.out" 2>&1 &
PIDS+=($!)
wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$UP_PORT/v1/models"
ok=0
for i in 1 2 3 4 5; do [ "$(post "$(msg fine)" --max-time 10)" = 200 ] && ok=$((ok + 1)); done
check "five answers from the restarted upstream" 5 "$ok"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"

summary errors
