#!/usr/bin/env bash
# test_api.sh - starts the real daemon against C mock upstreams and checks
# the contract's HTTP API: plain and streamed answers, every error status,
# upstream faults, a worker killed mid-request, the control socket and
# pipelinectl, and a graceful stop. Prints "api: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
DPORT=$(free_port)
DEAD_PORT=$(free_port)          # nothing listens there
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
max_body_bytes = 4096;
upstream_idle_timeout_ms = 2000;
log_level = "debug";
retry = { max_retries = 2; base_delay_ms = 5; max_delay_ms = 20; jitter = "none"; };
providers = (
  { name = "local"; type = "mock"; },
  { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1/"; api_key = "sk-upstream-secret"; },
  { name = "dead"; type = "openai"; base_url = "http://127.0.0.1:$DEAD_PORT/v1"; api_key = "k"; },
  { name = "byname"; type = "openai"; base_url = "http://localhost:$UP_PORT/v1"; api_key = "sk-upstream-secret"; }
);
virtual_models = (
  { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
  { name = "byname"; targets = ( { provider = "byname"; model = "echo-auth"; } ); },
  { name = "echo"; targets = ( { provider = "up"; model = "echo-auth"; } ); },
  { name = "mock"; targets = ( { provider = "local"; model = "mock-small"; } ); },
  { name = "garbage"; targets = ( { provider = "up"; model = "garbage"; } ); },
  { name = "wrongtype"; targets = ( { provider = "up"; model = "wrongtype"; } ); },
  { name = "truncated"; targets = ( { provider = "up"; model = "truncated"; } ); },
  { name = "refused"; targets = ( { provider = "dead"; model = "x"; } ); },
  { name = "s500"; targets = ( { provider = "up"; model = "status-500"; } ); },
  { name = "s400"; targets = ( { provider = "up"; model = "status-400"; } ); },
  { name = "s401"; targets = ( { provider = "up"; model = "status-401"; } ); },
  { name = "cut"; targets = ( { provider = "up"; model = "stream-cut"; } ); },
  { name = "nodone"; targets = ( { provider = "up"; model = "stream-nodone"; } ); },
  { name = "multiline"; targets = ( { provider = "up"; model = "stream-multiline"; } ); },
  { name = "slow"; targets = ( { provider = "up"; model = "slow-1500"; } ); },
  { name = "drip"; targets = ( { provider = "up"; model = "drip-400"; } ); },
  { name = "big"; targets = ( { provider = "up"; model = "big-4096"; } ); },
  { name = "stall"; targets = ( { provider = "up"; model = "slow-20000"; } ); },
  { name = "flaky"; targets = ( { provider = "up"; model = "fail2-503"; } ); },
  { name = "flaky500"; targets = ( { provider = "up"; model = "fail2-500"; } ); },
  { name = "limited"; targets = ( { provider = "up"; model = "fail1-429"; } ); },
  { name = "slow4"; targets = ( { provider = "up"; model = "slow-4000"; } ); },
  { name = "dripstream"; targets = ( { provider = "up"; model = "drip-300"; } ); },
  { name = "failover"; targets = ( { provider = "dead"; model = "y"; }, { provider = "up"; model = "fast"; } ); }
);
CONF
chmod 600 "$CONF"

echo "config check"
out=$("$BIN/pipelined" -t -c "$CONF" 2>&1); check "-t accepts a good file" "configuration ok" "$out"
printf 'workers = 2;\nbogus_key = 1;\n' >"$WORK/bad.conf"
out=$("$BIN/pipelined" -t -c "$WORK/bad.conf" 2>&1); rc=$?
check "-t exit 1 on a bad file" 1 "$rc"
check_match "-t names FILE:LINE" "^$WORK/bad.conf:2: unknown key 'bogus_key'" "$out"

start_daemon "$CONF"

echo "plain and streamed answers"
code=$(post "$(msg default)" -H 'X-Request-Id: my-req-42')
check "plain 200" 200 "$code"
check "X-Request-Id kept" my-req-42 "$(header X-Request-Id)"
check "X-Pipeline-Target" up/fast "$(header X-Pipeline-Target)"
check "X-Pipeline-Attempts" 1 "$(header X-Pipeline-Attempts)"
check_match "plain body is a completion" '"object":"chat.completion"' "$(body)"
code=$(post "$(msg default)"); check_match "X-Request-Id generated" '^req-[0-9a-f]{16}$' "$(header X-Request-Id)"
code=$(post "$(msg echo)"); check_match "API key sent upstream" 'auth: Bearer sk-upstream-secret' "$(body)"
code=$(post "$(msg up/fast)"); check "direct provider/model 200" 200 "$code"
check "direct target header" up/fast "$(header X-Pipeline-Target)"
code=$(post "$(msg default "one two three" ',"stream":true')")
check "stream 200" 200 "$code"
check_match "stream content type" 'text/event-stream' "$(header Content-Type)"
check_match "stream relays chunks" '"delta":\{"content":"three"\}' "$(body)"
check "stream ends with [DONE]" 'data: [DONE]' "$(grep -v '^$' "$WORK/last.body" | tail -1)"
# A host name is libcurl's to call (127.0.0.1 above is the workers' own
# client's): both paths answer the same.
code=$(post "$(msg byname)"); check "by host name (libcurl) 200" 200 "$code"
check_match "by host name: API key sent upstream" 'auth: Bearer sk-upstream-secret' "$(body)"
code=$(post "$(msg byname "x y" ',"stream":true')"); check "by host name: stream 200" 200 "$code"
check "by host name: stream ends with [DONE]" 'data: [DONE]' "$(grep -v '^$' "$WORK/last.body" | tail -1)"
code=$(post "$(msg mock "ping pong")"); check "built-in mock 200" 200 "$code"
check_match "mock quotes the request" 'to: ping pong' "$(body)"
code=$(post "$(msg mock "a b" ',"stream":true')"); check "mock stream 200" 200 "$code"
check "mock stream [DONE]" 'data: [DONE]' "$(grep -v '^$' "$WORK/last.body" | tail -1)"

echo "streamed chunks are relayed as they come, not buffered"
t=$(curl -s -N -o /dev/null -w '%{time_starttransfer} %{time_total}' \
    --data-binary "$(msg drip "a b c" ',"stream":true')" \
    "http://127.0.0.1:$DPORT/v1/chat/completions")
early=$(echo "$t" | awk '{ print ($1 * 2 < $2 && $2 >= 1.5) ? "yes" : "no" }')
check "first chunk long before the end ($t)" yes "$early"

echo "other endpoints"
out=$(curl -s "http://127.0.0.1:$DPORT/v1/models")
check_match "/v1/models lists virtual models" '"id":"default"' "$out"
check_match "/v1/models lists targets" '"id":"up/fast"' "$out"
check "/health 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/health")"
check_match "/metrics is Prometheus text" '^# TYPE pipeline_requests_total counter' "$(curl -s "http://127.0.0.1:$DPORT/metrics")"
check "the checker refuses a sample without # TYPE" 1 "$(printf '# TYPE a counter\nb 2\n' | awk -f tests/integration/promcheck.awk >/dev/null; echo $?)"
check "/metrics passes the format checker" ok "$(curl -s "http://127.0.0.1:$DPORT/metrics" | awk -f tests/integration/promcheck.awk)"
check_match "/metrics has latency histograms" 'pipeline_request_duration_seconds_bucket\{target="up/fast",virtual_model="default",le="\+Inf"\} [1-9]' "$(curl -s "http://127.0.0.1:$DPORT/metrics")"
check_match "/metrics has breaker states" 'pipeline_breaker_state\{target="up/fast",virtual_model="default"\} 0' "$(curl -s "http://127.0.0.1:$DPORT/metrics")"

echo "client errors"
code=$(post '{"model": "default", "messages": [') ; check "malformed JSON 400" 400 "$code"
check_match "OpenAI error shape" '^\{"error":\{"message":".+","type":"invalid_request_error","code":"invalid_request"\}\}$' "$(body)"
code=$(post '{"messages":[{"role":"user","content":"x"}]}'); check "missing model 400" 400 "$code"
code=$(post '{"model":7,"messages":[{"role":"user","content":"x"}]}'); check "model not a string 400" 400 "$code"
code=$(post '{"model":"default","messages":"hi"}'); check "messages not an array 400" 400 "$code"
code=$(post '{"model":"default","messages":[]}'); check "empty messages 400" 400 "$code"
code=$(post '[1,2]'); check "top-level array 400" 400 "$code"
code=$(post "$(msg nosuchmodel)"); check "unknown model 404" 404 "$code"
check_match "unknown model names it" "nosuchmodel" "$(body)"
code=$(post "$(msg default)" -H 'X-Priority: high'); check "bad X-Priority 400" 400 "$code"
code=$(post "$(msg default)" -H 'X-Request-Timeout-Ms: -5'); check "bad X-Request-Timeout-Ms 400" 400 "$code"
big=$(printf '{"model":"default","messages":[{"role":"user","content":"%06000d"}]}' 0)
code=$(post "$big"); check "body over max_body_bytes 413" 413 "$code"
check_match "413 in OpenAI shape" '"type":"invalid_request_error"' "$(body)"
code=$(curl -s -o "$WORK/last.body" -w '%{http_code}' "http://127.0.0.1:$DPORT/v1/chat/completions")
check "GET on chat 405" 405 "$code"
code=$(curl -s -o "$WORK/last.body" -D "$WORK/last.head" -w '%{http_code}' "http://127.0.0.1:$DPORT/nope")
check "unknown path 404" 404 "$code"
check_match "404 in OpenAI shape" '^\{"error":' "$(body)"
check_match "404 has a generated X-Request-Id" '^req-[0-9a-f]{16}$' "$(header X-Request-Id)"
curl -s -o /dev/null -D "$WORK/last.head" -H 'X-Request-Id: lost-404' "http://127.0.0.1:$DPORT/nope"
check "404 keeps the client's X-Request-Id" lost-404 "$(header X-Request-Id)"
curl -s -o /dev/null -D "$WORK/last.head" -H 'X-Request-Id: get-405' "http://127.0.0.1:$DPORT/v1/chat/completions"
check "405 keeps it" get-405 "$(header X-Request-Id)"
curl -s -o /dev/null -D "$WORK/last.head" -H 'X-Request-Id: probe-1' "http://127.0.0.1:$DPORT/health"
check "/health keeps it" probe-1 "$(header X-Request-Id)"
curl -s -o /dev/null -D "$WORK/last.head" -H 'X-Request-Id: has space' "http://127.0.0.1:$DPORT/v1/models"
check_match "an invalid one is replaced" '^req-[0-9a-f]{16}$' "$(header X-Request-Id)"

echo "the HTTP layer"
raw() {  # raw BYTES: sends them on one connection, prints the answer
    exec 5<>"/dev/tcp/127.0.0.1/$DPORT"
    printf '%b' "$1" >&5
    timeout 5 cat <&5
    exec 5<&-
}
body='{"model":"default","messages":[{"role":"user","content":"hi"}]}'
code=$(curl -s -o "$WORK/last.body" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    --data-binary "$body" "http://127.0.0.1:$DPORT/v1/chat/completions")
check "chunked request body 200" 200 "$code"
code=$(post "$(msg default)" -H 'Expect: 100-continue'); check "Expect: 100-continue 200" 200 "$code"
out=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${#body}\r\n\r\n$body""GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check "pipelined requests answered in order" 2 "$(printf '%s' "$out" | grep -o 'HTTP/1.1 200' | wc -l)"
check_match "pipelined: completion first" '"chat.completion".*"status":"ok"' "$(printf '%s' "$out" | tr -d '\r\n')"
out=$(raw "GET /health HTTP/1.0\r\n\r\n")
check_match "HTTP/1.0 answered and closed" 'Connection: close' "$out"
out=$(curl -s -I "http://127.0.0.1:$DPORT/health")
check_match "HEAD has headers" 'Content-Length: [0-9]+' "$out"
out=$(raw "GET /$(head -c 9000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n")
check_match "long request line 414" '^HTTP/1.1 414' "$out"
check_match "414 in OpenAI shape" '"type":"invalid_request_error"' "$out"
check_match "414 has an X-Request-Id" 'X-Request-Id: req-[0-9a-f]{16}' "$out"
out=$(raw "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: $(head -c 40000 /dev/zero | tr '\0' b)\r\n\r\n")
check_match "oversized header 431" '^HTTP/1.1 431' "$out"
out=$(raw "BLAH\r\n\r\n")
check_match "garbage request line 400" '^HTTP/1.1 400' "$out"
check_match "400 from the HTTP layer has an X-Request-Id" 'X-Request-Id: req-[0-9a-f]{16}' "$out"
out=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: too-big-1\r\nContent-Length: 99999999999\r\n\r\n")
check_match "huge Content-Length 413 at once" '^HTTP/1.1 413' "$out"
check_match "413 from the HTTP layer keeps the X-Request-Id" 'X-Request-Id: too-big-1' "$out"
out=$(raw "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
check_match "negative Content-Length 400" '^HTTP/1.1 400' "$out"
n=$(curl -s -w '%{num_connects}\n' -o /dev/null "http://127.0.0.1:$DPORT/health" \
    -o /dev/null "http://127.0.0.1:$DPORT/health" | awk '{ s += $1 } END { print s }')
check "keep-alive reuses the connection" 1 "$n"

echo "upstream faults"
code=$(post "$(msg garbage)"); check "garbage answer 502" 502 "$code"
check "garbage retried" 3 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg wrongtype)"); check "wrong content type 502" 502 "$code"
code=$(post "$(msg truncated)"); check "truncated body 502" 502 "$code"
code=$(post "$(msg refused)"); check "connection refused 502" 502 "$code"
check_match "refused names the target" 'dead/x' "$(body)"
code=$(post "$(msg s500)"); check "upstream 500 -> 502" 502 "$code"
check "500 retried max_retries times" 3 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg s400)"); check "upstream 400 passed through" 400 "$code"
check "400 not retried" 1 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg s401)"); check "upstream 401 -> 502" 502 "$code"
check_match "401 blames the gateway's credentials" "credentials" "$(body)"
code=$(post "$(msg failover)"); check "failover to a live target 200" 200 "$code"
check "failover answered by up/fast" up/fast "$(header X-Pipeline-Target)"
check "failover took 2 attempts" 2 "$(header X-Pipeline-Attempts)"
code=$(post "$(msg cut "a b c d e" ',"stream":true')")
check "cut stream keeps its 200" 200 "$code"
check_match "cut stream ends with an error event" '^event: error' "$(grep -v '^$' "$WORK/last.body" | tail -2 | head -1)"
check_nomatch "cut stream has no [DONE]" 'data: \[DONE\]' "$(body)"
code=$(post "$(msg nodone "a b" ',"stream":true')")
check_match "stream without [DONE] reported" 'event: error' "$(body)"
code=$(post "$(msg multiline "a b" ',"stream":true')")
check "events written over two data: lines: 200" 200 "$code"
check "every line of the relayed stream is a data: line or blank" "" \
    "$(tr -d '\r' <"$WORK/last.body" | grep -v '^data: ' | grep -v '^$')"
check_match "and the stream ends with [DONE]" 'data: \[DONE\]' "$(body)"
code=$(post "$(msg slow)" -H 'X-Request-Timeout-Ms: 300'); check "deadline 504" 504 "$code"
start=$(date +%s)
code=$(post "$(msg stall)"); check "an idle upstream is abandoned: 502" 502 "$code"
check_match "idle abort says why" 'sent nothing for 2000 ms' "$(body)"
check "idle attempts retried" 3 "$(header X-Pipeline-Attempts)"
if [ $(( $(date +%s) - start )) -lt 15 ]; then ok "3 idle attempts of 2 s, not the 30 s deadline"
else fail "an idle upstream held the request $(( $(date +%s) - start )) s"; fi

echo "backpressure: a slow streaming client does not make the master buffer"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status"; }
before=$(rss)
b=$(msg big "x" ',"stream":true')
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' \
    "${#b}" "$b" >"$WORK/big.req"
# Long enough for the relay to fill the kernel's socket buffers first,
# even at valgrind's speed.
secs=3; [ -n "${VALGRIND:-}" ] && secs=15
got=$("$BIN/slow_client" "$DPORT" "$WORK/big.req" 20000 "$secs")
grown=$(( $(rss) - before ))
if [ "${got:-0}" -gt 10000 ]; then ok "the slow client got its stream (${got} bytes)"
else fail "the slow client got [${got}] bytes"; fi
if [ "$BIN" != bin ] || [ -n "${VALGRIND:-}" ]; then
    ok "master growth not measured under a checking allocator (${grown} KiB)"
elif [ "$grown" -lt 8192 ]; then ok "master grew ${grown} KiB for a 25 MiB stream read at 20 KB/s"
else fail "master grew ${grown} KiB: the slow client's stream was buffered"; fi
check_match "the upstream transfer was paused" 'upstream paused: the client is slow' "$(cat "$DLOG")"
active_zero() { [ "$(stats_field active)" = 0 ]; }
if wait_until 10 active_zero; then ok "the slow client's job ended when it left"; else fail "slow client's job still active"; fi
code=$(post "$(msg default)"); check "serving after the slow client" 200 "$code"

echo "retries, Retry-After, deadlines, a streaming client leaving"
code=$(post "$(msg flaky)"); check "two 503s then success: 200" 200 "$code"
check "after 3 attempts" 3 "$(header X-Pipeline-Attempts)"
start=$(date +%s%N)
code=$(post "$(msg limited)"); check "429 with Retry-After: 1, then 200" 200 "$code"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -ge 1000 ]; then ok "the retry waited for Retry-After (${ms} ms)"
else fail "the retry came after ${ms} ms, before Retry-After: 1"; fi
start=$(date +%s%N)
code=$(post "$(msg slow4)" -H 'X-Request-Timeout-Ms: 800'); check "800 ms deadline vs a 4 s upstream: 504" 504 "$code"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
# valgrind slows the daemon itself, not the rule being checked.
slack=1500; [ -n "${VALGRIND:-}" ] && slack=4000
if [ "$ms" -lt "$slack" ]; then ok "504 within about a second (${ms} ms)"; else fail "504 after ${ms} ms"; fi
curl -s -X POST "http://127.0.0.1:$UP_PORT/stats/reset" >/dev/null
curl -s -N -m 1 -o /dev/null --data-binary "$(msg dripstream "a b c d e f g h" ',"stream":true')" \
    "http://127.0.0.1:$DPORT/v1/chat/completions"
aborted() { curl -s "http://127.0.0.1:$UP_PORT/stats/aborted" | grep -q '"aborted":1'; }
within=1; [ -n "${VALGRIND:-}" ] && within=5
if wait_until "$within" aborted; then ok "a streaming client leaving closes the upstream call within a second"
else fail "the upstream still streams after its client left"; fi

echo "the request's log line and, at debug level, its stages"
code=$(post "$(msg flaky500)" -H 'X-Request-Id: tracked-1'); check "two 500s then success: 200" 200 "$code"
wait_until 10 grep -q 'req=tracked-1 model=' "$DLOG"
line=$(grep 'req=tracked-1 model=' "$DLOG")
check_match "one line: id, model, target, status, attempts, times" \
    'info pid=[0-9]+ req=tracked-1 model=flaky500 target=up/fail2-500 status=200 attempts=3 ms=[0-9.]+ first_byte_ms=[0-9.]+ prompt_tokens=[0-9]+ completion_tokens=[0-9]+ stages=' "$line"
check_match "every stage, in order" \
    'stages=received:0,queued:[0-9.]+,dispatched:[0-9.]+,attempt1:up/fail2-500@[0-9.]+->500@[0-9.]+,attempt2:up/fail2-500@[0-9.]+->500@[0-9.]+,attempt3:up/fail2-500@[0-9.]+->200@[0-9.]+,first_byte:[0-9.]+,done:[0-9.]+$' "$line"
times=$(printf '%s' "${line#*stages=}" | tr ',' '\n' | sed -E 's/^[a-z0-9_]+:([^@]*@)?([0-9.]+).*/\2/')
if printf '%s\n' "$times" | sort -g -c 2>/dev/null; then ok "stage times never go back ($(echo $times))"
else fail "stage times out of order: $(echo $times)"; fi
check "one line for the request" 1 "$(grep -c 'req=tracked-1 model=' "$DLOG")"

echo "client going away cancels its job"
curl -s -m 0.3 --data-binary "$(msg slow)" "http://127.0.0.1:$DPORT/v1/chat/completions" >/dev/null
if wait_until 10 active_zero; then ok "cancelled job released"; else fail "cancelled job still active"; fi

echo "a worker killed mid-request"
wpid=$("$BIN/pipelinectl" -s "$SOCK" --json workers | grep -o '"pid":[0-9]*' | head -1 | cut -d: -f2)
post "$(msg slow)" >"$WORK/killed.code" &
cpid=$!
busy() { "$BIN/pipelinectl" -s "$SOCK" --json workers | grep -q '"active":1'; }
wait_until 10 busy
owner=$("$BIN/pipelinectl" -s "$SOCK" --json workers | grep -o '"pid":[0-9]*,"slot":[0-9]*,"active":1' | grep -o '"pid":[0-9]*' | cut -d: -f2)
kill -KILL "${owner:-$wpid}"
wait "$cpid"
check "request survives its worker's death" 200 "$(cat "$WORK/killed.code")"
check "the dead worker's call is counted" 2 "$(header X-Pipeline-Attempts)"
two_workers() { [ "$("$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o '"count":[0-9]*' | cut -d: -f2)" = 2 ]; }
if wait_until 10 two_workers; then ok "dead worker replaced"; else fail "dead worker not replaced"; fi

echo "pipelinectl"
out=$("$BIN/pipelinectl" -s "$SOCK" stats); rc=$?
check "stats exit 0" 0 "$rc"
check_match "stats table shows the target" 'up/fast +default +closed' "$out"
out=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
check_match "stats JSON shape" '^\{"pid":[0-9]+,"uptime_s":[0-9]+,"workers":\{"count":2,"target":2,"pids":\[' "$out"
check_nomatch "no secret in stats" 'sk-upstream-secret' "$out"
"$BIN/pipelinectl" -s "$SOCK" frobnicate >/dev/null 2>&1; check "unknown command exit 1" 1 "$?"
"$BIN/pipelinectl" -s "$WORK/none.sock" stats >/dev/null 2>&1; check "no daemon exit 2" 2 "$?"
out=$("$BIN/pipelinectl" -s "$SOCK" --json scale 3); check "scale 3" '{"ok":true,"workers":3}' "$out"
three() { [ "$("$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o '"count":[0-9]*' | cut -d: -f2)" = 3 ]; }
if wait_until 10 three; then ok "scaled to 3"; else fail "not scaled to 3"; fi
out=$("$BIN/pipelinectl" -s "$SOCK" --json scale -2); check "scale -2" '{"ok":true,"workers":1}' "$out"
code=$(post "$(msg default)"); check "serves after scaling down" 200 "$code"
check "control socket mode 0600" 600 "$(stat -c %a "$SOCK")"

echo "still serving, then a graceful stop"
code=$(post "$(msg default)"); check "daemon alive after all of it" 200 "$code"
post "$(msg slow)" >"$WORK/drain.code" &
cpid=$!
busy1() { [ "$(stats_field active)" = 1 ]; }
wait_until 10 busy1
stop_daemon
wait "$cpid"
check "in-flight request finished during stop" 200 "$(cat "$WORK/drain.code")"
check "exit status 0 after SIGTERM" 0 "$DRC"
check "control socket removed" no "$(test -e "$SOCK" && echo yes || echo no)"
check_nomatch "no secret in the log" 'sk-upstream-secret' "$(cat "$DLOG")"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"

summary api
