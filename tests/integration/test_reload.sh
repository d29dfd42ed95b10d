#!/usr/bin/env bash
# test_reload.sh - SIGHUP and "reload": a valid file is applied with no
# request dropped (a call in flight finishes, new workers serve the new
# upstream, breaker state carries over); a broken file is refused with
# FILE:LINE and the old one keeps serving; a change that needs a restart
# is refused and says so. Prints "reload: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream A
start_upstream B
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
write_conf() {  # write_conf UPSTREAM_PORT [EXTRA LINE]
    cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
${2:-}
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$1/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
                   { name = "slow"; targets = ( { provider = "up"; model = "slow-2000"; } ); } );
CONF
    chmod 600 "$CONF"
}
count() { curl -s "http://127.0.0.1:$1/stats" | grep -o '[0-9]*'; }
pids() { "$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o '"pids":\[[0-9,]*\]'; }

write_conf "$A_PORT"
start_daemon "$CONF"
check "served by A" 200 "$(post "$(msg default)")"
before=$(pids)

echo "SIGHUP with a valid file: applied, nothing dropped"
post "$(msg slow)" >"$WORK/inflight.code" &
cpid=$!
a_busy() { [ "$(count "$A_PORT")" -ge 2 ]; }
wait_until 10 a_busy
write_conf "$B_PORT" "workers = 3;"
kill -HUP "$DPID"
reloaded() { grep -q 'configuration reloaded' "$DLOG"; }
wait_until 10 reloaded
wait "$cpid"
check "the call in flight finished" 200 "$(cat "$WORK/inflight.code")"
three() { [ "$("$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o '"count":[0-9]*' | cut -d: -f2)" = 3 ]; }
if wait_until 10 three; then ok "workers = 3 applied"; else fail "worker count not applied"; fi
check_nomatch "all new workers" "$before" "$(pids)"
curl -s -X POST "http://127.0.0.1:$B_PORT/stats/reset" >/dev/null
check "served after the reload" 200 "$(post "$(msg default)")"
check "by the new upstream B" 1 "$(count "$B_PORT")"

echo "a broken file is refused; the old one keeps serving"
printf 'listen = "127.0.0.1:%s";\nworkers = ;\n' "$DPORT" >"$CONF"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload); rc=$?
check "reload of a broken file exits 1" 1 "$rc"
check_match "and names FILE:LINE" "\"error\":\"$CONF:2: " "$out"
check_match "logged with FILE:LINE" "reload refused.*$CONF:2:" "$(cat "$DLOG")"
check "still serving" 200 "$(post "$(msg default)")"

echo "a change that needs a restart is refused"
write_conf "$B_PORT" "queue_capacity = 10;"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload); rc=$?
check "exit 1" 1 "$rc"
check_match "says what needs a restart" "reload cannot change 'queue_capacity'" "$out"
check "still serving" 200 "$(post "$(msg default)")"

echo "pipelinectl reload with a valid file"
write_conf "$A_PORT"
out=$("$BIN/pipelinectl" -s "$SOCK" --json reload)
check "reload ok" '{"ok":true}' "$out"
curl -s -X POST "http://127.0.0.1:$A_PORT/stats/reset" >/dev/null
check "served" 200 "$(post "$(msg default)")"
check "by A again" 1 "$(count "$A_PORT")"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary reload
