#!/usr/bin/env bash
# test_login.sh - `pipelinectl -c CONFIG login NAME` against the mock OAuth
# server: a login after pending polls writes the mock's tokens with mode
# 0600 (replacing a looser file), polls no faster than the interval and
# 1.5x slower after slow_down, an interval of 0 still polls; expired,
# denied, a code that runs out locally, a refused client, an unreachable
# server (exit 2), and providers that cannot log in. No token is printed.
# Prints "login: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_oauth_mock OA
DEAD_PORT=$(free_port)
CONF="$WORK/pipelined.conf"
TOKENS="$WORK/qwen/creds.json"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$(free_port)";
control_socket = "$WORK/control.sock";
providers = (
  { name = "qwen"; type = "qwen"; auth = "oauth";
    oauth_base_url = "http://127.0.0.1:$OA_PORT/"; token_file = "$TOKENS"; },
  { name = "down"; type = "qwen"; auth = "oauth";
    oauth_base_url = "http://127.0.0.1:$DEAD_PORT";
    token_file = "$WORK/down.json"; },
  { name = "stranger"; type = "qwen"; auth = "oauth";
    oauth_base_url = "http://127.0.0.1:$OA_PORT"; client_id = "not-ours";
    token_file = "$WORK/stranger.json"; },
  { name = "keyed"; type = "openai"; base_url = "http://127.0.0.1:$DEAD_PORT/v1";
    api_key = "k"; },
  { name = "flow"; type = "iflow"; auth = "oauth";
    token_file = "$WORK/iflow.json"; settings_file = "$WORK/settings.json"; },
  { name = "m"; type = "mock"; }
);
virtual_models = ( { name = "default"; targets = ( { provider = "m"; model = "x"; } ); } );
CONF
chmod 600 "$CONF"

# login NAME: runs the login; its output in $OUT, exit status in $RC.
login() {
    OUT=$("$BIN/pipelinectl" -c "$CONF" login "$1" 2>&1)
    RC=$?
}
# member FILE KEY: a string or number member of a flat JSON file.
member() {
    grep -Eo "\"$2\": *(\"[^\"]*\"|[0-9]+)" "$1" | head -1 | sed -E 's/^[^:]*: *//; s/"//g'
}
# gaps: the mock's poll gaps (ms) since the last /stats/reset, one a line.
gaps() {
    curl -s "http://127.0.0.1:$OA_PORT/stats" |
        grep -Eo '"poll_gaps_ms":\[[^]]*\]' | grep -Eo '[0-9]+'
}
reset_stats() { curl -s -X POST -o /dev/null "http://127.0.0.1:$OA_PORT/stats/reset"; }
# all_at_least MS: every gap is at least MS (and there is one).
all_at_least() {
    local g n=0
    for g in $(gaps); do
        [ "$g" -ge "$1" ] || return 1
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}

echo "a login after two pending polls"
mkdir -p "$WORK/qwen"
echo '{"access_token":"stale"}' >"$TOKENS"
chmod 644 "$TOKENS"
reset_stats
check "control accepted" 200 "$(oauth_control OA 'pending=2&device=ok&interval=1')"
login qwen
check "exit 0" 0 "$RC"
check_match "prints the verification URL" "http://127.0.0.1:$OA_PORT/authorize\\?user_code=UC-" "$OUT"
check_match "prints the user code" "code UC-[0-9]+" "$OUT"
check_match "says where the tokens went" "logged in: tokens written to $TOKENS" "$OUT"
check "three polls" 3 "$(oauth_stat OA polls)"
ACCESS=$(oauth_stat OA access)
REFRESH=$(oauth_stat OA refresh_token)
check "access_token is the mock's" "$ACCESS" "$(member "$TOKENS" access_token)"
check "refresh_token is the mock's" "$REFRESH" "$(member "$TOKENS" refresh_token)"
check "resource_url kept" "http://127.0.0.1:$OA_PORT" "$(member "$TOKENS" resource_url)"
check "token_type" "Bearer" "$(member "$TOKENS" token_type)"
expiry=$(member "$TOKENS" expiry_date)
now_ms=$(( $(date +%s) * 1000 ))
if [ -n "$expiry" ] && [ "$expiry" -gt "$now_ms" ]; then ok "expiry_date in the future"
else fail "expiry_date [$expiry] not after $now_ms"; fi
check "mode 0600 (was 0644)" 600 "$(stat -c %a "$TOKENS")"
check "no temporary file left (the refresh lock stays)" "" "$(ls "$WORK/qwen" | grep -v '^creds.json$' | grep -v '^creds.json.lock$')"

check_nomatch "no access token printed" "$ACCESS" "$OUT"
check_nomatch "no refresh token printed" "$REFRESH" "$OUT"
if all_at_least 1000; then ok "polls 1 s apart"; else fail "poll gaps: $(gaps | tr '\n' ' ')"; fi
echo "a login waits for a refresh that holds the token file's lock"
reset_stats
check "control accepted" 200 "$(oauth_control OA 'pending=0&device=ok&interval=1')"
flock -x "$TOKENS.lock" sleep 3 &
holder=$!
wait_until 5 sh -c "! flock -n '$TOKENS.lock' true"
t0=$(date +%s%N)
login qwen
t1=$(date +%s%N)
wait "$holder"
check "exit 0" 0 "$RC"
check_match "it waited for the lock (ms)" '^([3-9][0-9]{3}|[1-9][0-9]{4,})$' "$(( (t1 - t0) / 1000000 + 500 ))"

echo "a new directory for the token file"
rm -rf "$WORK/qwen"
login qwen
check "exit 0" 0 "$RC"
check "directory made 0700" 700 "$(stat -c %a "$WORK/qwen")"
check "file 0600" 600 "$(stat -c %a "$TOKENS")"

echo "slow_down"
reset_stats
oauth_control OA 'slow_down=1&pending=1&interval=1' >/dev/null
login qwen
check "exit 0 after slow_down" 0 "$RC"
first=$(gaps | head -1)
if [ -n "$first" ] && [ "$first" -ge 1500 ]; then ok "the gap after slow_down is >= 1.5 s ($first ms)"
else fail "gap after slow_down: [$first] ms"; fi
if all_at_least 1500; then ok "and stays 1.5 s"; else fail "poll gaps: $(gaps | tr '\n' ' ')"; fi

echo "an interval of 0"
reset_stats
oauth_control OA 'pending=2&interval=0' >/dev/null
start=$(date +%s%N)
login qwen
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "exit 0" 0 "$RC"
if all_at_least 200; then ok "still 200 ms between polls"; else fail "poll gaps: $(gaps | tr '\n' ' ')"; fi
if [ "$ms" -lt 5000 ]; then ok "and quick ($ms ms)"; else fail "took $ms ms"; fi
oauth_control OA 'interval=1' >/dev/null

echo "expired, denied"
oauth_control OA 'device=expired' >/dev/null
login qwen
check "expired: exit 1" 1 "$RC"
check_match "expired: says so" "expired" "$OUT"
oauth_control OA 'device=denied' >/dev/null
login qwen
check "denied: exit 1" 1 "$RC"
check_match "denied: says so" "denied" "$OUT"

echo "the code runs out while pending"
oauth_control OA 'device=ok&pending=100&device_expires_in=2' >/dev/null
start=$(date +%s%N)
login qwen
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "exit 1" 1 "$RC"
check_match "says it expired" "expired" "$OUT"
if [ "$ms" -ge 1900 ] && [ "$ms" -lt 10000 ]; then ok "after the code's 2 s ($ms ms)"
else fail "gave up after $ms ms"; fi
oauth_control OA 'pending=0&device_expires_in=300' >/dev/null

echo "refused and unreachable servers"
login stranger
check "unknown client_id: exit 1" 1 "$RC"
check_match "the server's error shown" "invalid_request" "$OUT"
check "no token file" no "$(test -e "$WORK/stranger.json" && echo yes || echo no)"
login down
check "unreachable: exit 2" 2 "$RC"
check_match "names the URL" "cannot reach .*http://127.0.0.1:$DEAD_PORT/api/v1/oauth2/device/code" "$OUT"

echo "providers that cannot log in"
login nosuch
check "unknown provider: exit 1" 1 "$RC"
check_match "says so" 'no provider named "nosuch"' "$OUT"
login keyed
check "API-key provider: exit 1" 1 "$RC"
check_match "says it is not OAuth" "does not use OAuth" "$OUT"
login m
check "mock provider: exit 1" 1 "$RC"
login flow
check "iFlow provider: exit 1" 1 "$RC"
check_match "points to the iFlow CLI" "iFlow CLI" "$OUT"
OUT=$("$BIN/pipelinectl" login qwen 2>&1); RC=$?
check "login without -c: exit 1" 1 "$RC"
check_match "with a usage line" "usage: pipelinectl -c CONFIG login PROVIDER" "$OUT"

summary login
