#!/usr/bin/env bash
# test_cluster_demo.sh - `make cluster-demo` (bench/cluster_demo.sh) with
# a short open period: it ends by itself with exit 0 and a timeline that
# shows the opening on one instance applied by the two others within
# 200 ms, half-open, then closed everywhere; every process it
# started is gone afterwards and its temp directory removed; and
# interrupted (SIGINT to its process group, as Ctrl-C sends) it stops
# them all too and exits 130. tests/run.sh runs it on the normal build
# only. Prints "cluster_demo: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

for tool in redis-server haproxy; do
    if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
        fail "$tool not installed (make deps installs it)"
    fi
done
[ "$FAILED" -eq 0 ] || { summary cluster_demo; exit 1; }

mkdir -p "$WORK/tmp"
# pids_gone OUTPUT: no pid the demo printed ("(pid N)") is alive.
pids_gone() {
    local p
    for p in $(printf '%s' "$1" | grep -o '(pid [0-9]*)' | grep -o '[0-9]*'); do
        kill -0 "$p" 2>/dev/null && return 1
    done
    return 0
}
pid_count() { printf '%s' "$1" | grep -o '(pid [0-9]*)' | sort -u | wc -l; }

echo "a whole run"
started=$SECONDS
out=$(TMPDIR="$WORK/tmp" DEMO_BIN="$BIN" DEMO_RECOVERY_MS=1000 timeout 60 \
      bench/cluster_demo.sh 2>&1)
rc=$?
check "it exits 0" 0 "$rc"
echo "  (it took $((SECONDS - started)) s)"
check_match "it ends saying so" "^as expected: [0-9]+ checks passed" "$out"
check_match "each instance lists the three" "gw-3 +breaker closed +served +0 +sees 3 instances" "$out"
check_match "pipelinectl cluster's table is shown" "INSTANCE +PID" "$out"
check_match "the upstream's failures are shown" "request -> gw-[123]: 502" "$out"
check "the two others applied the opening, each with its delay" 2 \
    "$(printf '%s\n' "$out" | grep -cE "gw-[123] applied gw-[123]'s opening [0-9]+ ms after it")"
check_match "refused at once while open" "while open: .*gw-[123] 503" "$out"
check_match "half-open once the period ended" "open period over: half-open on gw-[123]" "$out"
check_match "all closed again" "gw-1 closed, gw-2 closed, gw-3 closed" "$out"
check_nomatch "no unexpected step" "not as expected" "$out"
check "seven processes were shown (redis, upstream twice, three instances, haproxy)" \
    7 "$(pid_count "$out")"
if pids_gone "$out"; then ok "none of them is left"
else fail "still running: $(printf '%s' "$out" | grep -o '(pid [0-9]*)' | tr '\n' ' ')"; fi
check "its temp directory is removed" "" "$(ls -A "$WORK/tmp")"

echo "interrupted"
# A shell started in the background without job control ignores SIGINT,
# and so does everything it starts: no trap can catch it then, and the
# demo cannot be interrupted the way a terminal's Ctrl-C would. Said, not
# counted.
sigign=$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status)
if (( (16#${sigign:-0} >> 1) & 1 )); then
    echo "  skip Ctrl-C checks: SIGINT is ignored here (tests started in the background without job control)"
    summary cluster_demo
    exit
fi
set -m   # its own process group, as a terminal's foreground job
TMPDIR="$WORK/tmp" DEMO_BIN="$BIN" DEMO_RECOVERY_MS=1000 \
    bench/cluster_demo.sh >"$WORK/int.out" 2>&1 &
DEMO_PID=$!
set +m
if wait_until 30 grep -q "all up" "$WORK/int.out"; then
    kill -INT -- "-$DEMO_PID"
    wait "$DEMO_PID"
    check "Ctrl-C: it exits 130" 130 "$?"
    out=$(cat "$WORK/int.out")
    if wait_until 10 pids_gone "$out"; then ok "Ctrl-C: every process it started is gone"
    else fail "Ctrl-C: still running: $(printf '%s' "$out" | grep -o '(pid [0-9]*)' | tr '\n' ' ')"; fi
    check "Ctrl-C: its temp directory is removed" "" "$(ls -A "$WORK/tmp")"
else
    fail "the demo did not come up: $(tail -5 "$WORK/int.out")"
    kill -TERM "$DEMO_PID" 2>/dev/null; wait "$DEMO_PID" 2>/dev/null
fi

summary cluster_demo
