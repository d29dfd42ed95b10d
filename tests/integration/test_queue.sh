#!/usr/bin/env bash
# test_queue.sh - the shared queue seen from outside: with one upstream
# slot, waiting requests run highest X-Priority first and FIFO within a
# priority; a full queue answers 429 with Retry-After; a waiting request
# whose client leaves is dropped without reaching the upstream.
# Prints "queue: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
max_concurrent_requests = 1;
queue_capacity = 4;
log_level = "info";
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = (
  { name = "slow"; targets = ( { provider = "up"; model = "slow-200"; } ); },
  { name = "blocker"; targets = ( { provider = "up"; model = "slow-3000"; } ); }
);
CONF
chmod 600 "$CONF"
start_daemon "$CONF"

queued() { [ "$(stats_field depth)" = "$1" ]; }
CLIENTS=()
send() {  # send ID PRIORITY [MODEL]: in the background; status into ID.code
    post "$(msg "${3:-slow}")" -H "X-Request-Id: $1" -H "X-Priority: $2" \
        >"$WORK/$1.code" &
    CLIENTS+=($!)
}
wait_clients() { wait "${CLIENTS[@]}"; CLIENTS=(); }

echo "priority order under saturation"
send first 0 blocker
one_running() { [ "$(stats_field active)" -ge 1 ] && queued 0; }
wait_until 10 one_running
send low-a 0;  wait_until 10 queued 1
send high 5;   wait_until 10 queued 2
send low-b 0;  wait_until 10 queued 3
send mid 2;    wait_until 10 queued 4
echo "queue full: 429"
code=$(post "$(msg slow)" -H "X-Request-Id: overflow")
check "full queue answers 429" 429 "$code"
check "429 has Retry-After" 1 "$(header Retry-After)"
check_match "429 in OpenAI shape" '"type":"rate_limit_error"' "$(body)"
wait_clients
for id in first low-a high low-b mid; do
    check "$id answered 200" 200 "$(cat "$WORK/$id.code")"
done
# The answered ones (the refused overflow has its line too).
order=$(grep -Eo 'req=[a-z-]* model=[a-z]* target=[^ ]* status=200' "$DLOG" | cut -d' ' -f1 | cut -d= -f2 | tr '\n' ' ')
check "completion order" "first high mid low-a low-b " "$order"

echo "a waiting request whose deadline passes: 504, upstream never called"
curl -s "http://127.0.0.1:$UP_PORT/stats/reset" -X POST >/dev/null
send blocker2 0 blocker
wait_until 10 one_running
code=$(post "$(msg slow)" -H 'X-Request-Id: expirer' -H 'X-Request-Timeout-Ms: 300')
check "expired in the queue: 504" 504 "$code"
wait_clients
check "the upstream saw only the blocker" '{"requests":1}' "$(curl -s "http://127.0.0.1:$UP_PORT/stats")"

echo "a waiting request whose client leaves never reaches the upstream"
curl -s "http://127.0.0.1:$UP_PORT/stats/reset" -X POST >/dev/null
send blocker 0 blocker
wait_until 10 one_running
curl -s -m 0.3 -H 'X-Request-Id: leaver' --data-binary "$(msg slow)" \
    "http://127.0.0.1:$DPORT/v1/chat/completions" >/dev/null
wait_clients
check_match "the leaver was dropped from the queue" 'req=leaver .*status=499' "$(cat "$DLOG")"
check "the upstream saw only the blocker" '{"requests":1}' "$(curl -s "http://127.0.0.1:$UP_PORT/stats")"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary queue
