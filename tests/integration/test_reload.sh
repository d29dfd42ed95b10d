#!/usr/bin/env bash
# test_reload.sh - SIGHUP and "reload": a valid file is applied with no
# request dropped (a call in flight finishes, new workers serve the new
# upstream); targets and virtual models can be added and removed while
# requests flow (a new target gets traffic, no request fails, a removed
# model answers 404, a queued job for it too, breaker state of unchanged
# targets carries over); a broken file is refused with FILE:LINE and the
# old one keeps serving; a change that needs a restart is refused and
# says so. Prints "reload: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream A
start_upstream B
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
VM_FIRST='{ name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
          { name = "slow"; targets = ( { provider = "up"; model = "slow-2000"; } ); }'
# write_conf UP_PORT [EXTRA LINE] [VIRTUAL MODELS]: provider "up" calls
# UP_PORT, "up2" always B. Breakers open after 2 failures, no retries.
write_conf() {
    cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
retry = { max_retries = 0; };
circuit_breaker = { failure_threshold = 2; recovery_timeout_ms = 600000; };
${2:-}
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$1/v1"; api_key = "k"; },
              { name = "up2"; type = "openai"; base_url = "http://127.0.0.1:$B_PORT/v1"; api_key = "k"; } );
virtual_models = ( ${3:-$VM_FIRST} );
CONF
    chmod 600 "$CONF"
}
count() { curl -s "http://127.0.0.1:$1/stats" | grep -o '[0-9]*'; }
reset_count() { curl -s -X POST "http://127.0.0.1:$1/stats/reset" >/dev/null; }
stats() { "$BIN/pipelinectl" -s "$SOCK" --json stats; }
pids() { stats | grep -o '"pids":\[[0-9,]*\]'; }
# target_stats NAME: that target's entry of "stats" (up to its latency)
target_stats() { stats | grep -o "\"name\":\"$1\"[^}]*"; }
reloads() { grep -c 'configuration reloaded' "$DLOG"; }
# reload_wait: SIGHUP, then wait until the master says it applied it
reload_wait() {
    local n
    n=$(reloads)
    kill -HUP "$DPID"
    more_reloads() { [ "$(reloads)" -gt "$n" ]; }
    wait_until 30 more_reloads
}

write_conf "$A_PORT"
start_daemon "$CONF"
check "served by A" 200 "$(post "$(msg default)")"
before=$(pids)

echo "SIGHUP with a valid file: applied, nothing dropped"
post "$(msg slow)" >"$WORK/inflight.code" &
cpid=$!
a_busy() { [ "$(count "$A_PORT")" -ge 2 ]; }
wait_until 10 a_busy
write_conf "$B_PORT" "workers = 3;"
kill -HUP "$DPID"
reloaded() { grep -q 'configuration reloaded' "$DLOG"; }
wait_until 10 reloaded
wait "$cpid"
check "the call in flight finished" 200 "$(cat "$WORK/inflight.code")"
three() { [ "$(stats | grep -o '"count":[0-9]*' | cut -d: -f2)" = 3 ]; }
if wait_until 10 three; then ok "workers = 3 applied"; else fail "worker count not applied"; fi
check_nomatch "all new workers" "$before" "$(pids)"
reset_count "$B_PORT"
check "served after the reload" 200 "$(post "$(msg default)")"
check "by the new upstream B" 1 "$(count "$B_PORT")"

echo "a broken file is refused; the old one keeps serving"
printf 'listen = "127.0.0.1:%s";\nworkers = ;\n' "$DPORT" >"$CONF"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload); rc=$?
check "reload of a broken file exits 1" 1 "$rc"
check_match "and names FILE:LINE" "\"error\":\"$CONF:2: " "$out"
check_match "logged with FILE:LINE" "reload refused.*$CONF:2:" "$(cat "$DLOG")"
check "still serving" 200 "$(post "$(msg default)")"
kill -HUP "$DPID"
refused_twice() { [ "$(grep -c "reload refused.*$CONF:2:" "$DLOG")" -ge 2 ]; }
if wait_until 10 refused_twice; then ok "SIGHUP with it: refused too"
else fail "SIGHUP with a broken file not refused with FILE:LINE"; fi
check "still serving after SIGHUP" 200 "$(post "$(msg default)")"

echo "a change that needs a restart is refused"
write_conf "$B_PORT" "queue_capacity = 10;"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload); rc=$?
check "exit 1" 1 "$rc"
check_match "says what needs a restart" "reload cannot change 'queue_capacity'" "$out"
check "still serving" 200 "$(post "$(msg default)")"

echo "pipelinectl reload with a valid file"
write_conf "$A_PORT"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload)
check "reload ok" '{"ok":true}' "$out"
reset_count "$A_PORT"
check "served" 200 "$(post "$(msg default)")"
check "by A again" 1 "$(count "$A_PORT")"

echo "SIGHUP adding a target under a steady stream of requests"
# stream FILE: requests to "default" one after another until $WORK/stop
# exists (or, should the test go wrong, 300 s pass); one status a line.
stream() {
    local deadline=$(( $(date +%s) + 300 ))
    while [ ! -e "$WORK/stop" ] && [ "$(date +%s)" -lt $deadline ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
            -H 'Content-Type: application/json' --data-binary "$(msg default)" \
            "http://127.0.0.1:$DPORT/v1/chat/completions" >>"$1" || break
    done
}
answers() { cat "$WORK"/stream.* 2>/dev/null | wc -l; }
at_least() { [ "$(answers)" -ge "$1" ]; }
stream "$WORK/stream.1" & s1=$!
stream "$WORK/stream.2" & s2=$!
PIDS+=("$s1" "$s2")
wait_until 30 at_least 20
reset_count "$B_PORT"
VM_TWO='{ name = "default"; targets = ( { provider = "up"; model = "fast"; },
                                        { provider = "up2"; model = "fast"; } ); },
        { name = "gone"; targets = ( { provider = "up2"; model = "slow-8000"; max_concurrent = 1; } ); }'
write_conf "$A_PORT" "" "$VM_TWO"
requests() { target_stats "$1" | grep -o '"requests":[0-9]*' | cut -d: -f2; }
kept=$(requests up/fast)
if reload_wait; then ok "reloaded"; else fail "no reload"; fi
n_reload=$(answers)
b_busy() { [ "$(count "$B_PORT")" -ge 10 ]; }
if wait_until 60 b_busy; then ok "the new target receives traffic"
else fail "B saw [$(count "$B_PORT")] requests after the reload"; fi
reset_count "$A_PORT"
a_too() { [ "$(count "$A_PORT")" -ge 5 ]; }
if wait_until 60 a_too; then ok "the old target still does"; else fail "A idle"; fi
wait_until 60 at_least $((n_reload + 20))
touch "$WORK/stop"
wait "$s1" "$s2"
total=$(answers)
bad=$(grep -vc '^200$' "$WORK"/stream.* | awk -F: '{ n += $2 } END { print n }')
if [ "$total" -ge 40 ]; then ok "$total requests across the reload"
else fail "only $total requests"; fi
check "none failed" 0 "$bad"
check_match "stats list the new target" '"name":"up2/fast","virtual_model":"default"' "$(stats)"
if [ "$(requests up/fast)" -ge "$kept" ]; then ok "the old one kept its counters"
else fail "up/fast requests went from $kept to $(requests up/fast)"; fi

echo "SIGHUP removing a target and a virtual model, adding a virtual model"
# A call in flight holds "gone"'s only slot (for 8 s: room for the reload
# to land first, even under valgrind); a second request waits in the
# queue when the model disappears.
post "$(msg gone)" >"$WORK/held.code" &
h1=$!
gone_busy() { target_stats up2/slow-8000 | grep -q '"active":1'; }
wait_until 30 gone_busy
curl -s -o "$WORK/queued.body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$(msg gone)" "http://127.0.0.1:$DPORT/v1/chat/completions" \
    >"$WORK/queued.code" &
h2=$!
queued() { [ "$(stats_field depth)" = 1 ]; }
if wait_until 30 queued; then ok "a request waits in the queue"; else fail "nothing queued"; fi
VM_THREE='{ name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
          { name = "fresh"; targets = ( { provider = "up2"; model = "echo-new"; } ); },
          { name = "broken"; targets = ( { provider = "up"; model = "status-500"; } ); }'
write_conf "$A_PORT" "" "$VM_THREE"
if reload_wait; then ok "reloaded"; else fail "no reload"; fi
wait "$h2"
check "the queued request: 404" 404 "$(cat "$WORK/queued.code")"
check_match "model_not_found" '"code":"model_not_found"' "$(cat "$WORK/queued.body")"
check_match "removed by the reload, it says" 'removed by a configuration reload' \
    "$(cat "$WORK/queued.body")"
wait "$h1"
check "the call in flight on the old worker finished" 200 "$(cat "$WORK/held.code")"
check "the new virtual model serves" 200 "$(post "$(msg fresh)")"
check "through its target" "up2/echo-new" "$(header X-Pipeline-Target)"
check "the removed target's name: 404" 404 "$(post "$(msg up2/fast)")"
check_match "model_not_found" '"code":"model_not_found"' "$(body)"
check "the removed virtual model: 404" 404 "$(post "$(msg gone)")"
check "the kept model still serves" 200 "$(post "$(msg default)")"
check_nomatch "stats no longer list the removed targets" 'up2/fast|slow-8000' "$(stats)"
models=$(curl -s "http://127.0.0.1:$DPORT/v1/models")
check_match "/v1/models lists the new model" '"id":"fresh"' "$models"
check_nomatch "and not the removed one" '"id":"gone"' "$models"
check_match "/metrics follows" 'pipeline_target_requests_total\{target="up2/echo-new",virtual_model="fresh"\} 1' \
    "$(curl -s "http://127.0.0.1:$DPORT/metrics")"

echo "breaker state of an unchanged target carries over"
check "a failing upstream: 502" 502 "$(post "$(msg broken)")"
check "twice" 502 "$(post "$(msg broken)")"
check_match "its breaker is open" '"state":"open"' "$(target_stats up/status-500)"
VM_FOUR="$VM_THREE"',
          { name = "later"; targets = ( { provider = "up2"; model = "echo-later"; } ); }'
write_conf "$A_PORT" "" "$VM_FOUR"
if reload_wait; then ok "reloaded"; else fail "no reload"; fi
after=$(target_stats up/status-500)
check_match "still open after the reload" '"state":"open"' "$after"
check_match "with its counters" '"requests":2,"failures":2' "$after"
check "calls to it are refused at once" 503 "$(post "$(msg broken)")"
check_match "the new target starts closed" '"state":"closed","active":0,"requests":0' \
    "$(target_stats up2/echo-later)"
check "and serves" 200 "$(post "$(msg later)")"
check_nomatch "no worker died" 'killed by signal|exited with' "$(cat "$DLOG")"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary reload
