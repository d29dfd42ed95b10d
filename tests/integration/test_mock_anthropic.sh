#!/usr/bin/env bash
# test_mock_anthropic.sh - the interface of tests/mock/mock_anthropic.c
# that the Anthropic provider tests rely on: header checks, body
# validation, every model mode plain and streamed (exact event
# sequences), Anthropic-shaped errors with request-id and retry-after,
# failN/flaky counters, slow and drip delays, a client leaving
# mid-drip, GET /v1/models and its failure switch, the request records
# (/_calls, /_last/*, /_reset), and a clean exit on SIGTERM (under
# VALGRIND when the run sets it).
# Prints "mock_anthropic: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

# Started by hand rather than with start_anthropic_mock so that the
# valgrind run checks the mock itself.
PF="$WORK/anth.port"
${VALGRIND:-} "$BIN/mock_anthropic" -q -k test-key -P "$PF" \
    >"$WORK/anth.out" 2>"$WORK/anth.err" &
MPID=$!
PIDS+=($MPID)
wait_until 60 test -s "$PF" || { echo "mock_anthropic did not start"; exit 1; }
B="http://127.0.0.1:$(cat "$PF")"
HDRS=(-H 'x-api-key: test-key' -H 'anthropic-version: 2023-06-01'
      -H 'content-type: application/json')

# msg BODY [CURL ARGS...]: POST /v1/messages with good headers; the body
# in $WORK/r.body, the head in $WORK/r.head, prints the status.
msg() {
    local body=$1
    shift
    curl -s -N -o "$WORK/r.body" -D "$WORK/r.head" -w '%{http_code}' \
        "${HDRS[@]}" "$@" -d "$body" "$B/v1/messages"
}
# ids replaced by N, so answers compare as text.
rbody() { sed -E 's/(msg|toolu|req)_mock_[0-9]+/\1_mock_N/g' "$WORK/r.body"; }
rhead() { tr -d '\r' <"$WORK/r.head" | grep -i "^$1:" | cut -d' ' -f2-; }
# body MODEL [STREAM] [EXTRA JSON MEMBERS]
body() {
    printf '{"model":"%s","max_tokens":%s,"stream":%s,%s"messages":[{"role":"user","content":"hello big world"}]}' \
        "$1" "${MAXTOK:-64}" "${2:-false}" "${3:-}"
}
TOOLS='"tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"metric":{"type":"boolean"}},"required":["city"]}}],'

echo "headers and validation"
code=$(curl -s -o "$WORK/r.body" -w '%{http_code}' -H 'anthropic-version: 2023-06-01' \
    -d "$(body text)" "$B/v1/messages")
check "no x-api-key 401" 401 "$code"
check_match "401 authentication_error" '^\{"type":"error","error":\{"type":"authentication_error","message":"[^"]+"\},"request_id":"req_mock_[0-9]+"\}$' "$(cat "$WORK/r.body")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: wrong' \
    -H 'anthropic-version: 2023-06-01' -d "$(body text)" "$B/v1/messages")
check "wrong x-api-key 401" 401 "$code"
code=$(curl -s -o "$WORK/r.body" -w '%{http_code}' -H 'x-api-key: test-key' \
    -d "$(body text)" "$B/v1/messages")
check "no anthropic-version 400" 400 "$code"
check_match "400 names the header" '"invalid_request_error","message":"anthropic-version' "$(cat "$WORK/r.body")"
check "not JSON 400" 400 "$(msg 'nope')"
check_match "400 invalid_request_error" '"type":"invalid_request_error"' "$(rbody)"
check "no model 400" 400 "$(msg '{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}')"
check_match "names model" '"message":"model:' "$(rbody)"
check "no max_tokens 400" 400 "$(msg '{"model":"text","messages":[{"role":"user","content":"x"}]}')"
check "max_tokens 0 400" 400 "$(msg '{"model":"text","max_tokens":0,"messages":[{"role":"user","content":"x"}]}')"
check "empty messages 400" 400 "$(msg '{"model":"text","max_tokens":5,"messages":[]}')"
check "GET /v1/messages 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' "${HDRS[@]}" "$B/v1/messages")"

echo "plain answers"
check "text 200" 200 "$(msg "$(body text)")"
check "text answer" '{"id":"msg_mock_N","type":"message","role":"assistant","model":"text","content":[{"type":"text","text":"echo: hello big world"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4}}' "$(rbody)"
check "content-type json" application/json "$(rhead Content-Type)"
check_match "request-id header" '^req_mock_[0-9]+$' "$(rhead request-id)"
check "any other model answers text" 200 "$(msg "$(body claude-3-5-sonnet)")"
check_match "model as sent" '"model":"claude-3-5-sonnet","content":\[\{"type":"text","text":"echo: hello big world"\}\]' "$(rbody)"
check "block content and system" 200 "$(msg '{"model":"text","max_tokens":9,"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":[{"type":"text","text":"one"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}},{"type":"text","text":"two"}]}]}')"
check_match "text blocks joined, system counted" '"text":"echo: one two"\}\],"stop_reason":"end_turn","stop_sequence":null,"usage":\{"input_tokens":4,"output_tokens":3\}' "$(rbody)"
check "tools 200" 200 "$(msg "$(body tools false "$TOOLS")")"
check "tool_use answer" '{"id":"msg_mock_N","type":"message","role":"assistant","model":"tools","content":[{"type":"tool_use","id":"toolu_mock_N","name":"get_weather","input":{"city":"hello big world","days":1,"metric":true}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":10}}' "$(rbody)"
TURN2='{"model":"tools","max_tokens":64,'"$TOOLS"'"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny 20C"}]}]}]}'
check "tool result turn 200" 200 "$(msg "$TURN2")"
check_match "answers with the tool result" '"content":\[\{"type":"text","text":"tool result: sunny 20C"\}\],"stop_reason":"end_turn"' "$(rbody)"
check "tools without tools: text" 200 "$(msg "$(body tools)")"
check_match "text, end_turn" '"text":"echo: hello big world"\}\],"stop_reason":"end_turn"' "$(rbody)"
check "text-tools 200" 200 "$(msg "$(body text-tools false "$TOOLS")")"
check_match "text then tool_use" '"content":\[\{"type":"text","text":"echo: hello big world"\},\{"type":"tool_use","id":"toolu_mock_N","name":"get_weather","input":\{.*\}\}\],"stop_reason":"tool_use","stop_sequence":null,"usage":\{"input_tokens":3,"output_tokens":14\}' "$(rbody)"
check "max 200" 200 "$(msg "$(MAXTOK=2 body max)")"
check_match "max: truncated, max_tokens" '"text":"echo: hello"\}\],"stop_reason":"max_tokens","stop_sequence":null,"usage":\{"input_tokens":3,"output_tokens":2\}' "$(rbody)"
check "stopseq 200" 200 "$(msg "$(body stopseq false '"stop_sequences":["STOP","END"],')")"
check_match "stop_sequence" '"stop_reason":"stop_sequence","stop_sequence":"STOP"' "$(rbody)"
check "stopseq without sequences" 200 "$(msg "$(body stopseq)")"
check_match "end_turn, null" '"stop_reason":"end_turn","stop_sequence":null' "$(rbody)"

echo "errors"
check "overloaded 529" 529 "$(msg "$(body overloaded)")"
check "529 body" '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_mock_N"}' "$(rbody)"
check "529 retry-after" 1 "$(rhead retry-after)"
check "ratelimit 429" 429 "$(msg "$(body ratelimit true)")"
check_match "rate_limit_error" '"error":\{"type":"rate_limit_error"' "$(rbody)"
check "429 retry-after" 1 "$(rhead retry-after)"
check "err500 500" 500 "$(msg "$(body err500)")"
check_match "api_error" '"error":\{"type":"api_error"' "$(rbody)"
check "500 no retry-after" "" "$(rhead retry-after)"
check "notfound 404" 404 "$(msg "$(body notfound)")"
check_match "not_found_error" '"error":\{"type":"not_found_error"' "$(rbody)"
check "status-403" 403 "$(msg "$(body status-403)")"
check_match "permission_error" '"error":\{"type":"permission_error"' "$(rbody)"
check "status-413" 413 "$(msg "$(body status-413)")"
check_match "request_too_large" '"error":\{"type":"request_too_large"' "$(rbody)"
check "garbage 200" 200 "$(msg "$(body garbage true)")"
check "garbage body" "this is not json {{{" "$(rbody)"
code=$(msg "$(body cut)"); rc=$?
check "plain cut: curl sees a short body (18)" "200 18" "$code $rc"
check "flaky-2 #1" 529 "$(msg "$(body flaky-2)")"
check "flaky-2 #2" 529 "$(msg "$(body flaky-2)")"
check "flaky-2 #3 answers" 200 "$(msg "$(body flaky-2)")"
check "fail1-429 #1" 429 "$(msg "$(body fail1-429)")"
check "fail1-429 retry-after" 1 "$(rhead retry-after)"
check "fail1-429 #2" 200 "$(msg "$(body fail1-429)")"

echo "streams"
check "text stream 200" 200 "$(msg "$(body text true)")"
check "stream content-type" text/event-stream "$(rhead Content-Type)"
cat >"$WORK/exp" <<'EOF'
event: message_start
data: {"type":"message_start","message":{"id":"msg_mock_N","type":"message","role":"assistant","model":"text","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"echo: "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"big "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"world"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}}

event: message_stop
data: {"type":"message_stop"}

EOF
check "text stream, exact events" "$(cat "$WORK/exp")" "$(rbody)"
cp "$WORK/exp" "$WORK/exp.text"

check "tools stream 200" 200 "$(msg "$(body tools true "$TOOLS")")"
cat >"$WORK/exp" <<'EOF'
event: message_start
data: {"type":"message_start","message":{"id":"msg_mock_N","type":"message","role":"assistant","model":"tools","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_mock_N","name":"get_weather","input":{}}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"hello b"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"ig world"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\",\"days\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":":1,\"metr"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"ic\":true"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":10}}

event: message_stop
data: {"type":"message_stop"}

EOF
check "tools stream, exact events" "$(cat "$WORK/exp")" "$(rbody)"
pj=$(sed -n 's/.*"partial_json":"\(.*\)"}}$/\1/p' "$WORK/r.body" | tr -d '\n' | sed 's/\\"/"/g')
check "partial_json pieces join to the input" '{"city":"hello big world","days":1,"metric":true}' "$pj"

check "text-tools stream 200" 200 "$(msg "$(body text-tools true "$TOOLS")")"
seq=$(grep '^data: ' "$WORK/r.body" | sed -E 's/^data: \{"type":"([a-z_]+)"(,"index":([0-9]+))?.*/\1\3/' | tr '\n' ' ')
check "text-tools: two blocks, indexes 0 and 1" "message_start content_block_start0 ping content_block_delta0 content_block_delta0 content_block_delta0 content_block_delta0 content_block_stop0 content_block_start1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_delta1 content_block_stop1 message_delta message_stop " "$seq"
check_match "text-tools: tool_use stop, usage" '"stop_reason":"tool_use","stop_sequence":null\},"usage":\{"output_tokens":14\}' "$(rbody)"
check "max stream 200" 200 "$(msg "$(MAXTOK=2 body max true)")"
check_match "max stream: two deltas then max_tokens" '"text":"hello"\}\}

event: content_block_stop
data: \{"type":"content_block_stop","index":0\}

event: message_delta
data: \{"type":"message_delta","delta":\{"stop_reason":"max_tokens","stop_sequence":null\},"usage":\{"output_tokens":2\}\}' "$(rbody)"
check "stopseq stream 200" 200 "$(msg "$(body stopseq true '"stop_sequences":["STOP"],')")"
check_match "stream stop_sequence" '"delta":\{"stop_reason":"stop_sequence","stop_sequence":"STOP"\}' "$(rbody)"
check "two-turn stream 200" 200 "$(msg "${TURN2/\"max_tokens\"/\"stream\":true,\"max_tokens\"}")"
check_match "stream answers the tool result" '"text":"result: "\}\}' "$(rbody)"

code=$(msg "$(body stream-error true)"); rc=$?
check "stream-error: 200, clean end" "200 0" "$code $rc"
cat >"$WORK/exp" <<'EOF'
event: message_start
data: {"type":"message_start","message":{"id":"msg_mock_N","type":"message","role":"assistant","model":"stream-error","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"echo: "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello "}}

event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

EOF
check "stream-error, exact events" "$(cat "$WORK/exp")" "$(rbody)"
check "stream-error plain: 529" 529 "$(msg "$(body stream-error)")"
code=$(msg "$(body cut true)"); rc=$?
check "stream cut: curl sees the cut (18)" "200 18" "$code $rc"
head -n 15 "$WORK/exp" >"$WORK/exp.cut"
sed -i 's/"model":"stream-error"/"model":"cut"/' "$WORK/exp.cut"
check "stream cut, events before the cut" "$(cat "$WORK/exp.cut")" "$(rbody)"
check_nomatch "stream cut: no message_stop" 'message_stop|content_block_stop|message_delta' "$(rbody)"
check "garbage stream" "this is not json {{{" "$(msg "$(body garbage true)" >/dev/null; rbody)"

echo "delays"
t0=$(date +%s%N)
check "slow-300 200" 200 "$(msg "$(body slow-300)")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "slow-300 took >= 300 ms" 1 "$(( ms >= 300 ))"
check_match "slow answers text" '"text":"echo: hello big world"' "$(rbody)"
t0=$(date +%s%N)
check "drip-40 stream 200" 200 "$(msg "$(body drip-40 true)")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# 9 events after message_start, 40 ms before each.
check "drip-40 took >= 360 ms" 1 "$(( ms >= 360 ))"
check "drip: same events as text" \
    "$(sed 's/"model":"text"/"model":"drip-40"/' "$WORK/exp.text")" "$(rbody)"
check "drip stream ends with message_stop" 'data: {"type":"message_stop"}' "$(grep '^data' "$WORK/r.body" | tail -1)"
check "drip-50 plain 200" 200 "$(msg "$(body drip-50)")"
check_match "drip plain answers text" '"stop_reason":"end_turn"' "$(rbody)"
# A client that leaves mid-drip: the mock drops the job and keeps serving.
code=$(msg "$(body drip-400 true)" --max-time 1); rc=$?
check "client leaves mid-drip (curl 28)" 28 "$rc"
check_match "it got message_start first" '^event: message_start' "$(rbody)"
check "still serving" 200 "$(msg "$(body text)")"

echo "models, records, control"
code=$(curl -s -o "$WORK/r.body" -w '%{http_code}' "$B/v1/models")
check "models 200" 200 "$code"
check "models list" '{"data":[{"type":"model","id":"claude-mock-1","display_name":"Claude Mock 1","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-mock-1","last_id":"claude-mock-1"}' "$(rbody)"
check "models=fail" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/_control?models=fail")"
code=$(curl -s -o "$WORK/r.body" -w '%{http_code}' "$B/v1/models")
check "models now 500" 500 "$code"
check_match "models api_error" '"error":\{"type":"api_error"' "$(rbody)"
check "models=ok" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/_control?models=ok")"
check "models 200 again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$B/v1/models")"
check "bad control 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/_control?models=maybe")"

check "reset" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/_reset")"
check "no record after reset" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$B/_last/body")"
SENT='{"model":"text","max_tokens":7,"metadata":{"user_id":"u/1"},"messages":[{"role":"user","content":"caf\u00e9 \"q\""}]}'
check "recorded request 200" 200 "$(msg "$SENT" -H 'X-Extra: 1')"
check "last body exactly as sent" "$SENT" "$(curl -s "$B/_last/body")"
lh=$(curl -s "$B/_last/headers")
check_match "x-api-key recorded" '^x-api-key: test-key$' "$lh"
check_match "anthropic-version recorded" '^anthropic-version: 2023-06-01$' "$lh"
check_match "other headers recorded" '^X-Extra: 1$' "$lh"
curl -s "$B/v1/models" >/dev/null
calls=$(curl -s "$B/_calls")
check_match "calls: count and order" '^\{"count":2,"records":\[\{"method":"POST","uri":"/v1/messages","headers":\{.*"x-api-key":"test-key","anthropic-version":"2023-06-01".*\},"body":"\{\\"model\\":\\"text\\",\\"max_tokens\\":7.*\},\{"method":"GET","uri":"/v1/models",' "$calls"
check "flaky counters reset" 529 "$(msg "$(body flaky-1)")"
code=$(curl -s -o "$WORK/r.body" -w '%{http_code}' "$B/nope")
check "unknown path 404" 404 "$code"
check_match "404 not_found_error" '"error":\{"type":"not_found_error"' "$(rbody)"

echo "exit"
# An answer still pending at shutdown is dropped without leaking.
curl -s -N -o /dev/null "${HDRS[@]}" -d "$(body drip-5000 true)" \
    "$B/v1/messages" &
CPID=$!
PIDS+=($CPID)
wait_until 20 sh -c "curl -s '$B/_calls' | grep -q '\"count\":4,'"
check "drip pending at shutdown" 0 "$?"
kill -TERM "$MPID"
wait "$MPID"; check "SIGTERM: exit 0, nothing leaked" 0 "$?"
wait "$CPID"; check "its client sees the connection close (18)" 18 "$?"

summary "mock_anthropic"
