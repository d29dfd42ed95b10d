#!/usr/bin/env bash
# test_cluster_refused.sh - a Redis that is reachable but refuses writes
# (maxmemory reached with noeviction; a replica after a failover and a
# failed RDB save answer the same way): one daemon against a real
# redis-server on a free loopback port. Its target's rpm budget, leased
# from Redis, goes on alone instead of starving (every request still
# answered 200 within the limit); each kind of refusal is logged once,
# not once a second; a breaker whose half-open time has come, with no
# request to try it, asks Redis for its trial lease once, not at every
# poll (counted in Redis's SLOWLOG against the heartbeats); every key
# the instance writes expires (the instance set too). Prints "cluster_refused: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster_refused
. tests/integration/cluster_lib.sh

RPM=30            # the target's limit: 8 requests are well within it
SHORT_MS=1500     # a request's deadline

RPORT=$(free_port)
start_redis redis "$RPORT"
rcli() { redis-cli -p "$RPORT" "$@"; }

start_upstream UP
DPORT=$(free_port)
cat >"$WORK/gw.conf" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$WORK/gw.sock";
workers = 2;
log_level = "info";
retry = { max_retries = 0; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
circuit_breaker = { failure_threshold = 2; recovery_timeout_ms = 300; };
providers = ( { name = "local"; type = "mock"; },
    { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "sk-up"; } );
virtual_models = (
  { name = "rl"; targets = ( { provider = "local"; model = "rl"; rpm = $RPM; } ); },
  { name = "bad"; targets = ( { provider = "up"; model = "status-500"; } ); }
);
cluster = { redis = "127.0.0.1:$RPORT"; key_prefix = "r$$:"; instance = "gw-r"; };
CONF
chmod 600 "$WORK/gw.conf"
gw_DPORT=$DPORT
start_gw gw
GW_PID=$gw_PID

connected() { ctl gw stats | grep -q '"cluster":{"connected":true'; }
chat() {  # chat [MODEL]: the HTTP status
    curl -s -o /dev/null -w '%{http_code}' -H "X-Request-Timeout-Ms: $SHORT_MS" \
        -H 'Content-Type: application/json' --data-binary "$(msg "${1:-rl}")" \
        "http://127.0.0.1:$DPORT/v1/chat/completions"
}
errors() { rcli info stats | grep '^total_error_replies:' | tr -dc '0-9'; }

if wait_until 20 connected; then ok "connected"
else fail "not connected: $(ctl gw stats | grep -o '"cluster":{[^}]*}')"; fi
check "a first request, leased from Redis" 200 "$(chat)"

echo "Redis refuses writes (maxmemory reached, noeviction)"
rcli config set maxmemory-policy noeviction >/dev/null
rcli config set maxmemory 1 >/dev/null
# The first of them spends what is leased; the next lease is refused.
n200=0
for i in $(seq 1 8); do
    [ "$(chat)" = 200 ] && n200=$((n200 + 1))
done
check "8 requests within rpm $RPM all answered 200 (the budget goes on alone)" 8 "$n200"
refused() { grep -q 'refused a budget lease' "$WORK/gw.log"; }
if wait_until 10 refused; then ok "the refused lease is logged"
else fail "no refusal logged: $(tail -5 "$WORK/gw.log")"; fi
check "still connected (Redis answers)" 0 "$(connected; echo $?)"

# Several heartbeats refused (one a second), each one an error reply.
e0=$(errors)
more_errors() { [ "$(errors)" -ge $((e0 + 4)) ]; }
wait_until 15 more_errors
check "the refused lease logged once" 1 \
    "$(grep -c 'refused a budget lease' "$WORK/gw.log")"
check "the other refusals (heartbeats) logged once, not each second" 1 \
    "$(grep 'refused' "$WORK/gw.log" | grep -vc 'refused a budget lease')"

echo "a breaker's half-open trial while Redis refuses"
# Every command into the SLOWLOG, with its arguments (the keys).
rcli config set slowlog-max-len 100000 >/dev/null
rcli config set slowlog-log-slower-than 0 >/dev/null
rcli slowlog reset >/dev/null
chat bad >/dev/null
chat bad >/dev/null
check "the breaker opened (2 failures)" open \
    "$(ctl gw stats | grep -o '"name":"up/status-500",[^}]*' | grep -o '"state":"[a-z_]*"' | cut -d'"' -f4)"
# Its half-open time (300 ms) passes with no request; three heartbeats
# (one a second) measure the time.
slowlog_count() { rcli slowlog get 100000 | grep -c "^$1\$"; }
beats() { [ "$(slowlog_count "r$$:instances")" -ge 3 ]; }
wait_until 15 beats
asks=$(slowlog_count "r$$:halfopen:up/status-500")
if [ "$asks" -ge 1 ] && [ "$asks" -le 2 ]; then
    ok "the trial lease asked $asks time(s) over three heartbeats"
else
    fail "the trial lease asked $asks times over three heartbeats (want 1..2)"
fi
rcli config set slowlog-log-slower-than 10000 >/dev/null

echo "Redis takes writes again"
rcli del "r$$:budget:target:rpm:local/rl" >/dev/null
rcli config set maxmemory 0 >/dev/null
key_there() { [ "$(rcli exists "r$$:budget:target:rpm:local/rl")" = 1 ]; }
if wait_until 10 key_there; then ok "the budget is leased from Redis again"
else fail "no budget key after Redis took writes again"; fi
check "a request" 200 "$(chat)"
set_ttl() { rcli pttl "r$$:instances"; }
has_ttl() { [ "$(set_ttl)" -gt 0 ]; }
if wait_until 10 has_ttl; then ok "the instance set expires too ($(set_ttl) ms left)"
else fail "the instance set never expires (pttl $(set_ttl))"; fi

kill -TERM "$GW_PID"; wait "$GW_PID"
check "exit 0 on SIGTERM" 0 "$?"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$WORK"/gw.log)"

summary cluster_refused
