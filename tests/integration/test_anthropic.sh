#!/usr/bin/env bash
# test_anthropic.sh - the Anthropic Messages door (POST /v1/messages,
# /v1/messages/count_tokens) and the anthropic provider kind, against
# the C mocks: both doors x both provider kinds, plain and streamed,
# tool use over two turns, errors in each door's shape (404, 400, 401,
# a 529 retried then served, a stream cut mid-way ending in an error
# event; the HTTP server's own refusals 413, 431, 414, 400, 408 and a
# 404 under /v1/messages/), count_tokens, the headers, the model named
# as requested, anthropic-beta forwarded, and what the Anthropic mock
# received. Then the official @anthropic-ai/sdk (npm) against the
# daemon (skipped with a message when npm is absent). Prints
# "anthropic: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
start_anthropic_mock AN
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
max_body_bytes = 65536;
clients = { api_keys = ( "sk-client" ); max_request_line = 1024;
            max_header_bytes = 8192; body_timeout_ms = 1000; };
retry = { max_retries = 2; base_delay_ms = 5; max_delay_ms = 20; jitter = "none"; };
providers = (
  { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "sk-up"; },
  { name = "an"; type = "anthropic"; base_url = "http://127.0.0.1:$AN_PORT/v1"; api_key = "sk-ant-mock"; },
  { name = "local"; type = "mock"; },
  { name = "badkey"; type = "anthropic"; base_url = "http://127.0.0.1:$AN_PORT/v1"; api_key = "sk-wrong"; }
);
virtual_models = (
  { name = "mock"; targets = ( { provider = "local"; model = "m"; } ); },
  { name = "oa"; targets = ( { provider = "up"; model = "echo"; } ); },
  { name = "oa-cut"; targets = ( { provider = "up"; model = "stream-cut"; } ); },
  { name = "oa-drip"; targets = ( { provider = "up"; model = "drip-150"; } ); },
  { name = "oa-s400"; targets = ( { provider = "up"; model = "status-400"; } ); },
  { name = "claude"; targets = ( { provider = "an"; model = "text"; } ); },
  { name = "claude-tools"; targets = ( { provider = "an"; model = "tools"; } ); },
  { name = "claude-flaky"; targets = ( { provider = "an"; model = "flaky-2"; } ); },
  { name = "claude-cut"; targets = ( { provider = "an"; model = "cut"; } ); },
  { name = "claude-badkey"; targets = ( { provider = "badkey"; model = "text"; } ); },
  { name = "claude-404"; targets = ( { provider = "an"; model = "notfound"; } ); }
);
CONF
chmod 600 "$CONF"
start_daemon "$CONF"

AUTH=(-H 'x-api-key: sk-client' -H 'anthropic-version: 2023-06-01')
# amsg PATH BODY [curl args]: POST to the daemon; status printed, head
# and body in $WORK/last.*
apost() {
    local path=$1 body=$2; shift 2
    curl -s -o "$WORK/last.body" -D "$WORK/last.head" -w '%{http_code}' \
        -H 'Content-Type: application/json' "$@" --data-binary "$body" \
        "http://127.0.0.1:$DPORT$path"
}
mbody() {  # mbody MODEL [EXTRA]: a Messages body
    printf '{"model":"%s","max_tokens":64,"messages":[{"role":"user","content":"hello there"}]%s}' "$1" "${2:-}"
}
an_last() { curl -s "http://127.0.0.1:$AN_PORT/_last/$1"; }

echo "Anthropic door -> OpenAI-format target"
st=$(apost /v1/messages "$(mbody oa)" "${AUTH[@]}")
check "plain: 200" 200 "$st"
check_match "plain: a message" '"type":"message","role":"assistant","model":"oa","content":\[\{"type":"text","text":"echo: hello there"\}\],"stop_reason":"end_turn"' "$(body)"
check_match "plain: usage" '"usage":\{"input_tokens":[0-9]+,"output_tokens":[0-9]+\}' "$(body)"
check "plain: request-id = X-Request-Id" "$(header X-Request-Id)" "$(header request-id)"
check "plain: X-Pipeline-Target" "up/echo" "$(header X-Pipeline-Target)"
check "plain: X-Pipeline-Attempts" "1" "$(header X-Pipeline-Attempts)"
st=$(apost /v1/messages "$(mbody oa ',"stream":true')" "${AUTH[@]}" -H 'X-Request-Id: anth-stream-1')
check "stream: 200" 200 "$st"
ev=$(grep '^event:' "$WORK/last.body" | cut -d' ' -f2 | tr '\n' ' ')
check "stream: the event sequence" "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop " "$ev"
check "stream: X-Request-Id kept" "anth-stream-1" "$(header request-id)"
check_match "stream: the message id" '"id":"msg_anth-stream-1"' "$(body)"
st=$(apost /v1/messages "$(mbody oa-cut ',"stream":true')" "${AUTH[@]}")
check "cut stream: 200 then" 200 "$st"
check_match "cut stream: ends in an api_error event" 'event: error
data: \{"type":"error","error":\{"type":"api_error"' "$(body)"
check_nomatch "cut stream: no message_stop" 'message_stop' "$(body)"
st=$(apost /v1/messages "$(mbody oa-drip ',"stream":true')" "${AUTH[@]}" -H 'X-Request-Timeout-Ms: 400')
check_match "deadline mid-stream: an api_error event" 'event: error
data: \{"type":"error","error":\{"type":"api_error","message":"request timed out"' "$(body)"
check_match "deadline mid-stream: after the first events" 'content_block_delta' "$(body)"
st=$(apost /v1/messages "$(mbody oa-s400)" "${AUTH[@]}")
check "upstream 400: 400" 400 "$st"
check_match "upstream 400: Anthropic's shape" '^\{"type":"error","error":\{"type":"invalid_request_error","message":' "$(body)"
# Tool use over two turns: the tool_result reaches the target as a
# tool message with the same id.
tb='{"model":"oa","max_tokens":64,"tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}'
st=$(apost /v1/messages "$tb" "${AUTH[@]}")
check "tool turn 2 via OpenAI target: 200" 200 "$st"
check_match "tool turn 2: the result reached it as a tool message" '"text":"echo: sunny"' "$(body)"

st=$(apost /v1/messages "$(mbody mock)" "${AUTH[@]}")
check_match "the built-in mock: a message" '"type":"message".*"text":"This is a mock answer from m to: hello there"' "$(body)"
st=$(apost /v1/messages "$(mbody mock ',"stream":true')" "${AUTH[@]}")
check "the built-in mock streamed: ends in message_stop" "message_stop" "$(grep '^event:' "$WORK/last.body" | tail -1 | cut -d' ' -f2)"

echo "refusals in Anthropic's shape"
st=$(apost /v1/messages "$(mbody nope)" "${AUTH[@]}")
check "unknown model: 404" 404 "$st"
check_match "404 not_found_error" '"type":"error","error":\{"type":"not_found_error"' "$(body)"
st=$(apost /v1/messages '{"model":"oa","messages":[]}' "${AUTH[@]}")
check "bad body: 400" 400 "$st"
check_match "400 invalid_request_error" '"error":\{"type":"invalid_request_error"' "$(body)"
st=$(apost /v1/messages "$(mbody oa)" -H 'x-api-key: wrong')
check "bad client key: 401" 401 "$st"
check_match "401 authentication_error" '"error":\{"type":"authentication_error"' "$(body)"
st=$(apost /v1/messages "$(mbody oa)" -H 'Authorization: Bearer sk-client')
check "Authorization: Bearer works too" 200 "$st"
st=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "http://127.0.0.1:$DPORT/v1/messages")
check "GET /v1/messages: 405" 405 "$st"
st=$(apost /v1/messages "$(mbody oa)" "${AUTH[@]}" -H 'X-Priority: lots')
check "bad X-Priority: 400" 400 "$st"

echo "the HTTP server's own refusals, in the shape of the path's door"
AERR='"type":"error","error":\{"type":"invalid_request_error","message":'
OERR='^\{"error":\{"message":'
# raw REQUEST: sent as it is on a new connection; the answer (head and
# body) in $out. The server closes after each of these refusals.
raw() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
    printf '%b' "$1" >&"$fd" 2>/dev/null
    out=$(timeout 5 cat <&"$fd")
    exec {fd}>&-
}
big=$(head -c 70000 /dev/zero | tr '\0' a)
st=$(apost /v1/messages "$big" "${AUTH[@]}")
check "over max_body_bytes: 413" 413 "$st"
check_match "413 invalid_request_error" "^\{$AERR" "$(body)"
st=$(apost /v1/chat/completions "$big" -H 'Authorization: Bearer sk-client')
check_match "413 on the OpenAI door: OpenAI's shape" "$OERR" "$(body)"
st=$(apost /v1/messages "$(mbody oa)" "${AUTH[@]}" -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' b)")
check "head over max_header_bytes: 431" 431 "$st"
check_match "431 invalid_request_error" "^\{$AERR" "$(body)"
st=$(apost "/v1/messages?q=$(head -c 1100 /dev/zero | tr '\0' c)" "$(mbody oa)" "${AUTH[@]}")
check "request line over max_request_line: 414" 414 "$st"
check_match "414 invalid_request_error" "^\{$AERR" "$(body)"
raw 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'
check_match "malformed head: 400" '^HTTP/1.1 400' "$out"
check_match "400 invalid_request_error" "$AERR" "$out"
raw 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"'
check_match "body not in time: 408" '^HTTP/1.1 408' "$out"
check_match "408 invalid_request_error" "$AERR" "$out"
raw 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"'
check_match "408 on the OpenAI door: OpenAI's shape" '\{"error":\{"message":' "$out"
st=$(apost /v1/messages/nope "$(mbody oa)" "${AUTH[@]}")
check "unknown path under /v1/messages/: 404" 404 "$st"
check_match "404 not_found_error" '^\{"type":"error","error":\{"type":"not_found_error"' "$(body)"
check "404 has request-id" "$(header X-Request-Id)" "$(header request-id)"
st=$(apost /v1/messagesx "$(mbody oa)" "${AUTH[@]}")
check_match "404 elsewhere: OpenAI's shape" "$OERR" "$(body)"
st=$(curl -s -o "$WORK/last.body" -w '%{http_code}' "${AUTH[@]}" "http://127.0.0.1:$DPORT/v1/messages")
check_match "405 invalid_request_error" "^\{$AERR" "$(body)"
st=$(apost /v1/messages "$(mbody oa)" -H 'x-api-key: sk-client' -H 'anthropic-beta: a;b')
check "a malformed anthropic-beta: 400" 400 "$st"
check_match "400 invalid_request_error" "^\{$AERR" "$(body)"

echo "count_tokens"
st=$(apost /v1/messages/count_tokens '{"model":"claude","messages":[{"role":"user","content":"hello there, how are you"}]}' "${AUTH[@]}")
check "count_tokens: 200" 200 "$st"
check_match "count_tokens: input_tokens" '^\{"input_tokens":[1-9][0-9]*\}$' "$(body)"
st=$(apost /v1/messages/count_tokens '{"model":"nope","messages":[{"role":"user","content":"x"}]}' "${AUTH[@]}")
check "count_tokens unknown model: 404" 404 "$st"

echo "Anthropic door -> anthropic provider"
st=$(apost /v1/messages "$(mbody claude)" "${AUTH[@]}")
check "plain: 200" 200 "$st"
check_match "plain: the mock's message" '"type":"message".*"text":"echo: hello there"' "$(body)"
check_match "the mock got the target's model" '"model":"text"' "$(an_last body)"
check_nomatch "no double translation (no OpenAI fields)" 'stream_options|"role":"system"|max_completion_tokens' "$(an_last body)"
check_match "plain: the model as requested" '"model":"claude"' "$(body)"
check_nomatch "plain: not the upstream's" '"model":"text"' "$(body)"
hd=$(an_last headers)
check_match "signed with x-api-key" 'x-api-key: sk-ant-mock' "$hd"
check_match "and anthropic-version" 'anthropic-version: 2023-06-01' "$hd"
check_nomatch "no anthropic-beta when the client sent none" 'anthropic-beta' "$hd"
st=$(apost /v1/messages "$(mbody an/text)" -H 'Authorization: Bearer sk-client' \
     -H 'anthropic-version: 2023-06-01' -H 'anthropic-beta: tools-2024-04-04' \
     -H 'anthropic-beta: prompt-caching-2024-07-31' -H 'Anthropic-Dangerous-Direct-Browser-Access: true')
check "provider/model: 200" 200 "$st"
check_match "provider/model: named as requested" '"model":"an/text"' "$(body)"
hd=$(an_last headers)
check_match "anthropic-beta forwarded (both)" '^anthropic-beta: tools-2024-04-04,prompt-caching-2024-07-31.?$' "$(grep -i '^anthropic-beta:' <<<"$hd")"
check "the client's key is not forwarded" "x-api-key: sk-ant-mock" "$(grep -i '^x-api-key:' <<<"$hd" | tr -d '\r')"
check_nomatch "nor its Authorization, nor other headers" 'sk-client|^authorization|dangerous' "$(tr 'A-Z' 'a-z' <<<"$hd")"
st=$(apost /v1/messages "$(mbody claude ',"stream":true')" "${AUTH[@]}" -H 'anthropic-beta: x-1')
check "stream: 200" 200 "$st"
check_match "stream: message_start names the model as requested" '^data: \{"type":"message_start","message":\{.*"model":"claude"' "$(grep -A1 '^event: message_start' "$WORK/last.body" | tail -1)"
check_nomatch "stream: the upstream's name nowhere" '"model":"text"' "$(body)"
check_match "stream: anthropic-beta forwarded" 'anthropic-beta: x-1' "$(an_last headers)"
ev=$(grep '^event:' "$WORK/last.body" | cut -d' ' -f2 | sort -u | tr '\n' ' ')
check "stream: relayed event by event" "content_block_delta content_block_start content_block_stop message_delta message_start message_stop ping " "$ev"
tb1='{"model":"claude-tools","max_tokens":64,"tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"messages":[{"role":"user","content":"Paris"}]}'
st=$(apost /v1/messages "$tb1" "${AUTH[@]}")
check_match "tool use turn 1: tool_use" '"type":"tool_use","id":"toolu_mock_[0-9]+","name":"get_weather","input":\{"city":"Paris"\}.*"stop_reason":"tool_use"' "$(body)"
tb2='{"model":"claude-tools","max_tokens":64,"tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"messages":[{"role":"user","content":"Paris"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_x","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_x","content":"sunny"}]}]}'
st=$(apost /v1/messages "$tb2" "${AUTH[@]}")
check_match "tool use turn 2: the answer" '"text":"tool result: sunny"' "$(body)"
curl -s -X POST "http://127.0.0.1:$AN_PORT/_reset" >/dev/null
st=$(apost /v1/messages "$(mbody claude-flaky)" "${AUTH[@]}")
check "529 twice then served: 200" 200 "$st"
check "after 3 attempts" 3 "$(header X-Pipeline-Attempts)"
st=$(apost /v1/messages "$(mbody claude-404)" "${AUTH[@]}")
check "upstream 404: 404" 404 "$st"
check_match "upstream 404: not_found_error" '"type":"not_found_error"' "$(body)"
st=$(apost /v1/messages "$(mbody claude-badkey)" "${AUTH[@]}")
check "upstream refuses our key: 502" 502 "$st"
check_match "502 api_error" '"type":"api_error"' "$(body)"
check_nomatch "the key is not in the answer" 'sk-wrong' "$(body)"
st=$(apost /v1/messages "$(mbody claude-cut ',"stream":true')" "${AUTH[@]}")
check_match "cut stream: ends in an api_error event" 'event: error
data: \{"type":"error","error":\{"type":"api_error"' "$(body)"
check_nomatch "cut stream: no message_stop" 'message_stop' "$(body)"

echo "OpenAI door -> anthropic provider"
oa() { printf '{"model":"%s","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]%s}' "$1" "${2:-}"; }
st=$(post "$(oa claude)" -H 'Authorization: Bearer sk-client' -H 'anthropic-beta: x-1')
check "plain: 200" 200 "$st"
check_nomatch "no anthropic-beta from the OpenAI door" 'anthropic-beta' "$(an_last headers)"
check_match "plain: a chat completion" '"object":"chat.completion".*"content":"echo: hello there".*"finish_reason":"stop"' "$(body)"
ab=$(an_last body)
check_match "translated: system gathered" '"system":"be brief"' "$ab"
check_match "translated: a default max_tokens" '"max_tokens":4096' "$ab"
st=$(post "$(oa claude ',"stream":true')" -H 'Authorization: Bearer sk-client')
check "stream: 200" 200 "$st"
check_match "stream: chunks" '"object":"chat.completion.chunk"' "$(body)"
check "stream: ends in data: [DONE]" "data: [DONE]" "$(grep -v '^$' "$WORK/last.body" | tail -1)"
curl -s -X POST "http://127.0.0.1:$AN_PORT/_reset" >/dev/null
st=$(post "$(oa claude-flaky)" -H 'Authorization: Bearer sk-client')
check "529 retried: 200" 200 "$st"
st=$(post "$(oa claude-404)" -H 'Authorization: Bearer sk-client')
check "upstream 404: 404" 404 "$st"
check_match "upstream 404: OpenAI's shape" '^\{"error":\{"message":' "$(body)"
st=$(post "$(oa claude-tools)" -H 'Authorization: Bearer sk-client')
check_match "tool use: tool_calls" '"tool_calls":\[\{.*"name":"get_weather"|"finish_reason":"stop"' "$(body)"
st=$(post "$(oa claude-cut ',"stream":true')" -H 'Authorization: Bearer sk-client')
check_match "cut stream: an error event" 'event: error' "$(body)"
check_nomatch "cut stream: no [DONE]" '\[DONE\]' "$(body)"

echo "the official SDK (@anthropic-ai/sdk)"
SDK_VERSION=1.17.0
SDK_DIR=$(npm_package @anthropic-ai/sdk "$SDK_VERSION" 2>"$WORK/npm.err"); rc=$?
if [ $rc -eq 2 ]; then
    echo "  SKIP the SDK checks: npm (or node) is not installed"
elif [ $rc -ne 0 ]; then
    fail "npm install @anthropic-ai/sdk: $(cat "$WORK/npm.err")"
else
    run_node_checks anthropic_sdk.mjs "$SDK_DIR" \
        ANTHROPIC_BASE_URL="http://127.0.0.1:$DPORT" ANTHROPIC_API_KEY=sk-client
fi

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
summary anthropic
