#!/usr/bin/env bash
# test_auth.sh - client keys: Bearer and x-api-key, plain and sha256:
# forms, 401 in OpenAI's shape, /health open, /metrics and /v1/* closed,
# and no key or upstream secret in the log or the answers.
# Prints "auth: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
KEY2_SHA=$(printf '%s' 'sk-client-two' | sha256sum | cut -d' ' -f1)
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "debug";
clients = { api_keys = ( "sk-client-one", "sha256:$KEY2_SHA" ); };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "sk-upstream-secret"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
                   { name = "reject"; targets = ( { provider = "up"; model = "status-401"; } ); } );
CONF
chmod 600 "$CONF"
start_daemon "$CONF"

code=$(post "$(msg default)"); check "no key 401" 401 "$code"
check_match "401 in OpenAI shape" '"type":"authentication_error","code":"invalid_api_key"' "$(body)"
code=$(post "$(msg default)" -H 'Authorization: Bearer sk-wrong'); check "wrong key 401" 401 "$code"
code=$(post "$(msg default)" -H 'Authorization: Bearer sk-client-one'); check "right key 200" 200 "$code"
code=$(post "$(msg default)" -H 'Authorization: bearer sk-client-one'); check "scheme is case-insensitive" 200 "$code"
code=$(post "$(msg default)" -H 'Authorization: Bearer sk-client-two'); check "sha256 form 200" 200 "$code"
code=$(post "$(msg default)" -H 'x-api-key: sk-client-one'); check "x-api-key 200" 200 "$code"
code=$(post "$(msg default)" -H "Authorization: Bearer sha256:$KEY2_SHA"); check "the digest itself is not a key" 401 "$code"
code=$(post "$(msg default)" -H 'Authorization: Bearer '); check "empty bearer 401" 401 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/health"); check "/health open" 200 "$code"
code=$(curl -s -o /dev/null -D "$WORK/last.head" -w '%{http_code}' -H 'X-Request-Id: scrape-1' "http://127.0.0.1:$DPORT/metrics"); check "/metrics closed" 401 "$code"
check "its 401 keeps the X-Request-Id" scrape-1 "$(header X-Request-Id)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: sk-client-one' "http://127.0.0.1:$DPORT/metrics"); check "/metrics with a key" 200 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/v1/models"); check "/v1/models closed" 401 "$code"

code=$(post "$(msg reject)" -H 'Authorization: Bearer sk-client-one'); check "upstream 401: 502" 502 "$code"
check_match "the upstream's message is relayed" 'Incorrect API key provided' "$(body)"
check_nomatch "but not the key it quotes" 'sk-upstream' "$(body)"
out=$("$BIN/pipelined" -t -c "$CONF" 2>&1)
check_nomatch "-t shows no secret" 'sk-client|sk-upstream' "$out"
check_nomatch "mode 600: no warning" 'readable by' "$out"
chmod 644 "$CONF"
out=$("$BIN/pipelined" -t -c "$CONF" 2>&1)
check_match "mode 644: a loud warning" 'holds API keys and is readable by everyone' "$out"
check_nomatch "the warning shows no secret" 'sk-client|sk-upstream' "$out"
stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
stop_daemon
check "exit status 0" 0 "$DRC"
check_nomatch "no secret in stats" 'sk-client|sk-upstream' "$stats"
check_nomatch "no secret in the log" "sk-client|sk-upstream|$KEY2_SHA" "$(cat "$DLOG")"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary auth
