#!/usr/bin/env bash
# test_budgets.sh - rate budgets and token accounting end to end: a
# target's rpm spent answers 429 rate_limited with Retry-After when the
# refill comes after the deadline, and makes the request wait in the
# queue when it comes before; tpm is charged with an answer's tokens and
# the next request waits for the refill (woken at the refill time); the
# budgets are exact across two workers and survive a reload; a client
# over its budget gets 429 at once, is logged and counted by its name,
# and its key appears nowhere; usage is counted for plain and streamed
# answers, and a streaming client sees the usage chunk only when it asked
# for it (stream_options.include_usage), from the built-in mock and from
# an OpenAI-compatible upstream. Prints "budgets: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

TEAM_KEY="sk-team-SECRET-4242"
HASHED_KEY="sk-hashed-xyz"       # configured as its sha256: digest
HASHED_DIGEST="d1197edee9e02e8365ed8b21ba1cae5a2c1783a78ff84e2e79e92843c639c8d5"
PLAIN_KEY="sk-plain-7777"
# tl: TPM tokens a minute; a prompt of TPM words spends it all, and the
# answer's own tokens (about 48) put the bucket in debt for ~0.5 s.
TPM=6000
SHORT_MS=1500     # a deadline far before any rpm refill (30 s at rpm 2)
LONG_MS=20000     # one after a tpm refill

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
write_conf() {   # write_conf EXTRA_VMODEL
    cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
log_level = "info";
clients = { api_keys = ( "$PLAIN_KEY",
    { key = "$TEAM_KEY"; name = "team-a"; rpm = 2; },
    { key = "sha256:$HASHED_DIGEST"; name = "team-b"; } ); };
providers = ( { name = "local"; type = "mock"; },
              { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = (
  { name = "free"; targets = ( { provider = "local"; model = "free"; } ); },
  { name = "rl"; targets = ( { provider = "local"; model = "rl"; rpm = 2; } ); },
  { name = "tl"; targets = ( { provider = "local"; model = "tl"; tpm = $TPM; } ); },
  { name = "tb"; targets = ( { provider = "local"; model = "tb"; tpm = 100; } ); },
  { name = "up"; targets = ( { provider = "up"; model = "echo"; } ); }$1
);
CONF
    chmod 600 "$CONF"
}
write_conf ""

echo "configuration checks"
bad() {   # bad NAME SNIPPET REGEX: -t refuses SNIPPET with REGEX
    printf 'listen = "127.0.0.1:1";\nproviders = ( { name = "l"; type = "mock"; } );\n%s\n' "$2" >"$WORK/bad.conf"
    local out rc
    out=$(${VALGRIND:-} "$BIN/pipelined" -t -c "$WORK/bad.conf" 2>&1); rc=$?
    check "$1: exit 1" 1 "$rc"
    check_match "$1: FILE:LINE" "$3" "$out"
}
bad "rpm 0" 'virtual_models = ( { name = "v"; targets = ( { provider = "l"; model = "m"; rpm = 0; } ); } );' \
    "bad.conf:3: 'rpm' must be between 1 and"
bad "tpm string" 'virtual_models = ( { name = "v"; targets = ( { provider = "l"; model = "m"; tpm = "x"; } ); } );' \
    "bad.conf:3: 'tpm' must be an integer"
bad "client without key" 'clients = { api_keys = ( { name = "a"; } ); };
virtual_models = ( { name = "v"; targets = ( { provider = "l"; model = "m"; } ); } );' \
    "bad.conf:3: missing required key 'key'"
bad "one name, two budgets" 'clients = { api_keys = ( { key = "k1"; name = "a"; rpm = 1; },
  { key = "k2"; name = "a"; rpm = 2; } ); };
virtual_models = ( { name = "v"; targets = ( { provider = "l"; model = "m"; } ); } );' \
    "bad.conf:4: client \"a\" is named before with other limits"
bad "bad name" 'clients = { api_keys = ( { key = "k1"; name = "a b"; } ); };
virtual_models = ( { name = "v"; targets = ( { provider = "l"; model = "m"; } ); } );' \
    "bad.conf:3: 'name' must be"

start_daemon "$CONF"
AUTH=(-H "Authorization: Bearer $PLAIN_KEY")

echo "rpm: 429 with Retry-After by deadline, exact across two workers"
# Six at once over two workers: the bucket holds two.
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{http_code}\n' "${AUTH[@]}" \
        -H "X-Request-Timeout-Ms: $SHORT_MS" --data-binary "$(msg rl)" \
        "http://127.0.0.1:$DPORT/v1/chat/completions" >"$WORK/par.$i" &
done
wait_all() { for i in 1 2 3 4 5 6; do [ -s "$WORK/par.$i" ] || return 1; done; }
wait_until 60 wait_all
check "exactly rpm=2 answered" 2 "$(cat "$WORK"/par.* | grep -c '^200$')"
check "the others 429" 4 "$(cat "$WORK"/par.* | grep -c '^429$')"
check "429 when the refill is after the deadline" 429 \
    "$(post "$(msg rl)" "${AUTH[@]}" -H "X-Request-Timeout-Ms: $SHORT_MS")"
check_match "code rate_limited" '"code":"rate_limited"' "$(body)"
ra=$(header Retry-After)
check_match "Retry-After whole seconds until the refill (1..30): $ra" '^([1-9]|[12][0-9]|30)$' "$ra"

echo "rpm: waits in the queue when the refill is before the deadline"
curl -s -o "$WORK/wait.body" -w '%{http_code}' "${AUTH[@]}" \
    -H "X-Request-Timeout-Ms: 60000" --data-binary "$(msg rl)" \
    "http://127.0.0.1:$DPORT/v1/chat/completions" >"$WORK/wait.code" &
WAITER=$!
PIDS+=($WAITER)
queued() { [ "$(stats_field depth)" = 1 ]; }
wait_until 20 queued; check "it waits in the queue" 0 $?
check "not answered" "" "$(cat "$WORK/wait.code")"
kill "$WAITER" 2>/dev/null; wait "$WAITER" 2>/dev/null
gone() { [ "$(stats_field depth)" = 0 ]; }
wait_until 20 gone; check "the client leaving takes it out" 0 $?

echo "tpm: charged with the answer's tokens; the next waits for the refill"
big=$(printf 'abcd %.0s' $(seq 1 $TPM))
check "a prompt of tpm tokens is let through" 200 \
    "$(post "$(msg tl "$big")" "${AUTH[@]}")"
t0=$(date +%s%N)
check "the next one waits, then is answered" 200 \
    "$(post "$(msg tl)" "${AUTH[@]}" -H "X-Request-Timeout-Ms: $LONG_MS")"
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$waited" -ge 200 ]; then ok "it waited for the refill (${waited} ms)"
else fail "answered after ${waited} ms: no wait"; fi
check "a prompt that leaves a long debt" 200 "$(post "$(msg tb "$big")" "${AUTH[@]}")"
check "then 429 at once" 429 \
    "$(post "$(msg tb)" "${AUTH[@]}" -H "X-Request-Timeout-Ms: $SHORT_MS")"
ra=$(header Retry-After)
if [ "${ra:-0}" -gt 60 ]; then ok "Retry-After the refill of the debt ($ra s)"
else fail "Retry-After $ra"; fi

echo "client budgets"
TEAM=(-H "Authorization: Bearer $TEAM_KEY")
check "team-a 1" 200 "$(post "$(msg free)" "${TEAM[@]}")"
check "team-a 2" 200 "$(post "$(msg free)" "${TEAM[@]}")"
check "team-a over its rpm: 429" 429 "$(post "$(msg free)" "${TEAM[@]}" -H 'X-Request-Id: team-limited')"
check_match "rate_limited" '"code":"rate_limited"' "$(body)"
ra=$(header Retry-After)
check_match "Retry-After (1..30): $ra" '^([1-9]|[12][0-9]|30)$' "$ra"
check_match "logged with client=team-a" \
    "req=team-limited model=free .*status=429 .*client=team-a .*error=rate_limited" \
    "$(grep 'req=team-limited' "$DLOG")"
check "the hashed key's client" 200 \
    "$(post "$(msg free)" -H "Authorization: Bearer $HASHED_KEY" -H 'X-Request-Id: team-b-1')"
check_match "logged with client=team-b and tokens" \
    "req=team-b-1 .*client=team-b prompt_tokens=1 completion_tokens=[0-9]+" \
    "$(grep 'req=team-b-1' "$DLOG")"
check "a plain key has no budget" 200 "$(post "$(msg free)" "${AUTH[@]}" -H 'X-Request-Id: plain-1')"
check_nomatch "and no client=" "client=" "$(grep 'req=plain-1' "$DLOG")"

echo "usage for every answer, the usage chunk only for who asked"
IU=',"stream":true,"stream_options":{"include_usage":true}'
for model in free up; do
    check "$model: stream without include_usage" 200 \
        "$(post "$(msg $model hi ',"stream":true')" "${AUTH[@]}" -H "X-Request-Id: s-$model")"
    check_nomatch "$model: no usage chunk" '"usage"|"choices":\[\]' "$(body)"
    check_match "$model: ends with [DONE]" 'data: \[DONE\]' "$(body)"
    check_match "$model: tokens logged all the same" \
        "req=s-$model .*prompt_tokens=1 completion_tokens=[1-9]" "$(grep "req=s-$model " "$DLOG")"
    check "$model: stream with include_usage" 200 \
        "$(post "$(msg $model hi "$IU")" "${AUTH[@]}" -H "X-Request-Id: u-$model")"
    check "$model: one usage chunk, no choices" 1 "$(body | grep -c '"choices":\[\],"usage":{"prompt_tokens":1,')"
    check_match "$model: tokens logged" \
        "req=u-$model .*prompt_tokens=1 completion_tokens=[1-9]" "$(grep "req=u-$model " "$DLOG")"
    check "$model: plain" 200 "$(post "$(msg $model)" "${AUTH[@]}" -H "X-Request-Id: p-$model")"
    check_match "$model: plain usage passed on" '"usage":\{"prompt_tokens":1,' "$(body)"
    check_match "$model: tokens logged" \
        "req=p-$model .*prompt_tokens=1 completion_tokens=[1-9]" "$(grep "req=p-$model " "$DLOG")"
done

echo "metrics and stats"
metrics=$(curl -s "${AUTH[@]}" "http://127.0.0.1:$DPORT/metrics")
stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
check_match "client requests by status" 'pipeline_client_requests_total\{client="team-a",status="429"\} 1' "$metrics"
check_match "client requests 200" 'pipeline_client_requests_total\{client="team-a",status="200"\} 2' "$metrics"
check_match "client tokens" 'pipeline_client_tokens_total\{client="team-b",kind="prompt"\} 1' "$metrics"
check_match "requests by status, refusals included" 'pipeline_requests_by_status_total\{status="429"\} ([6-9]|[1-9][0-9])' "$metrics"
check_match "tokens of the upstream's streamed answers" \
    'pipeline_tokens_total\{target="up/echo",virtual_model="up",kind="prompt"\} 3' "$metrics"
check_match "stats: tokens" '"name":"up/echo"[^]]*"tokens":\{"prompt":3,"completion":[1-9]' "$stats"
check_match "stats: budget left" '"name":"local/rl"[^]]*"budget":\{"rpm":0\}' "$stats"
check_nomatch "stats: no budget where no limits" '"name":"local/free","[^]]*"budget"[^]]*"name":"local/rl"' "$stats"

echo "budgets survive a reload"
n=$(grep -c 'configuration reloaded' "$DLOG")
write_conf ',
  { name = "extra"; targets = ( { provider = "local"; model = "x"; } ); }'
kill -HUP "$DPID"
reloaded() { [ "$(grep -c 'configuration reloaded' "$DLOG")" -gt "$n" ]; }
wait_until 30 reloaded; check "reloaded" 0 $?
check "the new model serves" 200 "$(post "$(msg extra)" "${AUTH[@]}")"
check "rl still spent" 429 "$(post "$(msg rl)" "${AUTH[@]}" -H "X-Request-Timeout-Ms: $SHORT_MS")"
check "team-a still spent" 429 "$(post "$(msg free)" "${TEAM[@]}")"

echo "keys appear nowhere"
metrics=$(curl -s "${AUTH[@]}" "http://127.0.0.1:$DPORT/metrics")
stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
for k in "$TEAM_KEY" "$HASHED_KEY" "$HASHED_DIGEST" "$PLAIN_KEY"; do
    check "not in the log: ${k:0:6}..." 0 "$(grep -c -- "$k" "$DLOG")"
    check "not in metrics, stats: ${k:0:6}..." 0 "$(printf '%s\n%s' "$metrics" "$stats" | grep -c -- "$k")"
done

stop_daemon
check "clean exit" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$(cat "$DLOG")"
summary budgets
