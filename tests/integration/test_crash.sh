#!/usr/bin/env bash
# test_crash.sh - workers dying under load. 40 requests (plain and
# streamed) in flight or queued against a slow upstream on 2 workers of 4
# calls each; one worker is killed with SIGKILL mid-way. Every request
# must end in a 200 or a clean error (an OpenAI-shaped JSON body, or an
# SSE error event mid-stream), most must succeed, none may hang, each
# gets exactly one log line, and the worker comes back. Then a crash
# loop: each new worker is killed as soon as it appears, and the control
# socket's stats show the crashes, the restarts and the growing respawn
# back-off, which clears once workers stay up. Prints
# "crash: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

N=40
PER_WORKER=4
MAXT=60                          # seconds a client waits at most
[ -n "${VALGRIND:-}" ] && MAXT=180
start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
max_concurrent_per_worker = $PER_WORKER;
request_timeout_ms = $((MAXT * 1000 - 5000));
log_level = "info";
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "slow"; targets = ( { provider = "up"; model = "slow-1500"; } ); },
                   { name = "drip"; targets = ( { provider = "up"; model = "drip-300"; } ); } );
CONF
chmod 600 "$CONF"
start_daemon "$CONF"

stats() { "$BIN/pipelinectl" -s "$SOCK" --json stats; }
field() { stats | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
is_stream() { [ $(($1 % 4)) -eq 0 ]; }

echo "40 requests, a worker killed with SIGKILL mid-way"
clients=()
for i in $(seq 1 $N); do
    if is_stream "$i"; then
        body=$(msg drip "one two three four five six" ',"stream":true')
    else
        body=$(msg slow "request $i")
    fi
    ( curl -s -N -o "$WORK/r$i.body" -w '%{http_code}' --max-time "$MAXT" \
          -H "X-Request-Id: crash-$i" --data-binary "$body" \
          "http://127.0.0.1:$DPORT/v1/chat/completions" >"$WORK/r$i.code"
      echo $? >"$WORK/r$i.rc" ) &
    clients+=($!)
done
# Mid-way: the first answers are out, both workers are busy, the rest
# wait in the queue.
midway() {
    [ "$(field succeeded)" -ge 2 ] && [ "$(field depth)" -ge 8 ] &&
        [ "$("$BIN/pipelinectl" -s "$SOCK" --json workers |
             grep -o '"active":[1-9]' | wc -l)" -eq 2 ]
}
if wait_until "$MAXT" midway; then ok "mid-way: answers out, jobs in flight and queued"
else fail "never mid-way: $(stats)"; fi
victim=$("$BIN/pipelinectl" -s "$SOCK" --json workers | grep -o '"pid":[0-9]*,"slot":[0-9]*,"active":[1-9]' |
         head -1 | grep -o '"pid":[0-9]*' | cut -d: -f2)
kill -KILL "$victim"
wait "${clients[@]}"
good=0; clean_errors=0
for i in $(seq 1 $N); do
    rc=$(cat "$WORK/r$i.rc"); code=$(cat "$WORK/r$i.code"); b=$(cat "$WORK/r$i.body")
    if [ "$rc" != 0 ]; then
        fail "request $i: curl exit $rc (28: it hung)"; continue
    fi
    if [ "$code" = 200 ] && is_stream "$i" && [ "$(grep -v '^$' "$WORK/r$i.body" | tail -1)" = 'data: [DONE]' ]; then
        good=$((good + 1))
    elif [ "$code" = 200 ] && ! is_stream "$i" && printf '%s' "$b" | grep -q '"object":"chat.completion"'; then
        good=$((good + 1))
    elif [ "$code" = 200 ] && is_stream "$i" &&
         printf '%s' "$b" | tr -d '\r' | grep -v '^$' | tail -2 | tr '\n' ' ' |
             grep -Eq '^event: error data: \{"error":\{"message":"[^"]+","type":"[a-z_]+","code":"[a-z_]+"\}\} $'; then
        clean_errors=$((clean_errors + 1))
    elif [ "$code" -ge 400 ] 2>/dev/null &&
         printf '%s' "$b" | grep -Eq '^\{"error":\{"message":"[^"]+","type":"[a-z_]+","code":"[a-z_]+"\}\}$'; then
        clean_errors=$((clean_errors + 1))
    else
        fail "request $i: neither a 200 nor a clean error: $code $(head -c 300 "$WORK/r$i.body")"
    fi
done
echo "  $good answered in full, $clean_errors clean errors"
check "every request answered in full or failed cleanly" $N $((good + clean_errors))
# Only calls whose client had seen bytes (streams under way) may fail; the
# others run again. The dead worker had at most $PER_WORKER.
if [ "$good" -ge $((N - PER_WORKER)) ]; then ok "most succeeded ($good of $N)"
else fail "only $good of $N succeeded"; fi
check_match "the death was noticed" "killed by signal 9" "$(cat "$DLOG")"
two() { [ "$(field count)" = 2 ]; }
if wait_until 30 two; then ok "the worker count came back to 2"; else fail "workers: $(stats)"; fi
idle() { [ "$(field active)" = 0 ] && [ "$(field depth)" = 0 ]; }
if wait_until 30 idle; then ok "nothing left in flight or queued"; else fail "still busy: $(stats)"; fi
check "no target slot left taken" "" "$(stats | grep -o '"active":[1-9][0-9]*')"
check_match "no upstream call left counted" '^pipeline_active_requests 0$' \
    "$(curl -s "http://127.0.0.1:$DPORT/metrics" | grep '^pipeline_active_requests ')"
check "one crash counted" 1 "$(field crashes)"
check "one restart counted" 1 "$(field restarts)"
lines=0
for i in $(seq 1 $N); do
    n=$(grep -c "req=crash-$i model=" "$DLOG")
    [ "$n" = 1 ] && lines=$((lines + 1)) || echo "  crash-$i has $n request lines"
done
check "one log line per request" $N "$lines"
requeued=$(grep 'worker died; job queued again' "$DLOG" | grep -o 'req=crash-[0-9]*' | cut -d= -f2)
if [ -n "$requeued" ]; then ok "jobs that had sent nothing ran again: $(echo $requeued)"
elif [ "$clean_errors" -gt 0 ]; then ok "the dead worker's jobs were all streams under way"
else fail "the dead worker's jobs neither ran again nor failed"; fi
for id in $requeued; do
    check_match "$id: counted with the dead worker's attempt" "req=$id model=(slow|drip) .*status=200 attempts=2 " \
        "$(grep "req=$id model=" "$DLOG")"
done
line=$(grep "req=crash-2 model=" "$DLOG")
check_match "a request line has its status" "model=slow target=up/slow-1500 status=$(cat "$WORK/r2.code") attempts=[1-9]" "$line"
code=$(post "$(msg slow)"); check "serving after the kill" 200 "$code"

echo "a crash loop: each new worker killed as soon as it appears"
survivor=$(stats | grep -o '"pids":\[[0-9]*' | grep -o '[0-9]*$')
# The first kill ends a long-lived worker (no back-off); each later one
# a worker younger than the 1 s crash window, so the delay doubles.
killed=""
newcomer() {
    local p
    for p in $(pgrep -P "$DPID"); do
        [ "$p" = "$survivor" ] && continue
        case " $killed " in *" $p "*) continue ;; esac
        victim=$p; return 0
    done
    return 1
}
backoffs=""
crashes=$(field crashes)
for k in 1 2 3 4 5 6 7 8; do
    if ! wait_until 30 newcomer; then fail "no new worker after kill $((k - 1))"; break; fi
    kill -KILL "$victim"
    killed="$killed $victim"
    crashes=$((crashes + 1))
    counted() { [ "$(field crashes)" = "$crashes" ]; }
    wait_until 30 counted || { fail "crash $k not counted: $(stats)"; break; }
    b=$(field respawn_backoff_ms)
    backoffs="$backoffs $b"
    [ "$b" -ge 1600 ] && break
done
echo "  back-off after each kill:$backoffs ms"
check_match "the back-off doubled with each early death" ' 200 400 800 1600$' "$backoffs"
check "the next start waits: one worker meanwhile" 1 "$(field count)"
check_match "crash_streak in stats" '"crash_streak":[4-9]' "$(stats)"
for ms in 200 400 800 1600; do
    check_match "back-off of $ms ms logged" "workers keep dying at start \([0-9]+ in a row\); next start in $ms ms" "$(cat "$DLOG")"
done
out=$("$BIN/pipelinectl" -s "$SOCK" stats)
check_match "pipelinectl shows the back-off" "restarts  [0-9]+  crashes $crashes  crash streak [4-9]  respawn back-off 1600 ms" "$out"
if wait_until 30 two; then ok "left alone, the workers came back to 2"; else fail "workers: $(stats)"; fi
check "every crash replaced" "$crashes" "$(field restarts)"
settled() { [ "$(field respawn_backoff_ms)" = 0 ] && [ "$(field crash_streak)" = 0 ]; }
if wait_until 30 settled; then ok "back-off cleared once the workers stayed up"; else fail "back-off kept: $(stats)"; fi
check_match "the clearing is logged" 'crash back-off \(1600 ms after [0-9]+ early deaths\) cleared' "$(cat "$DLOG")"
code=$(post "$(msg slow)"); check "serving after the crash loop" 200 "$code"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary crash
