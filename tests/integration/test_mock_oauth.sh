#!/usr/bin/env bash
# test_mock_oauth.sh - the interface of tests/mock/mock_oauth.c that the
# OAuth tests rely on: Qwen's device flow (PKCE, pending, slow_down,
# expired, denied) and refresh grant (rotation, revocation, delay),
# iFlow's refresh with Basic client auth and getUserInfo, the chat API's
# token checks and stream, /control's all-or-nothing validation, /stats,
# and a clean exit on SIGTERM (under VALGRIND when the run sets it).
# Prints "mock_oauth: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

# RFC 7636 appendix B: this verifier's S256 challenge.
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
QWEN=f0304373b74a44d2b584a3fb70ca9e56
GRANT=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code
IFLOW_FORM="client_id=iflow-test-client&client_secret=iflow-test-secret"
CHAT='{"model":"m1","messages":[{"role":"user","content":"hi"}]}'

# Started by hand rather than with start_oauth_mock so that the valgrind
# run checks the mock itself.
PF="$WORK/oauth.port"
${VALGRIND:-} "$BIN/mock_oauth" -q -P "$PF" >"$WORK/oauth.out" \
    2>"$WORK/oauth.err" &
MPID=$!
PIDS+=($MPID)
wait_until 60 test -s "$PF" || { echo "mock_oauth did not start"; exit 1; }
OA_PORT=$(cat "$PF")
B="http://127.0.0.1:$OA_PORT"

# req ARGS...: curl; the body in $WORK/r.body, prints the status.
req() { curl -s -o "$WORK/r.body" -w '%{http_code}' "$@"; }
rbody() { cat "$WORK/r.body"; }
poll() {
    req -d "grant_type=$GRANT&client_id=$QWEN&device_code=${1:-dc-1}&code_verifier=${2:-$VERIFIER}" \
        "$B/api/v1/oauth2/token"
}
qrefresh() {
    req -d "grant_type=refresh_token&client_id=${2:-$QWEN}&refresh_token=$1" \
        "$B/api/v1/oauth2/token"
}
irefresh() {
    req -u "${2:-iflow-test-client:iflow-test-secret}" \
        -d "grant_type=refresh_token&refresh_token=$1&$IFLOW_FORM" \
        "$B/oauth/token"
}
stat_is() { [ "$(oauth_stat OA "$1")" = "$2" ]; }
chat() { req -H "Authorization: Bearer $1" -d "${2:-$CHAT}" "$B/v1/chat/completions"; }

echo "device flow"
code=$(req -d "client_id=$QWEN&scope=openid+profile&code_challenge=$CHALLENGE&code_challenge_method=S256" \
    "$B/api/v1/oauth2/device/code")
check "device code 200" 200 "$code"
check_match "device code answer" "^\{\"device_code\":\"dc-1\",\"user_code\":\"UC-1\",\"verification_uri\":\"$B/authorize\",\"verification_uri_complete\":\"$B/authorize\\?user_code=UC-1\",\"expires_in\":300,\"interval\":1\}$" "$(rbody)"
code=$(req -d "client_id=$QWEN&scope=x&code_challenge=abc&code_challenge_method=S256" \
    "$B/api/v1/oauth2/device/code")
check "short challenge 400" 400 "$code"
check_match "short challenge invalid_request" '"error":"invalid_request"' "$(rbody)"
code=$(req -d "client_id=$QWEN&code_challenge=$CHALLENGE&code_challenge_method=S256" \
    "$B/api/v1/oauth2/device/code")
check "no scope 400" 400 "$code"
code=$(req -d "client_id=other&scope=x&code_challenge=$CHALLENGE&code_challenge_method=S256" \
    "$B/api/v1/oauth2/device/code")
check "wrong client 400" 400 "$code"
code=$(req -d "client_id=$QWEN&scope=x&code_challenge=$CHALLENGE&code_challenge_method=plain" \
    "$B/api/v1/oauth2/device/code")
check "plain method 400" 400 "$code"

check "control pending+slow_down" 200 "$(oauth_control OA 'pending=2&slow_down=1')"
code=$(poll dc-1 "${VERIFIER}x"); check "wrong verifier 400" 400 "$code"
check_match "wrong verifier invalid_grant" '"error":"invalid_grant"' "$(rbody)"
code=$(poll dc-2); check "unknown device code 400" 400 "$code"
check_match "unknown device code invalid_grant" '"error":"invalid_grant"' "$(rbody)"
code=$(poll); check "slow_down 429" 429 "$code"
check_match "slow_down" '"error":"slow_down"' "$(rbody)"
code=$(poll); check "pending 400" 400 "$code"
check_match "pending" '"error":"authorization_pending"' "$(rbody)"
poll >/dev/null
check "device expired" 200 "$(oauth_control OA 'device=expired')"
code=$(poll); check "expired 400" 400 "$code"
check "expired_token" '{"error":"expired_token"}' "$(rbody)"
check "device denied" 200 "$(oauth_control OA 'device=denied')"
poll >/dev/null; check "access_denied" '{"error":"access_denied"}' "$(rbody)"
check "device ok" 200 "$(oauth_control OA 'device=ok')"
code=$(poll); check "tokens 200" 200 "$code"
check "tokens" "{\"access_token\":\"at-1\",\"refresh_token\":\"rt-1\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"resource_url\":\"$B\"}" "$(rbody)"
check "polls counted" 8 "$(oauth_stat OA polls)"
check "device codes counted" 5 "$(oauth_stat OA device_code)"
check_match "seven poll gaps" '"poll_gaps_ms":\[[0-9]+(,[0-9]+){6}\]' "$(curl -s "$B/stats")"

echo "Qwen refresh"
code=$(qrefresh rt-1 nobody); check "wrong client 400" 400 "$code"
check "invalid_client" '{"error":"invalid_client"}' "$(rbody)"
code=$(qrefresh rt-0); check "stale refresh token 400" 400 "$code"
check "invalid_grant" '{"error":"invalid_grant","error_description":"refresh token is invalid or revoked"}' "$(rbody)"
code=$(qrefresh rt-1); check "refresh 200" 200 "$code"
check "rotated" "{\"access_token\":\"at-2\",\"refresh_token\":\"rt-2\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"resource_url\":\"$B\"}" "$(rbody)"
check "no rotation, no resource_url" 200 \
    "$(oauth_control OA 'rotate=0&resource_url=none&expires_in=60')"
qrefresh rt-2 >/dev/null
check "not rotated" '{"access_token":"at-3","token_type":"Bearer","expires_in":60}' "$(rbody)"
code=$(qrefresh rt-2); check "kept refresh token still valid" 200 "$code"
check "revoked" 200 "$(oauth_control OA 'revoked=1')"
code=$(qrefresh rt-2); check "revoked 400" 400 "$code"
check_match "revoked invalid_grant" '"error":"invalid_grant"' "$(rbody)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    --data 'revoked=0&rotate=1&resource_url=default&expires_in=3600' "$B/control")
check "control as a form body" 200 "$code"
check "refresh counted" 6 "$(oauth_stat OA refresh)"

echo "delayed refresh"
check "refresh_delay_ms" 200 "$(oauth_control OA 'refresh_delay_ms=1500')"
qrefresh rt-2 >"$WORK/delayed.code" &
DELAYED=$!
wait_until 20 stat_is refresh 7 || fail "delayed refresh never arrived"
check "answers others meanwhile" at-4 "$(oauth_stat OA access)"
wait "$DELAYED"
check "delayed refresh 200" 200 "$(cat "$WORK/delayed.code")"
check_match "delayed refresh minted" '"access_token":"at-5","refresh_token":"rt-5"' "$(rbody)"
timeout 0.5 curl -s -o /dev/null -d "grant_type=refresh_token&client_id=$QWEN&refresh_token=rt-5" \
    "$B/api/v1/oauth2/token"
wait_until 20 stat_is aborted 1; check "client gone: dropped" 1 "$(oauth_stat OA aborted)"
check "nothing minted for it" rt-5 "$(oauth_stat OA refresh_token)"
check "no delay" 200 "$(oauth_control OA 'refresh_delay_ms=0')"

echo "iFlow"
code=$(irefresh rt-5 iflow-test-client:wrong); check "bad Basic 401" 401 "$code"
check "invalid_client" '{"error":"invalid_client"}' "$(rbody)"
code=$(req -d "grant_type=refresh_token&refresh_token=rt-5&$IFLOW_FORM" "$B/oauth/token")
check "no Basic 401" 401 "$code"
code=$(irefresh rt-4); check "stale 400" 400 "$code"
check_match "stale invalid_grant" '"error":"invalid_grant"' "$(rbody)"
code=$(irefresh rt-5); check "iFlow refresh 200" 200 "$code"
check "iFlow tokens" '{"access_token":"at-6","refresh_token":"rt-6","expires_in":3600,"token_type":"bearer","scope":"read"}' "$(rbody)"
check "new api key" ik-6 "$(oauth_stat OA apikey)"
check "iflow_refresh counted" 4 "$(oauth_stat OA iflow_refresh)"
code=$(req "$B/api/oauth/getUserInfo?accessToken=at-6"); check "userinfo 200" 200 "$code"
check "userinfo" '{"success":true,"data":{"apiKey":"ik-6","userId":"u1","userName":"tester"}}' "$(rbody)"
req "$B/api/oauth/getUserInfo?accessToken=at-5" >/dev/null
check "userinfo stale" '{"success":false,"message":"invalid access token"}' "$(rbody)"

echo "chat"
code=$(chat at-6); check "token 200" 200 "$code"
check_match "via token" '"model":"m1","choices":\[\{"index":0,"message":\{"role":"assistant","content":"ok via token"\},"finish_reason":"stop"\}\],"usage":\{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6\}' "$(rbody)"
code=$(chat ik-6); check "api key 200" 200 "$code"
check_match "via apikey" '"content":"ok via apikey"' "$(rbody)"
code=$(chat at-5); check "stale token 401" 401 "$code"
check "401 body" '{"error":{"message":"Invalid access token","type":"invalid_request_error","code":"invalid_api_key"}}' "$(rbody)"
code=$(chat at-6 '{"model":"m1"}'); check "no messages 400" 400 "$code"
code=$(chat at-6 '{"model":'); check "broken JSON 400" 400 "$code"
check "invalidate_access" 200 "$(oauth_control OA 'invalidate_access=1&invalidate_apikey=1')"
code=$(chat at-6); check "invalidated token 401" 401 "$code"
code=$(chat ik-6); check "invalidated key 401" 401 "$code"
check "refresh token untouched" rt-6 "$(oauth_stat OA refresh_token)"
check "chat_401 counted" 3 "$(oauth_stat OA chat_401)"
check "set access" 200 "$(oauth_control OA 'access=tok-a')"
out=$(curl -s -N -D "$WORK/sse.head" -H 'Authorization: Bearer tok-a' \
    -d '{"model":"m2","messages":[],"stream":true}' "$B/v1/chat/completions")
check_match "stream type" '^Content-Type: text/event-stream' "$(tr -d '\r' <"$WORK/sse.head")"
check_match "stream first chunk" '^data: \{.*"delta":\{"role":"assistant","content":"ok via token"\},"finish_reason":null' "$out"
check_match "stream finish chunk" '"delta":\{\},"finish_reason":"stop"' "$out"
check "stream ends in DONE" 'data: [DONE]' "$(printf '%s\n' "$out" | grep -v '^$' | tail -1)"
check "last_model" m2 "$(oauth_stat OA last_model)"
check "last_stream" true "$(oauth_stat OA last_stream)"

echo "control and stats"
check "unknown key refused" 400 "$(oauth_control OA 'access=zz&bogus=1')"
check "nothing applied" tok-a "$(oauth_stat OA access)"
check "bad value refused" 400 "$(oauth_control OA 'access=zz&device=maybe')"
check "still nothing applied" tok-a "$(oauth_stat OA access)"
check "bad number refused" 400 "$(oauth_control OA 'pending=-1')"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$B/stats/reset")
check "reset" 200 "$code"
check_match "counters zeroed" '^\{"device_code":0,"polls":0,"refresh":0,"iflow_refresh":0,"userinfo":0,"chat":0,"chat_401":0,.*"access":"tok-a",.*"poll_gaps_ms":\[\]' "$(curl -s "$B/stats")"
code=$(req "$B/no/such/path"); check "404" 404 "$code"
check_match "404 JSON" '"error":"not_found"' "$(rbody)"

echo "exit"
kill -TERM "$MPID"
wait "$MPID"; check "SIGTERM: exit 0, nothing leaked" 0 "$?"

summary "mock_oauth"
