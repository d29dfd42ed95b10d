#!/usr/bin/env bash
# test_control.sh - the control socket against clients that misbehave:
# 200 that send "stats" and close without reading, 200 that send half a
# command and close (the master's descriptors must come back to their
# count before), clients that drip a command byte by byte or send nothing
# (cut after the socket's timeout), a flood beyond the connection limit
# (refused with an error answer). And pipelinectl: options after the
# command, unknown options refused, scale's refusals naming the range, a
# replacement worker's JOBS DONE starting at 0 and the workers table
# showing an age. Prints "control: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

LEAVERS=200          # early-leaving clients of each kind
DRIPPERS=4
FLOOD=100            # at once, beyond the limit of 32 open connections
CONNS_MAX=32         # CONTROL_CONNS_MAX in master/control.c
MAX_WORKERS=64       # CFG_MAX_WORKERS in include/config.h
WAIT_S=20            # the socket's timeout is 5 s; generous for valgrind
# The client tool is new: a build of older code may not have it.
CTLC="$BIN/ctl_clients"
[ -x "$CTLC" ] || CTLC=bin/ctl_clients

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
log_level = "info";
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); } );
CONF
chmod 600 "$CONF"
start_daemon "$CONF"
ctl() { "$BIN/pipelinectl" -s "$SOCK" "$@"; }

fds() { ls "/proc/$DPID/fd" | wc -l; }
back_to_start() { [ "$(fds)" -le "$START_FDS" ]; }
ctl --json stats >/dev/null
START_FDS=$(fds)

echo "$LEAVERS clients send stats and close, $LEAVERS send half a command"
check "stats then close" "sent $LEAVERS" "$("$CTLC" "$SOCK" full $LEAVERS)"
check "half a command then close" "sent $LEAVERS" "$("$CTLC" "$SOCK" half $LEAVERS)"
if wait_until $WAIT_S back_to_start; then
    ok "no descriptor left behind ($START_FDS)"
else
    fail "descriptors: $START_FDS before, $(fds) after"
fi
check_match "the control socket still answers" '^\{"pid":' "$(ctl --json stats)"

echo "clients that drip a command, or send nothing, are cut"
"$CTLC" "$SOCK" drip $DRIPPERS $WAIT_S >"$WORK/drip.out" &
dripper=$!
drippers_in() { [ "$(fds)" -ge $((START_FDS + DRIPPERS)) ]; }
wait_until $WAIT_S drippers_in
"$CTLC" "$SOCK" idle $FLOOD $WAIT_S >"$WORK/idle.out"
wait "$dripper"
check_match "drippers cut without an answer" \
    "^answered=0 closed=$DRIPPERS open=0 " "$(cat "$WORK/drip.out")"
idle=$(cat "$WORK/idle.out")
check_match "every idle client cut" ' open=0 ' "$idle"
answered=$(printf '%s' "$idle" | sed -n 's/^answered=\([0-9]*\) .*/\1/p')
if [ "${answered:-0}" -ge $((FLOOD - CONNS_MAX - DRIPPERS)) ]; then
    ok "beyond $CONNS_MAX connections, refused at once ($idle)"
else
    fail "too few refused: $idle"
fi
if wait_until $WAIT_S back_to_start; then
    ok "descriptors back to $START_FDS"
else
    fail "descriptors: $START_FDS before, $(fds) after"
fi

echo "pipelinectl options anywhere"
check_match "stats --json after the command" '^\{"pid":' \
    "$(ctl stats --json)"
out=$(ctl stats --jsn 2>&1); rc=$?
check "an unknown option exits 2" 2 "$rc"
check_match "and names it" 'unknown option --jsn' "$out"
check "scale -1 is not an option" '{"ok":true,"workers":1}' "$(ctl scale -1 --json)"
check "scale +1" '{"ok":true,"workers":2}' "$(ctl --json scale +1)"

echo "scale refusals name the range"
for n in -100 100000 0 abc; do
    out=$(ctl scale $n 2>&1); rc=$?
    check "scale $n exits 1" 1 "$rc"
    check_match "scale $n names the range" "between 1 and $MAX_WORKERS \(now 2\)" "$out"
done

echo "a replacement worker starts from zero"
for i in 1 2 3 4; do post "$(msg default)" >/dev/null; done
wjson=$(ctl --json workers)
busy_slot=$(printf '%s' "$wjson" | grep -o '"pid":[0-9]*,"slot":[0-9]*,"active":[0-9]*,"jobs_done":[1-9][0-9]*' | head -1)
victim=$(printf '%s' "$busy_slot" | grep -o '"pid":[0-9]*' | cut -d: -f2)
slot=$(printf '%s' "$busy_slot" | grep -o '"slot":[0-9]*' | cut -d: -f2)
if [ -n "$victim" ]; then ok "worker $victim in slot $slot has done jobs"; else fail "no worker with jobs done: $wjson"; fi
kill -KILL "${victim:-0}"
replaced() {
    ctl --json workers | grep -o "\"pid\":[0-9]*,\"slot\":$slot,[^}]*" |
        grep -qv "\"pid\":$victim,"
}
if wait_until $WAIT_S replaced; then ok "slot $slot has a new worker"; else fail "slot $slot not refilled"; fi
check_match "its jobs_done is 0, started_at a Unix time" \
    "\"slot\":$slot,\"active\":0,\"jobs_done\":0,\"started_at\":[0-9]{10}," "$(ctl --json workers)"
table=$(ctl workers)
check_match "the table shows an age" '^PID +SLOT +ACTIVE +JOBS DONE +UP +RETIRING' "$table"
check_match "in seconds, minutes" "^[0-9]+ +$slot +0 +0 +[0-9]+(s|m[0-9]{2}s) +false" "$table"
check_nomatch "no raw epoch in the table" '[0-9]{10}' "$table"

check_match "capture on without a capture group: refused" \
    '"error":"capture is not configured' "$(ctl --json capture on)"
check_match "stats: capture false" '"capture":false' "$(ctl --json stats)"

check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
stop_daemon
check "clean exit" 0 "$DRC"
summary control
