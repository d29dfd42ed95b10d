#!/usr/bin/env bash
# test_stats.sh - what the daemon says about itself is exact: `stats`
# latency percentiles of mock upstreams with a known latency lie among
# the latencies the log shows (not on a histogram bucket bound), /metrics
# le labels are the exact bucket bounds, and `pipelined -t` names the
# line a string left open starts on and line 1 of an empty file.
# `stats` reports the PSS of the master and of each worker ("memory").
# Prints "stats: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

LAZY_MS=65      # whole-ms buckets answered 80, the bound of [64, 80)
REQUESTS=5
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 1;
log_level = "info";
providers = ( { name = "lazy"; type = "mock"; latency_ms = $LAZY_MS; },
              { name = "quick"; type = "mock"; } );
virtual_models = ( { name = "lazy"; targets = ( { provider = "lazy"; model = "m"; } ); },
                   { name = "quick"; targets = ( { provider = "quick"; model = "m"; } ); } );
CONF
chmod 600 "$CONF"

echo "pipelined -t names the right line"
: >"$WORK/empty.conf"
out=$(${VALGRIND:-} "$BIN/pipelined" -t -c "$WORK/empty.conf" 2>&1); rc=$?
checks=$out
check "-t exit 1 on an empty file" 1 "$rc"
check_match "an empty file is line 1" "^$WORK/empty.conf:1: empty configuration" "$out"
# The shipped file with the closing quote of log_level's value lost.
line=$(grep -n '^log_level = "' etc/pipelined.conf | head -1 | cut -d: -f1)
sed "${line}s/^log_level = \"\([a-z]*\)\"/log_level = \"\1/" etc/pipelined.conf >"$WORK/open.conf"
check "the damaged line differs" 1 "$(diff etc/pipelined.conf "$WORK/open.conf" | grep -c '^>')"
out=$(${VALGRIND:-} "$BIN/pipelined" -t -c "$WORK/open.conf" 2>&1); rc=$?
checks="$checks$out"
check "-t exit 1 on a string left open" 1 "$rc"
check_match "reported at the line it opens on ($line)" "^$WORK/open.conf:$line: .*not closed" "$out"
check_nomatch "-t: no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$checks"

start_daemon "$CONF"

echo "stats percentiles are latencies, not bucket bounds"
for _ in $(seq 1 $REQUESTS); do post "$(msg lazy)" >/dev/null; post "$(msg quick)" >/dev/null; done
stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
# pct TARGET PCT: that target's percentile from stats
pct() { printf '%s' "$stats" | grep -o "\"name\":\"$1\"[^}]*" | grep -o "\"$2\":[0-9.]*" | cut -d: -f2; }
# logged MODEL: "MIN MAX" of the ms= its log lines show (tenths, cut)
logged() {
    awk -v m="model=$1" '$0 ~ m" " { for (i = 1; i <= NF; i++) if ($i ~ /^ms=/) {
        v = substr($i, 4) + 0; n++; if (n == 1 || v < lo) lo = v; if (v > hi) hi = v } }
        END { print n + 0, lo, hi }' "$DLOG"
}
# within P MIN MAX: MIN <= P < MAX + 0.1 (the log cuts to tenths)
within() { awk -v p="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(p != "" && p >= lo && p < hi + 0.1) }'; }
for t in lazy quick; do
    read -r n lo hi <<<"$(logged $t)"
    check "$t: $REQUESTS requests logged" $REQUESTS "$n"
    for p in p50 p99; do
        v=$(pct "$t/m" $p)
        if within "$v" "$lo" "$hi"; then ok "$t $p $v ms within the log's $lo-$hi"
        else fail "$t $p [$v] ms not within the log's $lo-$hi"; fi
    done
done
v=$(pct lazy/m p50)
if awk -v p="$v" -v l=$LAZY_MS 'BEGIN { exit !(p >= l) }'; then ok "lazy p50 $v >= latency_ms $LAZY_MS"
else fail "lazy p50 [$v] below latency_ms $LAZY_MS"; fi

echo "/metrics le labels are the exact bounds"
metrics=$(curl -s "http://127.0.0.1:$DPORT/metrics")
check "/metrics passes the format checker" ok "$(printf '%s\n' "$metrics" | awk -f tests/integration/promcheck.awk)"
got=$(printf '%s\n' "$metrics" | grep '^pipeline_request_duration_seconds_bucket{target="lazy/m"' |
      sed 's/.*le="\([^"]*\)".*/\1/' | tr '\n' ' ')
# Each power of two of microseconds from 8 to 2^32, in seconds.
want=$(awk 'BEGIN { for (k = 3; k <= 32; k++) { us = 2 ^ k; w = int(us / 1000000)
    s = sprintf("%d.%06d", w, us - w * 1000000); sub(/0+$/, "", s); sub(/\.$/, "", s)
    printf "%s ", s } print "+Inf " }')
check "le labels" "$want" "$got"
check_match "2^20 us printed exactly" 'le="1\.048576"' "$metrics"
check_match "the lazy count" "pipeline_request_duration_seconds_count\\{target=\"lazy/m\",virtual_model=\"lazy\"\\} $REQUESTS" "$metrics"
bad=$(printf '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\n' |
      awk -f tests/integration/promcheck.awk >/dev/null; echo $?)
check "the checker refuses falling le labels" 1 "$bad"
bad=$(printf '# TYPE h histogram\nh_bucket{a="x",le="1"} 1\nh_bucket{a="x",le="+Inf"} 1\nh_bucket{a="y",le="2"} 1\nh_bucket{a="y",le="+Inf"} 1\n' |
      awk -f tests/integration/promcheck.awk >/dev/null; echo $?)
check "the checker refuses le sets that differ" 1 "$bad"

echo "an answer's tokens: its log line and /metrics"
# The mock counts words: the last message's, and its answer's ("This is
# a mock answer from m to: " and the message quoted).
post "$(msg quick 'one two three')" -H 'X-Request-Id: tokens-plain' >/dev/null
post "$(msg quick 'four five' ',"stream":true')" -H 'X-Request-Id: tokens-stream' >/dev/null
wait_until 10 grep -q 'req=tokens-stream ' "$DLOG"
check_match "a plain answer's tokens" \
    "req=tokens-plain model=quick .* first_byte_ms=[0-9.]+ prompt_tokens=3 completion_tokens=11\$" \
    "$(grep 'req=tokens-plain ' "$DLOG")"
check_match "a stream's tokens" \
    "req=tokens-stream model=quick .* prompt_tokens=2 completion_tokens=10\$" \
    "$(grep 'req=tokens-stream ' "$DLOG")"
metrics=$(curl -s "http://127.0.0.1:$DPORT/metrics")
for kind in prompt completion; do
    logged_sum=$(grep ' model=quick ' "$DLOG" | grep -o " ${kind}_tokens=[0-9]*" | cut -d= -f2 |
                 awk '{ s += $1 } END { print s + 0 }')
    check "pipeline_tokens_total kind=$kind: the sum of the log lines'" \
        "pipeline_tokens_total{target=\"quick/m\",virtual_model=\"quick\",kind=\"$kind\"} $logged_sum" \
        "$(printf '%s\n' "$metrics" | grep "^pipeline_tokens_total{target=\"quick/m\".*kind=\"$kind\"}")"
done
check "/metrics with tokens passes the format checker" ok "$(printf '%s\n' "$metrics" | awk -f tests/integration/promcheck.awk)"

echo "stats: memory (PSS) of the master and each worker"
stats=$("$BIN/pipelinectl" -s "$SOCK" --json stats)
mem=$(printf '%s' "$stats" | grep -o '"memory":{.*')
wpid=$(printf '%s' "$stats" | grep -o '"pids":\[[0-9]*' | grep -o '[0-9]*$')
check_match "the master's PSS, in KB" "\"pid\":$DPID,\"role\":\"master\",\"pss_kb\":[1-9][0-9]*" "$mem"
check_match "the worker's PSS, in KB" "\"pid\":${wpid:-none},\"role\":\"worker\",\"pss_kb\":[1-9][0-9]*" "$mem"
total=$(printf '%s' "$mem" | grep -o '"pss_kb":[0-9]*' | head -1 | cut -d: -f2)
parts=$(printf '%s' "$mem" | grep -o '"pss_kb":[0-9]*' | tail -n +2 | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
check "the total is the sum of the processes'" "$parts" "${total:-none}"
check_match "pipelinectl stats shows it" '^memory +PSS [0-9]+ KB: master [0-9]+ \(pid [0-9]+\), worker [0-9]+' \
    "$("$BIN/pipelinectl" -s "$SOCK" stats)"

stop_daemon
check "exit status 0 after SIGTERM" 0 "$DRC"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$DLOG")"

summary stats
