#!/usr/bin/env bash
# test_health.sh - active health checks end to end: one probe per
# provider per interval with several workers (the mock upstream counts
# its GET /v1/models), signed with the provider's key or OAuth token;
# traffic skipping an unhealthy provider's target with no client request
# spent and coming back after healthy_after good probes; an OAuth
# provider's refused probe refreshing its tokens; a model whose
# targets are all unhealthy answers 503 at once; stats, /metrics and
# /health; one log line per change; the state kept across a reload; a
# health_check with timeout_ms over interval_ms refused by -t.
# Prints "health: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

# A probe may take its whole interval: on a loaded machine (or under
# valgrind, whose workers start slowly) a tight timeout would make
# healthy providers flap.
INTERVAL=200
[ -n "${VALGRIND:-}" ] && INTERVAL=500
start_upstream A
start_upstream B
start_oauth_mock QA
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
QTOK="$WORK/qwen/oauth_creds.json"
mkdir -p "$WORK/qwen"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
printf '{"access_token":"at-0","refresh_token":"rt-0","token_type":"Bearer","resource_url":"http://127.0.0.1:%s","expiry_date":%s}\n' \
    "$QA_PORT" $(( $(now_ms) + 3600000 )) >"$QTOK"
chmod 600 "$QTOK"
HC="health_check = { interval_ms = $INTERVAL; timeout_ms = $INTERVAL; unhealthy_after = 2; healthy_after = 2; };"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 3;
log_level = "info";
retry = { max_retries = 1; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
providers = (
  { name = "a"; type = "openai"; base_url = "http://127.0.0.1:$A_PORT/v1";
    api_key = "sk-health-a"; $HC },
  { name = "b"; type = "openai"; base_url = "http://127.0.0.1:$B_PORT/v1";
    api_key = "sk-health-b"; $HC },
  { name = "plain"; type = "openai"; base_url = "http://127.0.0.1:$A_PORT/v1";
    api_key = "sk-plain"; },
  { name = "m"; type = "mock"; health_check = { interval_ms = $INTERVAL; timeout_ms = 100; }; },
  { name = "q"; type = "qwen"; auth = "oauth"; token_file = "$QTOK";
    oauth_base_url = "http://127.0.0.1:$QA_PORT"; $HC }
);
virtual_models = (
  { name = "pair"; targets = ( { provider = "a"; model = "fast"; },
                               { provider = "b"; model = "fast"; } ); },
  { name = "solo"; targets = ( { provider = "a"; model = "fast"; } ); },
  { name = "sim"; targets = ( { provider = "m"; model = "echo"; } ); },
  { name = "qm"; targets = ( { provider = "q"; model = "qwen3-coder-plus"; } ); }
);
CONF
chmod 600 "$CONF"

echo "configuration"
BAD="$WORK/bad.conf"
sed "s/timeout_ms = $INTERVAL; unhealthy/timeout_ms = $((INTERVAL + 1)); unhealthy/" "$CONF" >"$BAD"
out=$("$BIN/pipelined" -t -c "$BAD" 2>&1); rc=$?
check "timeout_ms over interval_ms refused" 1 "$rc"
check_match "FILE:LINE names it" "bad.conf:[0-9]+: .*timeout_ms" "$out"
sed 's/unhealthy_after = 2;/unhealthy_after = 2; every = 3;/' "$CONF" >"$BAD"
out=$("$BIN/pipelined" -t -c "$BAD" 2>&1)
check_match "an unknown health_check key refused" "bad.conf:[0-9]+: .*every" "$out"

start_daemon "$CONF"

models() {  # models PORT KEY: the mock upstream's /stats/models member
    curl -s "http://127.0.0.1:$1/stats/models" | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
chats() { curl -s "http://127.0.0.1:$1/stats" | grep -o '[0-9]*'; }
# health_of TARGET VMODEL: the target's "health" in stats
health_of() {
    "$BIN/pipelinectl" -s "$SOCK" --json stats |
        grep -o "\"name\":\"$1\",\"virtual_model\":\"$2\"[^}]*" |
        grep -o '"health":"[a-z]*"' | cut -d'"' -f4
}
is_health() { [ "$(health_of "$1" "$2")" = "$3" ]; }
metric() { curl -s "http://127.0.0.1:$DPORT/metrics" | grep -F "$1" | awk '{print $2}'; }
logged() { grep -c "health of provider $1: $2" "$DLOG"; }

echo "one probe per provider per interval, with three workers"
wait_until 20 is_health a/fast pair healthy
check "a probed provider turns healthy" healthy "$(health_of a/fast pair)"
curl -s -X POST "http://127.0.0.1:$A_PORT/stats/models?reset=1" >/dev/null
t0=$(now_ms)
enough() { [ "$(models "$A_PORT" models)" -ge 6 ]; }
wait_until 30 enough
elapsed=$(( $(now_ms) - t0 ))
n=$(models "$A_PORT" models)
# One claim per interval; +3 for a round at each edge of the window and
# the jitter of a probe's travel time (claims are an interval apart, the
# arrivals at the mock less exactly). Three workers each probing on their
# own would make three times as many.
most=$(( elapsed / INTERVAL + 3 ))
if [ "$n" -ge 6 ] && [ "$n" -le "$most" ]; then
    ok "$n probes of a in ${elapsed} ms (at most $most)"
else
    fail "$n probes of a in ${elapsed} ms (want 6..$most)"
fi
check "every probe carried the provider's key" "$(models "$A_PORT" models)" "$(models "$A_PORT" authorized)"
check "the mock provider is healthy" healthy "$(health_of m/echo sim)"
mok=$(metric 'pipeline_health_checks_total{provider="m",result="ok"}')
check_match "the mock's simulated probes are counted" '^[1-9][0-9]*$' "$mok"
check "a provider without health_check has no series" "" "$(metric 'provider="plain"')"

echo "an OAuth provider is probed with its token"
qok() { [ "$(oauth_stat QA models)" -ge 1 ]; }
wait_until 20 qok
check_match "mock_oauth saw probes" '^[1-9][0-9]*$' "$(oauth_stat QA models)"
check "none refused" 0 "$(oauth_stat QA models_401)"
check "the OAuth provider is healthy" healthy "$(health_of q/qwen3-coder-plus qm)"
# Its access token stops working: a refused probe marks the tokens for a
# refresh, as a refused call would, and probes go on with the new ones.
oauth_control QA invalidate_access=1 >/dev/null
refreshed() { [ "$(oauth_stat QA refresh)" -ge 1 ]; }
wait_until 30 refreshed
check_match "a refused probe led to a refresh" '^[1-9]' "$(oauth_stat QA refresh)"
check_match "the refusal was seen" '^[1-9]' "$(oauth_stat QA models_401)"
q_before=$(oauth_stat QA models)
q_more() { [ "$(oauth_stat QA models)" -gt "$q_before" ]; }
wait_until 30 q_more
wait_until 30 is_health q/qwen3-coder-plus qm healthy
check "probes pass with the new token" healthy "$(health_of q/qwen3-coder-plus qm)"

echo "an unhealthy provider's target is skipped"
wait_until 20 is_health b/fast pair healthy
# Lines logged so far (a slow start may have flapped): each change below
# must add exactly one.
b_down=$(logged b unhealthy)
b_up=$(logged b healthy)
curl -s -X POST "http://127.0.0.1:$B_PORT/stats/models?fail=1" >/dev/null
wait_until 20 is_health b/fast pair unhealthy
check "b turns unhealthy" unhealthy "$(health_of b/fast pair)"
curl -s -X POST "http://127.0.0.1:$B_PORT/stats/reset" >/dev/null
bad=0
for _ in 1 2 3 4 5 6; do
    [ "$(post "$(msg pair)")" = 200 ] || bad=$((bad + 1))
done
check "every request answered" 0 "$bad"
check "none reached b" 0 "$(chats "$B_PORT")"
check_match "/health names it" '"unhealthy":\["b/fast"\]' "$(curl -s "http://127.0.0.1:$DPORT/health")"
check "pipeline_target_healthy 0" 0 "$(metric 'pipeline_target_healthy{target="b/fast",virtual_model="pair"}')"
check "pipeline_target_healthy 1 for a" 1 "$(metric 'pipeline_target_healthy{target="a/fast",virtual_model="pair"}')"
check "/metrics passes the format checker" ok "$(curl -s "http://127.0.0.1:$DPORT/metrics" | awk -f tests/integration/promcheck.awk)"
fails_now=$(metric 'pipeline_health_checks_total{provider="b",result="fail"}')
more_fails() { [ "$(metric 'pipeline_health_checks_total{provider="b",result="fail"}')" -ge $((fails_now + 2)) ]; }
wait_until 20 more_fails
check "failed probes counted" 0 "$(( $(metric 'pipeline_health_checks_total{provider="b",result="fail"}') < 4 ))"
check "the change logged once" $((b_down + 1)) "$(logged b unhealthy)"

echo "the state survives a reload"
nreload=$(grep -c 'configuration reloaded' "$DLOG")
kill -HUP "$DPID"
reloaded() { [ "$(grep -c 'configuration reloaded' "$DLOG")" -gt "$nreload" ]; }
wait_until 30 reloaded
check "still unhealthy after the reload" unhealthy "$(health_of b/fast pair)"
check "fail counter kept" 0 "$(( $(metric 'pipeline_health_checks_total{provider="b",result="fail"}') < 4 ))"

echo "healthy_after good probes bring it back"
curl -s -X POST "http://127.0.0.1:$B_PORT/stats/models?fail=0" >/dev/null
wait_until 20 is_health b/fast pair healthy
check "b healthy again" healthy "$(health_of b/fast pair)"
curl -s -X POST "http://127.0.0.1:$B_PORT/stats/reset" >/dev/null
for _ in 1 2 3 4; do post "$(msg pair)" >/dev/null; done
check_match "traffic reaches b again" '^[1-9]' "$(chats "$B_PORT")"
check "recovery logged once" $((b_up + 1)) "$(logged b healthy)"
check "unhealthy still logged once" $((b_down + 1)) "$(logged b unhealthy)"
check_match "/health lists none" '"unhealthy":\[\]' "$(curl -s "http://127.0.0.1:$DPORT/health")"

echo "every target unhealthy: 503 at once"
curl -s -X POST "http://127.0.0.1:$A_PORT/stats/models?fail=1" >/dev/null
wait_until 20 is_health a/fast solo unhealthy
curl -s -X POST "http://127.0.0.1:$A_PORT/stats/reset" >/dev/null
t0=$(now_ms)
code=$(post "$(msg solo)")
took=$(( $(now_ms) - t0 ))
check "503" 503 "$code"
check_match "circuit_open, provider unhealthy" 'unhealthy.*"code":"circuit_open"' "$(body)"
check_match "Retry-After" '^[0-9]+$' "$(header Retry-After)"
check "no upstream call spent" 0 "$(chats "$A_PORT")"
AT_ONCE_MS=1000
[ -n "${VALGRIND:-}" ] && AT_ONCE_MS=5000
if [ "$took" -lt "$AT_ONCE_MS" ]; then ok "answered in ${took} ms"; else fail "took ${took} ms"; fi
curl -s -X POST "http://127.0.0.1:$A_PORT/stats/models?fail=0" >/dev/null
wait_until 20 is_health a/fast solo healthy
check "solo answers again" 200 "$(post "$(msg solo)")"
check_nomatch "no key in the log" 'sk-health|at-[0-9]|rt-[0-9]' "$(cat "$DLOG")"

stop_daemon
check "clean exit" 0 "$DRC"
summary health
