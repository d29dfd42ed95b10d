#!/usr/bin/env bash
# test_capture.sh - request capture: off by default, one request captured
# with X-Pipeline-Capture: 1, every request after `pipelinectl capture
# on`, none after `off`; the file DIR/REQUEST_ID.json (mode 0600) holds
# the request, each attempt (target, offsets, the body sent upstream,
# status, headers, answer; a stream's events; a retry's two attempts)
# and what the client got; bodies over max_body_bytes are cut and marked
# truncated; beyond max_files the oldest files go; an unwritable
# directory is logged once and requests still answer 200; neither the
# client's key nor the provider's appears in a capture or the log.
# Prints "capture: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

CLIENT_KEY="sk-client-capture-1f2e3d4c"
NAMED_KEY="sk-named-capture-5e6f7a8b"
PROVIDER_KEY="sk-provider-capture-9a8b7c6d"
start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
CAP="$WORK/captures/new"            # made by the daemon
write_conf() {  # write_conf CAPTURE_DIR
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 1;
retry = { max_retries = 2; base_delay_ms = 5; max_delay_ms = 20; jitter = "none"; };
clients = { api_keys = ( "$CLIENT_KEY", { key = "$NAMED_KEY"; name = "team-cap"; } ); };
capture = { dir = "$1"; max_body_bytes = 2048; max_files = 6; enabled = false; };
providers = (
  { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "$PROVIDER_KEY"; }
);
virtual_models = (
  { name = "echo"; targets = ( { provider = "up"; model = "echo"; } ); },
  { name = "auth"; targets = ( { provider = "up"; model = "echo-auth"; } ); },
  { name = "flaky"; targets = ( { provider = "up"; model = "fail1-500"; } ); }
);
CONF
chmod 600 "$CONF"
}
write_conf "$CAP"
start_daemon "$CONF"

AUTH=(-H "Authorization: Bearer $CLIENT_KEY")
ctl() { "$BIN/pipelinectl" -s "$SOCK" --json "$@"; }
capfile() { echo "$CAP/$1.json"; }
have() { test -s "$(capfile "$1")"; }
# field ID PYTHON-EXPR: evaluates EXPR on the capture of ID (as d)
field() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$(capfile "$1")" "$2" 2>&1
}

echo "off by default; the header captures one request"
check_match "stats: capture false" '"capture":false' "$(ctl stats)"
check "a request, not captured" 200 "$(post "$(msg echo)" "${AUTH[@]}" -H 'X-Request-Id: cap-none-1')"
check "a request asking for its capture" 200 \
    "$(post "$(msg echo 'hello capture')" "${AUTH[@]}" -H 'X-Request-Id: cap-hdr-1' -H 'X-Pipeline-Capture: 1')"
if wait_until 10 have cap-hdr-1; then ok "its file is written"; else fail "no $(capfile cap-hdr-1)"; fi
check "the other one has none" no "$(test -e "$(capfile cap-none-1)" && echo yes || echo no)"
check "mode 0600" 600 "$(stat -c %a "$(capfile cap-hdr-1)")"
check "it is JSON with the request's id" cap-hdr-1 "$(field cap-hdr-1 'd["request_id"]')"
check "model, door, status, client" "echo openai 200 -" \
    "$(field cap-hdr-1 '" ".join([d["model"], d["door"], str(d["status"]), d["client"]])')"
check_match "the client's body" 'hello capture' "$(field cap-hdr-1 'd["request"]["text"]')"
check "a named client's request, captured" 200 \
    "$(post "$(msg echo)" -H "Authorization: Bearer $NAMED_KEY" -H 'X-Request-Id: cap-named-1' -H 'X-Pipeline-Capture: 1')"
wait_until 10 have cap-named-1
check "its client is the key's name" team-cap "$(field cap-named-1 'd["client"]')"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $CLIENT_KEY" \
    -H 'anthropic-version: 2023-06-01' -H 'X-Request-Id: cap-door-1' \
    -H 'X-Pipeline-Capture: 1' -H 'Content-Type: application/json' \
    --data-binary '{"model":"echo","max_tokens":16,"messages":[{"role":"user","content":"hi door"}]}' \
    "http://127.0.0.1:$DPORT/v1/messages")
check "an Anthropic door request, captured" 200 "$code"
wait_until 10 have cap-door-1
check "its door is anthropic" anthropic "$(field cap-door-1 'd["door"]')"
check "one attempt" 1 "$(field cap-hdr-1 'len(d["attempts"])')"
check "its target and status" "up/echo 200" \
    "$(field cap-hdr-1 'd["attempts"][0]["target"] + " " + str(d["attempts"][0]["status"])')"
check "offsets in ms, start <= end" True \
    "$(field cap-hdr-1 '0 <= d["attempts"][0]["start_ms"] <= d["attempts"][0]["end_ms"]')"
check_match "the body sent upstream names the target's model" '"model": ?"echo"' \
    "$(field cap-hdr-1 'd["attempts"][0]["request"]["text"]')"
check_match "the upstream's headers" '[Cc]ontent-[Tt]ype' "$(field cap-hdr-1 'list(d["attempts"][0]["headers"])')"
check_match "the upstream's answer" 'echo: hello capture' "$(field cap-hdr-1 'd["attempts"][0]["answer"]["text"]')"
check "what the client got" 200 "$(field cap-hdr-1 'd["response"]["status"]')"
check_match "... and its body" 'echo: hello capture' "$(field cap-hdr-1 'd["response"]["body"]["text"]')"

echo "capture on: every request; bodies cut at max_body_bytes"
check_match "capture on answers" '^\{"ok":true,"capture":true\}$' "$(ctl capture on)"
check_match "stats: capture true" '"capture":true' "$(ctl stats)"
check_match "pipelinectl's table says so" '^capture +on' "$("$BIN/pipelinectl" -s "$SOCK" stats)"
long=$(printf 'x%.0s' $(seq 1 3000))
check "a long request" 200 "$(post "$(msg echo "$long")" "${AUTH[@]}" -H 'X-Request-Id: cap-long-1')"
wait_until 10 have cap-long-1 || fail "no capture of cap-long-1"
check "the client's body is cut and marked" "True 2048" \
    "$(field cap-long-1 'str(d["request"]["truncated"]) + " " + str(len(d["request"]["text"]))')"
check "its real size is kept" True "$(field cap-long-1 'd["request"]["bytes"] > 3000')"
check "the answer too" True "$(field cap-long-1 'd["attempts"][0]["answer"]["truncated"]')"

echo "a stream's events, a retry's two attempts, an echoed key"
check "a stream" 200 "$(post "$(msg echo 'streamed' ',"stream":true')" "${AUTH[@]}" -H 'X-Request-Id: cap-stream-1')"
wait_until 10 have cap-stream-1 || fail "no capture of cap-stream-1"
check_match "the events received" 'data: \{.*data: \[DONE\]' \
    "$(field cap-stream-1 'd["attempts"][0]["answer"]["text"].replace(chr(10), " ")')"
check_match "the events sent to the client" 'data: \[DONE\]' "$(field cap-stream-1 'd["response"]["body"]["text"]')"
check "a retried request" 200 "$(post "$(msg flaky)" "${AUTH[@]}" -H 'X-Request-Id: cap-retry-1')"
wait_until 10 have cap-retry-1 || fail "no capture of cap-retry-1"
check "two attempts: 500 then 200" "2 500 200" \
    "$(field cap-retry-1 '" ".join([str(len(d["attempts"])), str(d["attempts"][0]["status"]), str(d["attempts"][-1]["status"])])')"
check "the second starts after the first ended" True \
    "$(field cap-retry-1 'd["attempts"][1]["start_ms"] >= d["attempts"][0]["end_ms"]')"
check "an upstream that echoes the provider's key" 200 \
    "$(post "$(msg auth)" "${AUTH[@]}" -H 'X-Request-Id: cap-auth-1')"
wait_until 10 have cap-auth-1 || fail "no capture of cap-auth-1"
check_match "the key is masked where it was" 'auth: Bearer \*{8}' "$(field cap-auth-1 'd["attempts"][0]["answer"]["text"]')"

echo "rotation beyond max_files (6)"
for i in 1 2 3 4 5 6 7; do post "$(msg echo "r$i")" "${AUTH[@]}" -H "X-Request-Id: cap-rot-$i" >/dev/null; done
wait_until 10 have cap-rot-7 || fail "no capture of cap-rot-7"
n=$(ls "$CAP" | grep -c '\.json$')
check "at most 6 files" yes "$([ "$n" -le 6 ] && [ "$n" -ge 5 ] && echo yes || echo "no ($n)")"
check "the newest kept, the oldest gone" "yes no" \
    "$(have cap-rot-7 && echo yes || echo no) $(have cap-hdr-1 && echo yes || echo no)"

echo "capture off: none but those asking"
check_match "capture off answers" '^\{"ok":true,"capture":false\}$' "$(ctl capture off)"
check "a request" 200 "$(post "$(msg echo)" "${AUTH[@]}" -H 'X-Request-Id: cap-off-1')"
check "one asking" 200 "$(post "$(msg echo)" "${AUTH[@]}" -H 'X-Request-Id: cap-off-2' -H 'X-Pipeline-Capture: 1')"
wait_until 10 have cap-off-2 || fail "no capture of cap-off-2"
check "the first has none" no "$(have cap-off-1 && echo yes || echo no)"
check_match "a bad argument is refused" '"error"' "$(ctl capture maybe)"

echo "an unwritable directory: logged once, requests answered"
: >"$WORK/afile"
write_conf "$WORK/afile/cap"
check_match "reload" '"ok":true' "$(ctl reload)"
codes=""
for i in 1 2 3; do
    codes="$codes $(post "$(msg echo)" "${AUTH[@]}" -H "X-Request-Id: cap-bad-$i" -H 'X-Pipeline-Capture: 1')"
done
check "every request answered" " 200 200 200" "$codes"
wait_until 10 grep -q "capture: cannot" "$DLOG" || true
# The three writes are queued in order: once the third line (its log
# line) is there, a second "cannot" line would be too.
wait_until 10 grep -q "req=cap-bad-3 " "$DLOG" || true
check "logged once" 1 "$(grep -c 'capture: cannot' "$DLOG")"

echo "no secret in any capture or in the log"
check "the client's key: nowhere" "" "$(grep -rl -- "$CLIENT_KEY" "$CAP" "$DLOG")"
check "the provider's key: nowhere" "" "$(grep -rl -- "$PROVIDER_KEY" "$CAP" "$DLOG")"
check "the named client's key: nowhere" "" "$(grep -rl -- "$NAMED_KEY" "$CAP" "$DLOG")"
check "no Authorization header in a capture" "" "$(grep -rli 'authorization' "$CAP")"

check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
stop_daemon
check "clean exit" 0 "$DRC"
summary capture
