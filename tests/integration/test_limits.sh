#!/usr/bin/env bash
# test_limits.sh - what one client may do: 50 slowloris connections do not
# stop a normal request and are closed after header_timeout_ms; the
# connection cap holds new connections in the backlog; per-connection
# request count; header count and request-line limits; garbage bytes; a
# client that pipelines requests and never reads its answers (the
# master's memory and log stay small); connection churn at a small cap,
# streams cut while their chunks wait, and bodies trickled a byte at a
# time at that cap (cut at body_timeout_ms with 408); out of file
# descriptors (a hard limit of 256, 400 connections; then a limit lowered
# under it): no busy loop, no flood of lines, the cap on max_connections
# kept through a reload, served again afterwards.
# Prints "limits: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

start_upstream UP
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
clients = { max_connections = 60; header_timeout_ms = 1500;
            keepalive_timeout_ms = 5000; keepalive_requests = 3;
            max_request_line = 1024; max_header_bytes = 4096; max_headers = 20; };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); } );
CONF
chmod 600 "$CONF"
start_daemon "$CONF"
conns() { curl -s "http://127.0.0.1:$DPORT/health" | grep -o '"connections":[0-9]*' | cut -d: -f2; }

echo "50 slowloris clients"
FDS=()
for _ in $(seq 1 50); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
    printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le' >&"$fd"
    FDS+=("$fd")
done
held() { [ "$(conns)" -ge 50 ]; }
wait_until 10 held
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
    --data-binary "$(msg default)" "http://127.0.0.1:$DPORT/v1/chat/completions")
check "a normal request answers meanwhile" 200 "${t%% *}"
prompt=$(echo "$t" | awk '{ print ($2 < 1.0) ? "yes" : "no" }')
check "and promptly (${t#* } s)" yes "$prompt"
released() { [ "$(conns)" -le 2 ]; }
if wait_until 15 released; then ok "slow heads closed after header_timeout_ms"
else fail "slow connections still open: $(conns)"; fi
for fd in "${FDS[@]}"; do exec {fd}>&-; done

echo "the connection cap"
FDS=()
for _ in $(seq 1 60); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
    FDS+=("$fd")
done
full() { [ "$(conns)" -ge 59 ]; } 2>/dev/null
code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$DPORT/health"; echo " rc=$?")
check_match "the 61st connection waits in the backlog" 'rc=28' "$code"
for fd in "${FDS[@]}"; do exec {fd}>&-; done
back() { curl -sf -m 2 "http://127.0.0.1:$DPORT/health"; }
if wait_until 10 back; then ok "served again once connections close"; else fail "not served after the cap"; fi

echo "per-connection limits"
u="http://127.0.0.1:$DPORT/health"
n=$(curl -s -w '%{num_connects}\n' -o /dev/null "$u" -o /dev/null "$u" \
    -o /dev/null "$u" -o /dev/null "$u" | awk '{ s += $1 } END { print s }')
check "keepalive_requests = 3: a fourth request needs a new connection" 2 "$n"
hdrs=()
for i in $(seq 1 21); do hdrs+=(-H "X-H$i: v"); done
code=$(curl -s -o "$WORK/last.body" -w '%{http_code}' "${hdrs[@]}" "http://127.0.0.1:$DPORT/health")
check "21 header fields: 431" 431 "$code"
code=$(curl -s -o "$WORK/last.body" -w '%{http_code}' "http://127.0.0.1:$DPORT/$(head -c 1100 /dev/zero | tr '\0' a)")
check "a 1100-byte request line: 414" 414 "$code"
check_match "414 in OpenAI shape" '"type":"invalid_request_error"' "$(body)"

# A 70 KB request line, sent raw in one go: refused, and the daemon reads
# no further than its limit.
exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
{ printf 'GET /'; head -c 71680 /dev/zero | tr '\0' b; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } >&"$fd" 2>/dev/null
out=$(timeout 5 cat <&"$fd" | head -c 200)
exec {fd}>&-
check_match "a 70 KB request line: 414 or closed" '^(HTTP/1.1 414|)' "$out"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DPORT/health")
check "alive after the 70 KB request line" 200 "$code"

echo "a slow body that keeps coming is read to the end"
b=$(msg default)
exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' "${#b}" >&"$fd"
for ((i = 0; i < ${#b}; i += 12)); do printf '%s' "${b:i:12}" >&"$fd"; sleep 0.4; done
out=$(timeout 5 head -c 12 <&"$fd")
exec {fd}>&-
check "answered after 2 s of a trickling body (header_timeout_ms 1.5 s)" "HTTP/1.1 200" "$out"

echo "an error after a HEAD still has its body"
exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
printf 'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nBLAH\r\n\r\n' >&"$fd"
out=$(timeout 5 cat <&"$fd")
exec {fd}>&-
check_match "the 400's JSON body is sent" '"type":"invalid_request_error"' "$out"

echo "garbage"
head -c 4000 /dev/urandom >"$WORK/garbage"
exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
cat "$WORK/garbage" >&"$fd" 2>/dev/null
out=$(timeout 5 cat <&"$fd" | head -c 200 | tr -d '\0')
exec {fd}>&-
check_match "random bytes: 400 or closed" '^(HTTP/1.1 4[0-9][0-9]|)' "$out"
code=$(post "$(msg default)"); check "alive after garbage" 200 "$code"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"

echo "a client that pipelines requests and never reads"
# For 2 s one connection writes, back to back and never reading: an
# authorized GET /v1/models (a 4 KB answer) and four unauthenticated chat
# requests (each answered 401 at once and logged). The master stops
# reading it once its unsent answers pass the bound, so its memory stays
# put and so does its log (a few MB of answers fit in the kernel's socket
# buffers before that). It used to read on and keep every answer: some
# 200 MB in those 2 s.
vms=""
for i in $(seq 1 16); do
    vms="$vms{ name = \"model-$i\"; targets = ( { provider = \"up\"; model = \"upstream-model-$i\"; } ); },"
done
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
clients = { api_keys = ( "sk-limits-flood" ); keepalive_timeout_ms = 3000; };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( $vms { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); } );
CONF
# Under ASan freed memory waits in a quarantine (256 MB by default) before
# reuse; what is measured here is what the master holds, so keep it small.
saved_asan=${ASAN_OPTIONS:-}
export ASAN_OPTIONS="${saved_asan:+$saved_asan:}quarantine_size_mb=4"
start_daemon "$CONF"
export ASAN_OPTIONS="$saved_asan"
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status"; }
{
    printf 'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-limits-flood\r\n\r\n'
    for _ in 1 2 3 4; do
        printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
    done
} >"$WORK/flood.req"
peak0=$(peak_kb); log0=$(stat -c %s "$DLOG")
out=$("$BIN/hostile_client" flood "$DPORT" 2 "$WORK/flood.req")
echo "  (flood: $out)"
idle() { [ "$(conns)" -le 1 ]; }
if wait_until 20 idle; then ok "the flood's connection is gone"
else fail "connections stuck at $(conns)"; fi
grown=$(( $(peak_kb) - peak0 )); logged=$(( $(stat -c %s "$DLOG") - log0 ))
check "master peak RSS grew less than 32 MB (by $grown kB)" yes \
    "$([ "$grown" -lt 32768 ] && echo yes || echo no)"
check "its log grew less than 4 MB (by $logged bytes)" yes \
    "$([ "$logged" -lt 4194304 ] && echo yes || echo no)"
code=$(post "$(msg default)" -H 'Authorization: Bearer sk-limits-flood')
check "served after the flood" 200 "$code"
# A pipelining client that does read gets every answer, though they are
# far more than the bound: reading resumes as it catches up.
for _ in $(seq 1 2000); do printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'; done >"$WORK/pipe.req"
printf 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >>"$WORK/pipe.req"
exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
cat "$WORK/pipe.req" >&"$fd" &
writer=$!
n=$(timeout 20 cat <&"$fd" | grep -o 'HTTP/1.1 200' | wc -l)
wait "$writer"
exec {fd}>&-
check "2001 pipelined requests read back: every answer" 2001 "$n"
stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"

echo "connection churn at a cap of 4, streams cut mid-way"
# Connections that close at once (some right after their request: the
# request is read, and the connection may be freed, inside the accept),
# and streams the client cuts while chunks wait to be written (some read
# slowly, so the socket is full): the count of open connections must come
# back down, the cap must not stick, and later streams must complete.
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
workers = 2;
clients = { max_connections = 4; header_timeout_ms = 1500; keepalive_timeout_ms = 5000;
            body_timeout_ms = 1000; };
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); },
                   { name = "drip"; targets = ( { provider = "up"; model = "drip-20"; } ); },
                   { name = "big"; targets = ( { provider = "up"; model = "big-2048"; } ); } );
CONF
start_daemon "$CONF"

echo "bodies trickled a byte at a time hold no slot past body_timeout_ms"
# Four connections (the cap) send a head, then a byte of the body every
# 200 ms; each read used to restart the clock, so they held every slot.
wait_until 10 idle
"$BIN/hostile_client" trickle "$DPORT" 4 200 10 >"$WORK/trickle.out" &
TPID=$!
PIDS+=($TPID)
wait_until 10 grep -q connected "$WORK/trickle.out"
t=$(curl -s -o /dev/null -m 8 -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
    --data-binary "$(msg default)" "http://127.0.0.1:$DPORT/v1/chat/completions")
check "a normal request gets a slot (after ${t#* } s)" 200 "${t%% *}"
wait "$TPID"
check "each slow body was answered 408 and closed" "answered408 4 closed 4" "$(tail -1 "$WORK/trickle.out")"

for _ in $(seq 1 10); do
    J=()
    for _ in 1 2 3 4 5 6 7 8; do
        ( exec 3<>"/dev/tcp/127.0.0.1/$DPORT"; exec 3>&- ) 2>/dev/null & J+=($!)
    done
    for _ in 1 2 3 4; do
        ( exec 3<>"/dev/tcp/127.0.0.1/$DPORT"
          printf 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
          exec 3>&- ) 2>/dev/null & J+=($!)
    done
    wait "${J[@]}"
done
if wait_until 20 idle; then ok "connections back to none after the churn"
else fail "connections stuck at $(conns)"; fi
for _ in $(seq 1 5); do
    J=()
    for _ in 1 2 3 4 5 6; do
        curl -s -N -m "0.$((RANDOM % 5 + 1))" -o /dev/null -H 'Content-Type: application/json' \
            --data-binary "$(msg drip "a b c d e f g h i j k l" ',"stream":true')" \
            "http://127.0.0.1:$DPORT/v1/chat/completions" & J+=($!)
    done
    for _ in 1 2; do
        curl -s -N -m 0.3 --limit-rate 20k -o /dev/null -H 'Content-Type: application/json' \
            --data-binary "$(msg big x ',"stream":true')" \
            "http://127.0.0.1:$DPORT/v1/chat/completions" & J+=($!)
    done
    wait "${J[@]}"
done
if wait_until 20 idle; then ok "connections back to none after the cut streams"
else fail "connections stuck at $(conns)"; fi
code=$(post "$(msg drip "a b c" ',"stream":true')")
check "a stream afterwards" 200 "$code"
check_match "complete, with [DONE]" 'data: \[DONE\]' "$(body)"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"

echo "out of file descriptors: a hard limit of 256, 400 connections"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
log_level = "info";
workers = 2;
providers = ( { name = "up"; type = "openai"; base_url = "http://127.0.0.1:$UP_PORT/v1"; api_key = "k"; } );
virtual_models = ( { name = "default"; targets = ( { provider = "up"; model = "fast"; } ); } );
CONF
since() { tail -n "+$(($1 + 1))" "$DLOG"; }      # since LINES: log after them
logged() { since "$mark" | grep -q -- "$1"; }      # logged TEXT: since $mark
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
fds() { ls "/proc/$DPID/fd" 2>/dev/null | wc -l; }
HZ=$(getconf CLK_TCK)
mark=$(wc -l <"$DLOG")
# The hard limit too, so that raising the soft one cannot escape it.
( ulimit -n 256 && exec ${VALGRIND:-} "$BIN/pipelined" -c "$CONF" ) >>"$DLOG" 2>&1 &
DPID=$!
PIDS+=($DPID)
wait_until 60 curl -sf "http://127.0.0.1:$DPORT/health" || { echo "no start"; since "$mark"; exit 1; }
check_match "max_connections capped to what the limit holds" \
    'clients.max_connections 10000 does not fit the open file limit \(RLIMIT_NOFILE [0-9]+\): capped to [0-9]+' \
    "$(since "$mark")"
sed -i 's/^workers = 2;/workers = 2; clients = { max_connections = 20000; };/' "$CONF"
mark=$(wc -l <"$DLOG")
kill -HUP "$DPID"
wait_until 20 logged "configuration reloaded"
check_match "and again by a reload that raises it" \
    'clients.max_connections 20000 does not fit the open file limit' "$(since "$mark")"
retired() { [ "$(since "$mark" | grep -c 'worker [0-9]* (pid [0-9]*) exited')" -ge 2 ]; }
wait_until 30 retired                              # the old workers are gone
mark=$(wc -l <"$DLOG")
FDS=()
for _ in $(seq 1 400); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
    FDS+=("$fd")
done
filled() { [ "$(fds)" -ge 200 ]; }
wait_until 20 filled
# A measuring window, not a wait for something.
t0=$(cpu_ticks); sleep 2; t1=$(cpu_ticks)
echo "  master: $((t1 - t0)) ticks of $((2 * HZ)) in 2 s, $(fds) descriptors"
# Well under half a CPU: a quarter, as a loaded machine may not give a
# busy loop a whole one.
check "the master stays well under half a CPU" yes "$( [ $((2 * (t1 - t0))) -lt "$HZ" ] && echo yes)"
n=$(since "$mark" | wc -l)
check "and prints almost nothing ($n lines)" yes "$( [ "$n" -le 5 ] && echo yes)"
check_nomatch "the cap keeps accept() from failing" '[Aa]ccept' "$(since "$mark")"
for fd in "${FDS[@]}"; do exec {fd}>&-; done
back() { curl -sf -m 2 "http://127.0.0.1:$DPORT/health"; }
if wait_until 20 back; then ok "served again once they close"; else fail "not served after"; fi

echo "out of file descriptors under the cap: the limit lowered to 64"
if command -v prlimit >/dev/null; then
    prlimit --pid "$DPID" --nofile=64:64
    mark=$(wc -l <"$DLOG")
    FDS=()
    for _ in $(seq 1 100); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$DPORT"
        FDS+=("$fd")
    done
    at_limit() { [ "$(fds)" -ge 60 ]; }
    wait_until 20 at_limit
    t0=$(cpu_ticks); sleep 1; t1=$(cpu_ticks)
    echo "  master: $((t1 - t0)) ticks of $HZ in 1 s, $(fds) descriptors"
    check "accept() failing: well under half a CPU" yes "$( [ $((4 * (t1 - t0))) -lt "$HZ" ] && echo yes)"
    check "said once" 1 "$(since "$mark" | grep -c 'accept: Too many open files')"
    for fd in "${FDS[@]}"; do exec {fd}>&-; done
    if wait_until 20 back; then ok "served again once they close"; else fail "not served after"; fi
    code=$(post "$(msg default)"); check "a request after it" 200 "$code"
else
    echo "  (prlimit missing: skipped)"
fi
stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"

check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"
summary limits
