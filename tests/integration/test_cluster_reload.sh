#!/usr/bin/env bash
# test_cluster_reload.sh - cluster mode across a reload that gives a
# provider's health entry to another provider: a real redis-server on a
# free loopback port, two daemons. gw-b probes provider pb (its upstream
# failing: unhealthy); gw-a has only px, probed a few times. A reload
# of gw-a replaces px by pb, which takes px's entry in the segment: gw-a
# must not publish pb's fresh "unknown" as a probe result (px's probe
# count is not pb's), which would make pb unknown on gw-b, where it is
# unhealthy. Then a target slot that a reload frees and a later one
# gives to another target: gw-a won the half-open trial of target X (no
# request came to try it), X leaves gw-a's configuration, Y takes its
# slot; gw-a must not take Y's fresh closed breaker for its trial's
# success and close Y on gw-b, where it is open; and gw-a learns that
# Y, new to it, is open (from Redis, as an instance that joins late).
# Prints
# "cluster_reload: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster_reload
. tests/integration/cluster_lib.sh

INTERVAL=300
[ -n "${VALGRIND:-}" ] && INTERVAL=1000

RPORT=$(free_port)
start_redis redis "$RPORT"
start_upstream UX
start_upstream UB
start_upstream UC
# gw-a's pb after the reload: an upstream that never answers (stopped),
# so that gw-a's own first probe of pb takes its whole timeout and what
# gw-a publishes at once can only be px's count taken for pb's.
start_upstream UD
UD_PID=${PIDS[-1]}
PREFIX="l$$:"

# provider NAME UPSTREAM_PORT: a provider entry with a health check.
provider() {
    printf '{ name = "%s"; type = "openai"; base_url = "http://127.0.0.1:%s/v1"; api_key = "sk-up"; health_check = { interval_ms = %s; timeout_ms = %s; unhealthy_after = 1; healthy_after = 1; }; }' \
        "$1" "$2" "$INTERVAL" "$INTERVAL"
}
# write_conf NAME PORT INSTANCE PROVIDER_NAME UPSTREAM_PORT [RECOVERY_MS
# MODEL]: with MODEL, a provider "up" too and a virtual model "v" on
# up/MODEL.
write_conf() {
    local more="" vm=""
    [ -n "${7:-}" ] && {
        more=", { name = \"up\"; type = \"openai\"; base_url = \"http://127.0.0.1:$UC_PORT/v1\"; api_key = \"sk-up\"; }"
        vm=", { name = \"v\"; targets = ( { provider = \"up\"; model = \"$7\"; } ); }"
    }
    cat >"$WORK/$1.conf" <<CONF
listen = "127.0.0.1:$2";
control_socket = "$WORK/$1.sock";
workers = 1;
log_level = "info";
retry = { max_retries = 0; base_delay_ms = 1; max_delay_ms = 5; jitter = "none"; };
circuit_breaker = { failure_threshold = 2; recovery_timeout_ms = ${6:-600000}; };
providers = ( $(provider "$4" "$5")$more );
virtual_models = ( { name = "m"; targets = ( { provider = "$4"; model = "fast"; } ); }$vm );
cluster = { redis = "127.0.0.1:$RPORT"; key_prefix = "$PREFIX"; instance = "$3"; };
CONF
    chmod 600 "$WORK/$1.conf"
}
both() { ctl "$1" stats | grep -q '"cluster":{"connected":true,"instances":2}'; }
health_of() {  # health_of GW TARGET
    ctl "$1" stats | grep -o "\"name\":\"$2\",[^}]*" | grep -o '"health":"[a-z_]*"' |
        cut -d'"' -f4
}
is_health() { [ "$(health_of "$1" "$2")" = "$3" ]; }
ux_probes() { curl -s "http://127.0.0.1:$UX_PORT/stats/models" | grep -o '"models":[0-9]*' | cut -d: -f2; }
ux_probed() { [ "$(ux_probes)" -ge 2 ]; }

gwa_DPORT=$(free_port)
gwb_DPORT=$(free_port)
while [ "$gwb_DPORT" = "$gwa_DPORT" ]; do gwb_DPORT=$(free_port); done
write_conf gwa "$gwa_DPORT" gw-a px "$UX_PORT"
write_conf gwb "$gwb_DPORT" gw-b pb "$UB_PORT"
curl -s -X POST "http://127.0.0.1:$UB_PORT/stats/models?fail=1" >/dev/null
start_gw gwa
start_gw gwb
if wait_until 20 both gwa && wait_until 20 both gwb; then ok "both connected"
else fail "not connected: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"; fi
if wait_until 20 is_health gwb pb/fast unhealthy; then ok "gw-b finds pb unhealthy"
else fail "pb on gw-b: $(health_of gwb pb/fast)"; fi
if wait_until 20 ux_probed; then ok "gw-a probed px ($(ux_probes) times)"
else fail "px never probed"; fi

echo "gw-a's reload: pb takes px's place"
kill -STOP "$UD_PID"
write_conf gwa "$gwa_DPORT" gw-a pb "$UD_PORT"
check "reload" '{"ok":true}' "$(ctl gwa reload)"
# gw-a learns pb's state from gw-b's next probes (one instance probes
# pb for both): by then gw-a has polled many times since the reload.
if wait_until 20 is_health gwa pb/fast unhealthy; then ok "gw-a sees pb unhealthy, as gw-b found it"
else fail "pb on gw-a: $(health_of gwa pb/fast)"; fi
check "gw-a published no result for pb (it never probed it)" 0 \
    "$(grep -c 'health of provider pb: unknown (probed by instance gw-a)' "$WORK/gwb.log")"
check "pb still unhealthy on gw-b" unhealthy "$(health_of gwb pb/fast)"
kill -CONT "$UD_PID"

echo "a target slot freed by a reload and taken by another target"
state_of() {  # state_of GW TARGET
    ctl "$1" stats | grep -o "\"name\":\"$2\",[^}]*" | grep -o '"state":"[a-z_]*"' |
        cut -d'"' -f4
}
is_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
chat() {  # chat GW MODEL
    local port_var="${1}_DPORT"
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$(msg "$2")" "http://127.0.0.1:${!port_var}/v1/chat/completions"
}
# exited N: gw-a's workers of earlier configurations gone (N exits):
# the slots they held are free at the next reload.
exited() { [ "$(grep -c 'worker [0-9]* (pid [0-9]*) exited' "$WORK/gwa.log")" -ge "$1" ]; }
X=up/status-500
Y=up/status-502
# gw-b: Y, open for long (no trial of its own in the test's time).
write_conf gwb "$gwb_DPORT" gw-b pb "$UB_PORT" 600000 status-502
check "gw-b: reload with Y" '{"ok":true}' "$(ctl gwb reload)"
chat gwb v >/dev/null; chat gwb v >/dev/null
check "Y open on gw-b" open "$(state_of gwb "$Y")"
wait_until 20 exited 1
# gw-a: X, whose half-open time comes in a second.
write_conf gwa "$gwa_DPORT" gw-a pb "$UB_PORT" 1000 status-500
check "gw-a: reload with X" '{"ok":true}' "$(ctl gwa reload)"
chat gwa v >/dev/null; chat gwa v >/dev/null
check "X open on gw-a" open "$(state_of gwa "$X")"
trial_won() { [ "$(redis-cli -p "$RPORT" get "${PREFIX}halfopen:$X")" = gw-a ]; }
if wait_until 20 trial_won; then ok "gw-a holds X's trial lease (no request comes to try it)"
else fail "X's trial lease: $(redis-cli -p "$RPORT" get "${PREFIX}halfopen:$X")"; fi
wait_until 20 exited 2
write_conf gwa "$gwa_DPORT" gw-a pb "$UB_PORT" 1000
check "gw-a: reload without X" '{"ok":true}' "$(ctl gwa reload)"
wait_until 20 exited 3
write_conf gwa "$gwa_DPORT" gw-a pb "$UB_PORT" 1000 status-502
T=$(( $(date +%s%N) / 1000000 ))
check "gw-a: reload with Y (in X's slot)" '{"ok":true}' "$(ctl gwa reload)"
# gw-a's heartbeats after the reload: its polls have run since.
beat_after() {
    local seen
    seen=$(ctl gwb cluster | grep -o '"instance":"gw-a",[^}]*' |
        grep -o '"last_seen_ms":[0-9]*' | cut -d: -f2)
    [ -n "$seen" ] && [ "$seen" -gt $((T + 200)) ]
}
wait_until 20 beat_after
check "gw-a closed no breaker on gw-b" 0 \
    "$(grep -c "circuit breaker of $Y closed by instance gw-a" "$WORK/gwb.log")"
check "Y still open on gw-b" open "$(state_of gwb "$Y")"
# Y, new to gw-a, was open in Redis before: gw-a reads it as at a
# connection (it never called Y's upstream).
if wait_until 10 is_state gwa "$Y" open; then ok "gw-a learns that Y is open"
else fail "Y on gw-a: $(state_of gwa "$Y")"; fi

rcs=""
for g in gwa gwb; do
    pid_var="${g}_PID"
    kill -TERM "${!pid_var}"; wait "${!pid_var}"; rcs="$rcs $?"
done
check "both exit 0 on SIGTERM" " 0 0" "$rcs"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$WORK"/gw*.log)"

summary cluster_reload
