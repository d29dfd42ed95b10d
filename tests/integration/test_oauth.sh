#!/usr/bin/env bash
# test_oauth.sh - OAuth providers end to end against bin/mock_oauth, which
# speaks Qwen's and iFlow's OAuth and an API that takes only the current
# token: requests signed from the token file, refresh before expiry,
# refresh on a 401 and one retry, one refresh for many concurrent
# requests across workers, a token file replaced on disk, a revoked
# refresh token (clear error naming `pipelinectl login`, recovery once the
# file is replaced), iFlow's refresh + getUserInfo API key, the file
# written 0600 with no temporary left, and no token in the log.
# Prints "oauth: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_oauth_mock QA       # Qwen's authorization server and API
start_oauth_mock IA       # iFlow's
start_upstream UP         # an API that refuses everything with 403
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
QDIR="$WORK/qwen"
IDIR="$WORK/iflow"
QTOK="$QDIR/oauth_creds.json"
ITOK="$IDIR/oauth_creds.json"
mkdir -p "$QDIR" "$IDIR"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
WAIT=${WAIT_S:-60}
[ -n "${VALGRIND:-}" ] && WAIT=180

mstat() {  # mstat MOCKPORT KEY: a number or string from the mock's /stats
    curl -s "http://127.0.0.1:$1/stats" | grep -o "\"$2\":\"\?[^,\"}]*" |
        head -1 | sed 's/.*:"\?//'
}
mctl() { curl -s -X POST "http://127.0.0.1:$1/control?$2" >/dev/null; }
# poke_until VMODEL MOCKPORT KEY VALUE: sends requests until the mock's
# counter KEY reads VALUE (the daemon notices file changes within a second).
poke_until() {
    local deadline=$(( $(now_ms) + WAIT * 1000 ))
    while [ "$(mstat "$2" "$3")" != "$4" ]; do
        [ "$(now_ms)" -ge $deadline ] && return 1
        post "$(msg "$1")" >/dev/null
        sleep 0.05
    done
}

# status_until STATUS VMODEL: sends requests until one answers STATUS
# (a replaced token file is noticed within a second); 0 when one did.
status_until() {
    local deadline=$(( $(now_ms) + WAIT * 1000 ))
    until [ "$(post "$(msg "$2")")" = "$1" ]; do
        [ "$(now_ms)" -ge $deadline ] && return 1
        sleep 0.1
    done
}

# write_qwen ACCESS REFRESH EXPIRY_MS [RESOURCE_URL]: a token file as the
# Qwen CLI writes it.
write_qwen() {
    printf '{"access_token":"%s","refresh_token":"%s","token_type":"Bearer","resource_url":"%s","expiry_date":%s}\n' \
        "$1" "$2" "${4:-http://127.0.0.1:$QA_PORT}" "$3" >"$QTOK.new"
    chmod 600 "$QTOK.new"
    mv "$QTOK.new" "$QTOK"
}
write_iflow() {
    printf '{"access_token":"%s","refresh_token":"%s","expiry_date":%s,"token_type":"bearer","scope":"read","apiKey":"%s"}\n' \
        "$1" "$2" "$3" "$4" >"$ITOK.new"
    chmod 600 "$ITOK.new"
    mv "$ITOK.new" "$ITOK"
}

FAR=$(( $(now_ms) + 3600000 ))
write_qwen at-0 rt-0 "$FAR"
write_iflow at-0 rt-0 "$FAR" ik-0
printf '{"apiKey":"ik-from-settings","baseUrl":"http://127.0.0.1:1/v1"}\n' >"$IDIR/settings.json"

cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 4;
max_concurrent_per_worker = 4;
log_level = "debug";
retry = { max_retries = 2; base_delay_ms = 10; max_delay_ms = 50; };
providers = (
  { name = "qwen"; type = "qwen"; auth = "oauth"; token_file = "$QTOK";
    oauth_base_url = "http://127.0.0.1:$QA_PORT"; },
  { name = "iflow"; type = "iflow"; auth = "oauth"; token_file = "$ITOK";
    settings_file = "$IDIR/settings.json";
    base_url = "http://127.0.0.1:$IA_PORT/v1";
    oauth_base_url = "http://127.0.0.1:$IA_PORT";
    client_id = "iflow-test-client"; client_secret = "iflow-test-secret"; },
  { name = "q403"; type = "qwen"; auth = "oauth"; token_file = "$WORK/q403/creds.json";
    oauth_base_url = "http://127.0.0.1:$QA_PORT";
    base_url = "http://127.0.0.1:$UP_PORT/v1"; }
);
virtual_models = (
  { name = "q"; targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); },
  { name = "i"; targets = ( { provider = "iflow"; model = "qwen3-max"; } ); },
  { name = "deny"; targets = ( { provider = "q403"; model = "status-403"; } ); }
);
CONF
chmod 600 "$CONF"
out=$("$BIN/pipelined" -t -c "$CONF" 2>&1); check "-t accepts OAuth providers" 0 $?
check_nomatch "-t shows no secret" 'iflow-test-secret' "$out"
chmod 644 "$CONF"
out=$("$BIN/pipelined" -t -c "$CONF" 2>&1)
check_match "a client_secret in a world-readable file: warned" 'readable by everyone' "$out"
check_nomatch "the warning shows no secret" 'iflow-test-secret' "$out"
chmod 600 "$CONF"
start_daemon "$CONF"

echo "# Qwen: tokens from the file"
code=$(post "$(msg q)"); check "request with the file's token" 200 "$code"
check_match "answered by the API with the token" 'ok via token' "$(body)"
check "target" "qwen/qwen3-coder-plus" "$(header X-Pipeline-Target)"
check "no refresh needed" 0 "$(mstat "$QA_PORT" refresh)"
code=$(post "$(msg q hi ',"stream":true')"); check "stream with the token" 200 "$code"
check_match "stream ends with [DONE]" 'data: \[DONE\]' "$(body)"

echo "# Qwen: refresh shortly before expiry"
write_qwen at-0 rt-0 $(( $(now_ms) + 10000 ))
# The daemon looks at the file once a second; once it sees the change,
# the token is within 30 s of expiry and the next call refreshes it first.
poke_until q "$QA_PORT" refresh 1
check "one refresh" 1 "$(mstat "$QA_PORT" refresh)"
code=$(post "$(msg q)"); check "request after the refresh" 200 "$code"
acc=$(mstat "$QA_PORT" access)
check_match "token file holds the new access token" "\"access_token\": *\"$acc\"" "$(cat "$QTOK")"
check_match "and the rotated refresh token" "\"refresh_token\": *\"$(mstat "$QA_PORT" refresh_token)\"" "$(cat "$QTOK")"
check "token file mode 0600" 600 "$(stat -c %a "$QTOK")"
exp=$(grep -o '"expiry_date": *[0-9]*' "$QTOK" | cut -d: -f2 | tr -d ' ')
check "expiry moved an hour ahead" 1 $(( ${exp:-0} > $(now_ms) + 3000000 ))
check "no temporary file left" "oauth_creds.json oauth_creds.json.lock" "$(ls "$QDIR" | tr '\n' ' ' | sed 's/ $//')"

echo "# Qwen: the API refuses the token: refresh, then one retry"
r0=$(mstat "$QA_PORT" refresh)
c0=$(mstat "$QA_PORT" chat_401)
mctl "$QA_PORT" invalidate_access=1
code=$(post "$(msg q)"); check "401 answered by refresh and retry" 200 "$code"
# The worker may first try the tokens another worker wrote to the file
# (refused too), then refreshes: two or three calls.
check_match "X-Pipeline-Attempts counts the calls" '^[23]$' "$(header X-Pipeline-Attempts)"
rid=$(header X-Request-Id)
check "one more refresh" $((r0 + 1)) "$(mstat "$QA_PORT" refresh)"
line=$(grep "req=$rid " "$DLOG" | grep 'status=' | tail -1)
check_match "its log line counts the calls" 'attempts=[23] ' "$line"
check_match "and its stages show the 401" 'attempt1:qwen/qwen3-coder-plus@[0-9.]+->401' "$line"
check_match "the API saw one or two 401s" '^[12]$' "$(( $(mstat "$QA_PORT" chat_401) - c0 ))"

echo "# Qwen: a refresh answer without a new refresh token keeps the old one"
mctl "$QA_PORT" rotate=0
rt=$(mstat "$QA_PORT" refresh_token)
r0=$(mstat "$QA_PORT" refresh)
mctl "$QA_PORT" invalidate_access=1
code=$(post "$(msg q)"); check "refreshed without rotation" 200 "$code"
check "one more refresh (not rotated)" $((r0 + 1)) "$(mstat "$QA_PORT" refresh)"
check_match "the token file keeps the refresh token" "\"refresh_token\": *\"$rt\"" "$(cat "$QTOK")"
check_match "with the new access token" "\"access_token\": *\"$(mstat "$QA_PORT" access)\"" "$(cat "$QTOK")"
mctl "$QA_PORT" rotate=1

echo "# Qwen: one refresh for many concurrent requests across workers"
mctl "$QA_PORT" refresh_delay_ms=1500
r0=$(mstat "$QA_PORT" refresh)
c0=$(mstat "$QA_PORT" chat_401)
# Every worker holds the same token; the server stops taking it, so the
# burst meets 401s on all of them at once. One refresh (slowed down, so
# the others must wait for it) serves them all.
mctl "$QA_PORT" invalidate_access=1
pids=()
for n in $(seq 1 16); do
    curl -s -o "$WORK/conc.$n" -w '%{http_code}\n' --max-time 60 \
        -H 'Content-Type: application/json' --data-binary "$(msg q)" \
        "http://127.0.0.1:$DPORT/v1/chat/completions" >"$WORK/conc.$n.code" &
    pids+=($!)
done
wait "${pids[@]}"
okn=$(cat "$WORK"/conc.*.code | grep -c '^200$')
check "16 concurrent requests answered 200" 16 "$okn"
check "exactly one refresh reached the server" $((r0 + 1)) "$(mstat "$QA_PORT" refresh)"
c1=$(mstat "$QA_PORT" chat_401)
# Each call may meet the 401 twice (WORKER_AUTH_RETRIES): once with the
# old token, and once more when it was signed before its worker read the
# refreshed file, which a loaded machine makes likely.
check_match "several calls met the 401 ($((c1 - c0)))" '^([2-9]|[12][0-9]|3[0-2])$' "$((c1 - c0))"
check_match "the refresh was logged" 'refreshing its tokens \(the API refused them\)' "$(cat "$DLOG")"
mctl "$QA_PORT" refresh_delay_ms=0

echo "# Qwen: a token file replaced on disk is picked up"
r0=$(mstat "$QA_PORT" refresh)
mctl "$QA_PORT" 'access=at-manual&refresh=rt-manual'
write_qwen at-manual rt-manual "$FAR"
code=$(post "$(msg q)"); check "request with the replaced file" 200 "$code"
check "no refresh for it" "$r0" "$(mstat "$QA_PORT" refresh)"

echo "# Qwen: a revoked refresh token"
mctl "$QA_PORT" 'revoked=1&invalidate_access=1'
code=$(post "$(msg q)"); check "502 when the refresh token is dead" 502 "$code"
check_match "the error names pipelinectl login" 'pipelinectl login qwen' "$(body)"
check_match "and the log too" 'refused the refresh token.*pipelinectl -c .* login qwen' "$(cat "$DLOG")"
r0=$(mstat "$QA_PORT" refresh)
code=$(post "$(msg q)"); check "still 502 while the file is unchanged" 502 "$code"
check "and no refresh attempt" "$r0" "$(mstat "$QA_PORT" refresh)"
mctl "$QA_PORT" 'revoked=0&access=at-relogin&refresh=rt-relogin'
write_qwen at-relogin rt-relogin "$FAR"
if status_until 200 q; then ok "a new token file brings it back"
else fail "still failing after a new token file"; fi

echo "# Qwen: tokens whose resource_url is plain http off this machine"
write_qwen at-relogin rt-relogin "$FAR" http://qwen.example
if status_until 502 q; then ok "refused: the token would cross the network in clear (502)"
else fail "tokens for a plain http base off this machine were used"; fi
check_match "the log says why" 'API base URL of its tokens is not usable' "$(cat "$DLOG")"
write_qwen at-relogin rt-relogin "$FAR"
if status_until 200 q; then ok "a loopback http resource_url works again"
else fail "still failing with a loopback resource_url"; fi

echo "# iFlow: API key, refresh with Basic client auth, getUserInfo"
code=$(post "$(msg i)"); check "iFlow request with the file's apiKey" 200 "$code"
check_match "answered with the API key" 'ok via apikey' "$(body)"
write_iflow at-0 rt-0 $(( $(now_ms) + 10000 )) ik-0
poke_until i "$IA_PORT" iflow_refresh 1
check "one iFlow refresh" 1 "$(mstat "$IA_PORT" iflow_refresh)"
check "one getUserInfo" 1 "$(mstat "$IA_PORT" userinfo)"
code=$(post "$(msg i)"); check "iFlow request with the new key" 200 "$code"
check_match "iFlow token file holds the new apiKey" "\"apiKey\": *\"$(mstat "$IA_PORT" apikey)\"" "$(cat "$ITOK")"
check "iFlow token file mode 0600" 600 "$(stat -c %a "$ITOK")"

echo "# A 403 that refreshing does not cure: one refresh, not one per call"
mkdir -p "$WORK/q403"
printf '{"access_token":"%s","refresh_token":"%s","token_type":"Bearer","expiry_date":%s}\n' \
    "$(mstat "$QA_PORT" access)" "$(mstat "$QA_PORT" refresh_token)" "$FAR" >"$WORK/q403/creds.json"
chmod 600 "$WORK/q403/creds.json"
r0=$(mstat "$QA_PORT" refresh)
for n in 1 2 3 4 5 6; do
    # 502, then 503 once the target's breaker has opened
    code=$(post "$(msg deny)"); check_match "403 $n: 502 or 503" '^50[23]$' "$code"
done
check_match "at most one refresh per worker for them" "^[0-4]\$" "$(( $(mstat "$QA_PORT" refresh) - r0 ))"
check_match "and at least one" "^[1-9]" "$(( $(mstat "$QA_PORT" refresh) - r0 ))"

stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
stop_daemon
check "exit status 0" 0 "$DRC"
secrets='(^|[^a-z])(at|rt|ik)-([0-9]+|manual|relogin)|iflow-test-secret'
check_nomatch "no token or secret in the log" "$secrets" "$(cat "$DLOG")"
check_nomatch "no token in stats" "$secrets" "$stats"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary oauth
