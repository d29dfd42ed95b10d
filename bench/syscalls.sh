#!/usr/bin/env bash
# bench/syscalls.sh - system calls and context switches per request, per
# process: the kernel half of the cost, which callgrind's instruction
# counts (bench/callgrind.sh) do not see.
#
#   bench/syscalls.sh [N] [PARALLEL] [KIND]
#
# Starts bin/pipelined (2 workers, bench/pipelined.conf.in) in front of
# bin/mock_upstream, warms it up with SC_WARM (default 200) requests, then
# attaches `perf trace -s` (tracepoints, not ptrace: the processes run at
# their own pace) to the master and each worker and reads their context
# switches (/proc/PID/status) around N (default 2000) requests sent by
# curl PARALLEL (default 8) at a time over keep-alive connections.
# Prints for the master and the workers (summed): system calls per request (the SC_TOP, default 8,
# most frequent by name), and voluntary + involuntary context switches
# per request. KIND: plain (default) or stream. Needs perf and the
# permission to trace (root, or perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
PAR=${2:-8}
KIND=${3:-plain}
WARM=${SC_WARM:-200}
TOP=${SC_TOP:-8}
BIN=${BIN:-bin}
DIR=$(mktemp -d /tmp/scbench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {     # wait_for SECONDS CMD...
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}
send() {         # send URL COUNT
    local cfg="$DIR/urls.cfg" ok
    : >"$cfg"
    for ((i = 0; i < $2; i++)); do
        printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >>"$cfg"
    done
    curl -s --no-progress-meter -Z --parallel-max "$PAR" \
        -H 'Content-Type: application/json' -d "$BODY" -K "$cfg" \
        -w '%{http_code}\n' >"$DIR/codes" || true
    ok=$(grep -c '^200$' "$DIR/codes" || true)
    [[ $ok == "$2" ]] || { echo "only $ok of $2 answered 200" >&2; exit 1; }
}
ctxt() {         # ctxt PID: voluntary + involuntary switches so far
    awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s}' \
        "/proc/$1/status"
}

UP=$(free_port)
"$BIN"/mock_upstream -a 127.0.0.1 -p "$UP" -q >"$DIR/mock.log" 2>&1 &
pids+=($!)
wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$UP/v1/models"
if [[ $KIND == stream ]]; then
    BODY='{"model":"default","stream":true,"messages":[{"role":"user","content":"hello bench"}]}'
else
    BODY='{"model":"default","messages":[{"role":"user","content":"hello bench"}]}'
fi
LP=$(free_port)
sed -e "s|@LISTEN_PORT@|$LP|g" -e "s|@UPSTREAM_PORT@|$UP|g" \
    -e "s|@WORKERS@|2|g" -e "s|@STREAM_PROVIDERS@||g" \
    -e "s|@STREAM_PROVIDER@|up|g" -e "s|@STREAM_PACE_MS@|20|g" \
    -e "s|@CONTROL_SOCKET@|$DIR/ctl.sock|g" -e "s|@TARGET_OPTS@||g" \
    bench/pipelined.conf.in >"$DIR/pipelined.conf"
chmod 600 "$DIR/pipelined.conf"
"$BIN"/pipelined -c "$DIR/pipelined.conf" >"$DIR/daemon.log" 2>&1 &
MASTER=$!
pids+=("$MASTER")
URL="http://127.0.0.1:$LP/v1/chat/completions"
wait_for 60 curl -sf -o /dev/null -H 'Content-Type: application/json' \
    -d "$BODY" "$URL"
send "$URL" "$WARM"
WORKERS=$(ps -o pid= --ppid "$MASTER" | tr -d ' ' | tr '\n' ' ')
declare -A before
for p in $MASTER $WORKERS; do
    before[$p]=$(ctxt "$p")
    perf trace -s -p "$p" -o "$DIR/trace.$p" >/dev/null 2>&1 &
    echo $! >"$DIR/tracer.$p"
done
sleep 1     # perf trace attaches
send "$URL" "$N"
for p in $MASTER $WORKERS; do
    cs=$(( $(ctxt "$p") - ${before[$p]} ))
    echo "$cs" >"$DIR/cs.$p"
    kill -INT "$(cat "$DIR/tracer.$p")"
done
for p in $MASTER $WORKERS; do
    while kill -0 "$(cat "$DIR/tracer.$p")" 2>/dev/null; do sleep 0.1; done
done
echo "requests: $N ($KIND, $PAR at a time); per request:"
report() {       # report WHO CSWITCHES TRACEFILES...
    local who=$1 cs=$2; shift 2
    # perf trace -s: "syscall calls errors total min avg max stddev"
    cat "$@" | awk -v n="$N" -v who="$who" -v cs="$cs" -v top="$TOP" '
        $2 ~ /^[0-9]+$/ && $1 ~ /^[a-z_0-9]+$/ { c[$1] += $2; s += $2 }
        END {
            printf "%-8s syscalls %5.2f  context switches %5.2f  (", who, s / n, cs / n
            k = 0
            for (;;) {
                best = ""; for (f in c) if (best == "" || c[f] > c[best]) best = f
                if (best == "" || k >= top) break
                printf "%s%s %.2f", (k ? ", " : ""), best, c[best] / n
                delete c[best]; k++
            }
            print ")"
        }'
}
report master "$(cat "$DIR/cs.$MASTER")" "$DIR/trace.$MASTER"
wcs=0; files=()
for p in $WORKERS; do
    wcs=$((wcs + $(cat "$DIR/cs.$p"))); files+=("$DIR/trace.$p")
done
report workers "$wcs" "${files[@]}"
