#!/usr/bin/env bash
# test_ops.sh - running it as an operator does: --help and --version,
# -d with a pid file (and its refusal while the pid lives), -d under a
# caller that reads its output to the end, -d on a busy port saying why
# on stderr, readiness and stopping notifications to $NOTIFY_SOCKET,
# SIGTTIN/SIGTTOU, SIGUSR1 after log rotation, a stale control socket
# replaced, SIGQUIT. Prints "ops: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
LOGF="$WORK/pipelined.log"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
log_file = "$LOGF";
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
                   { name = "slow"; targets = ( { provider = "up"; model = "slow-5000"; } ); },
                   { name = "flaky"; targets = ( { provider = "up"; model = "fail2-500"; } ); },
                   { name = "twin1"; targets = ( { provider = "up"; model = "slow-200"; } ); },
                   { name = "twin2"; targets = ( { provider = "up"; model = "slow-200"; } ); } );
CONF
chmod 600 "$CONF"
workers() { "$BIN/pipelinectl" -s "$SOCK" --json stats | grep -o '"count":[0-9]*' | cut -d: -f2; }

echo "--help and --version"
out=$("$BIN/pipelined" --help 2>&1); rc=$?
check "--help exits 0" 0 "$rc"
check "--help prints what -h prints" "$("$BIN/pipelined" -h 2>&1)" "$out"
out=$("$BIN/pipelined" --version 2>&1); rc=$?
check "--version exits 0" 0 "$rc"
check "--version prints what -V prints" "$("$BIN/pipelined" -V 2>&1)" "$out"

echo "a stale control socket from a crash is replaced"
"$BIN/notify_sink" "$SOCK" 1 >/dev/null &   # leaves a socket file behind
wait $!
touch "$SOCK"
test -e "$SOCK" && ok "stale socket file present" || fail "no stale socket file"

echo "-d, the pid file and notifications"
"$BIN/notify_sink" "$WORK/notify.sock" 60 >"$WORK/notify.out" &
PIDS+=($!)
wait_until 10 test -S "$WORK/notify.sock"
NOTIFY_SOCKET="$WORK/notify.sock" ${VALGRIND:-} "$BIN/pipelined" -d -c "$CONF" -p "$WORK/pid"
check "-d exits 0 once serving" 0 "$?"
DPID=$(cat "$WORK/pid")
PIDS+=($DPID)
check "pid file holds a live pid" yes "$(kill -0 "$DPID" 2>/dev/null && echo yes)"
check "the control socket answers" 2 "$(workers)"
check "served after -d" 200 "$(post "$(msg default)")"
notified() { grep -q "READY=1" "$WORK/notify.out"; }
if wait_until 10 notified; then ok "READY=1 sent"; else fail "no READY=1"; fi
check_match "MAINPID is the master" "MAINPID=$DPID" "$(cat "$WORK/notify.out")"
"$BIN/pipelined" -d -c "$CONF" -p "$WORK/pid" 2>"$WORK/second.err"
check "a second -d on a live pid file exits 1" 1 "$?"
check_match "and says why" "pid $DPID is running" "$(cat "$WORK/second.err")"

echo "-d under a caller that reads its output to the end"
# $(...), an ssh command or a supervisor reading our output wait for its
# end: nothing the daemon leaves running may hold it. Without valgrind,
# which keeps a copy of stderr open for its own reports.
DPORT2=$(free_port)
sed -e "s|:$DPORT\"|:$DPORT2\"|" -e "s|$SOCK|$WORK/control2.sock|" \
    -e "s|$LOGF|$WORK/second.log|" "$CONF" >"$WORK/second.conf"
chmod 600 "$WORK/second.conf"
{ "$BIN/pipelined" -d -c "$WORK/second.conf" -p "$WORK/pid2" 2>&1; echo "rc=$?"; } |
    cat >"$WORK/captured" &
CAPTURE=$!
captured() { ! kill -0 "$CAPTURE" 2>/dev/null; }
if wait_until 20 captured; then ok "the caller gets its output's end at once"
else fail "the caller still waits after 20 s"; fi
check "exit 0 and nothing printed" "rc=0" "$(cat "$WORK/captured")"
DPID2=$(cat "$WORK/pid2" 2>/dev/null)
[ -n "$DPID2" ] && PIDS+=("$DPID2")
check "the daemon serves" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT2/health")"
kill -TERM "$DPID2" 2>/dev/null
gone2() { ! kill -0 "$DPID2" 2>/dev/null; }
wait_until 20 gone2

echo "-d on a busy port, logging to a file: why, on stderr"
sed -e "s|$SOCK|$WORK/control3.sock|" -e "s|$LOGF|$WORK/third.log|" "$CONF" \
    >"$WORK/third.conf"
chmod 600 "$WORK/third.conf"
${VALGRIND:-} "$BIN/pipelined" -d -c "$WORK/third.conf" -p "$WORK/pid3" \
    2>"$WORK/third.err"
check "exit 1" 1 "$?"
check_match "stderr says why" "cannot listen on 127.0.0.1:$DPORT: Address already in use" \
    "$(cat "$WORK/third.err")"
check "the first daemon still serves" 200 "$(post "$(msg default)")"

echo "one provider/model in two virtual models: each keeps its own numbers"
check "a call through twin2" 200 "$(post "$(msg twin2)")"
twin() {  # twin NAME: its target's stats object
    "$BIN/pipelinectl" -s "$SOCK" --json stats |
        grep -o "{\"name\":\"up/slow-200\",\"virtual_model\":\"$1\"[^}]*}"
}
check_match "twin2 counts it, with its latency" '"requests":1,.*"p50":[1-9][0-9]{2}' "$(twin twin2)"
check_match "twin1 has neither" '"requests":0,.*"p50":0\.0,' "$(twin twin1)"

echo "SIGTTIN / SIGTTOU"
kill -TTIN "$DPID"
three() { [ "$(workers)" = 3 ]; }
if wait_until 10 three; then ok "SIGTTIN: 3 workers"; else fail "SIGTTIN: $(workers) workers"; fi
# One at a time: the kernel merges a signal sent again while pending.
two() { [ "$(workers)" = 2 ]; }
one() { [ "$(workers)" = 1 ]; }
kill -TTOU "$DPID"; wait_until 10 two
kill -TTOU "$DPID"; wait_until 10 one
kill -TTOU "$DPID"; sleep 0.5
if wait_until 10 one; then ok "SIGTTOU x3: never below 1"; else fail "SIGTTOU: $(workers) workers"; fi
check "serving on one worker" 200 "$(post "$(msg default)")"

echo "SIGUSR1 after log rotation"
mv "$LOGF" "$LOGF.1"
kill -USR1 "$DPID"
reopened() { test -s "$LOGF"; }
if wait_until 10 reopened; then ok "a new log file after SIGUSR1"; else fail "log not reopened"; fi
post "$(msg default)" >/dev/null
check_match "requests log to the new file" 'model=default' "$(cat "$LOGF")"

echo "one line per request at info level"
code=$(post "$(msg flaky)" -H 'X-Request-Id: ops-tracked'); check "two 500s, then 200" 200 "$code"
wait_until 10 grep -q 'req=ops-tracked ' "$LOGF"
check_match "id, model, target, status, attempts, ms, first byte; no stages" \
    "info pid=$DPID req=ops-tracked model=flaky target=up/fail2-500 status=200 attempts=3 ms=[0-9]+\.[0-9] first_byte_ms=[0-9]+\.[0-9] prompt_tokens=[0-9]+ completion_tokens=[0-9]+\$" \
    "$(grep 'req=ops-tracked ' "$LOGF")"
check "one line only" 1 "$(grep -c 'req=ops-tracked ' "$LOGF")"
code=$(post "$(msg nosuch)" -H 'X-Request-Id: ops-404'); check "unknown model 404" 404 "$code"
wait_until 10 grep -q 'req=ops-404 ' "$LOGF"
check_match "a request the master answers alone has its line" \
    "req=ops-404 model=nosuch target=- status=404 attempts=0 ms=[0-9.]+ first_byte_ms=[0-9.]+ error=model_not_found\$" \
    "$(grep 'req=ops-404 ' "$LOGF")"

echo "SIGTERM under a service manager"
kill -TERM "$DPID"
gone() { ! kill -0 "$DPID" 2>/dev/null; }
wait_until 20 gone
if wait_until 5 grep -q STOPPING=1 "$WORK/notify.out"; then ok "STOPPING=1 sent"; else fail "no STOPPING=1"; fi
check "pid file removed" no "$(test -e "$WORK/pid" && echo yes || echo no)"

echo "SIGQUIT stops at once"
DLOG="$WORK/daemon.log"
start_daemon "$CONF"
post "$(msg slow)" >/dev/null &
cpid=$!
busy() { [ "$(curl -s "http://127.0.0.1:$UP_PORT/stats" | grep -o '[0-9]*')" -ge 3 ]; }
wait_until 10 busy
kill -QUIT "$DPID"
if wait_until 3 gone; then ok "SIGQUIT: gone in well under the 5 s call"; else fail "SIGQUIT did not stop it"; fi
wait "$cpid"
no_workers() { ! pgrep -f "pipelined -c $CONF" >/dev/null; }
if wait_until 10 no_workers; then ok "no worker left behind"; else fail "workers left: $(pgrep -f "pipelined -c $CONF")"; fi

check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$LOGF" "$LOGF.1" "$DLOG" 2>/dev/null)"
summary ops
