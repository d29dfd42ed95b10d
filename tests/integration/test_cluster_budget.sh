#!/usr/bin/env bash
# test_cluster_budget.sh - rate budgets held by the cluster as a whole:
# a real redis-server on a free loopback port and two daemons (gw-a,
# gw-b) against it, serving from the built-in mock provider. A target's
# rpm: a burst over both instances is answered 200 no more than the
# limit plus its allowance (max(5%, 2)) in all, where two instances on
# their own would each let the limit through; a client's rpm likewise;
# a target's tpm, charged after each answer, holds across the instances
# too. Redis stopped: every request is still answered (200, or 429 with
# Retry-After), the budgets go on split between the instances; Redis
# back: both reconnect and lease again; a Redis that hangs holds no
# request. Prints "cluster_budget: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster_budget
. tests/integration/cluster_lib.sh

RPM=10            # the target's limit
SRPM=20           # another, used only while Redis is away
CRPM=6            # the client's
TPM=300           # tokens a minute of the tpm target
SHORT_MS=1500     # a deadline far before any refill (6 s at rpm 10)
TEAM_KEY="sk-team-$$-budget"
PLAIN_KEY="sk-plain-$$-budget"

# write_conf NAME PORT CLUSTER_GROUP
write_conf() {
    cat >"$WORK/$1.conf" <<CONF
listen = "127.0.0.1:$2";
control_socket = "$WORK/$1.sock";
workers = 2;
log_level = "info";
clients = { api_keys = ( "$PLAIN_KEY",
    { key = "$TEAM_KEY"; name = "team"; rpm = $CRPM; } ); };
providers = ( { name = "local"; type = "mock"; } );
virtual_models = (
  { name = "free"; targets = ( { provider = "local"; model = "free"; } ); },
  { name = "rl"; targets = ( { provider = "local"; model = "rl"; rpm = $RPM; } ); },
  { name = "tl"; targets = ( { provider = "local"; model = "tl"; tpm = $TPM; } ); },
  { name = "rm"; targets = ( { provider = "local"; model = "rm"; rpm = $SRPM; } ); }
);
$3
CONF
    chmod 600 "$WORK/$1.conf"
}

connected() { ctl "$1" stats | grep -q '"cluster":{"connected":true,"instances":2'; }
disconnected() { ctl "$1" stats | grep -q '"cluster":{"connected":false'; }
# chat GW KEY MODEL [PROMPT]: the HTTP status; headers in $WORK/h.GW,
# body in $WORK/b.GW.
chat() {
    local port_var="${1}_DPORT"
    curl -s -D "$WORK/h.$1" -o "$WORK/b.$1" -w '%{http_code}' \
        -H "Authorization: Bearer $2" -H "X-Request-Timeout-Ms: $SHORT_MS" \
        -H 'Content-Type: application/json' --data-binary "$(msg "$3" "${4:-hello}")" \
        "http://127.0.0.1:${!port_var}/v1/chat/completions"
}
# burst N MODEL KEY: N requests at once, alternating gw-a and gw-b; the
# statuses, one a line, in $WORK/burst.
burst() {
    local n=$1 i g port_var
    rm -f "$WORK"/burst.*
    for i in $(seq 1 "$n"); do
        g=gwa; [ $((i % 2)) = 0 ] && g=gwb
        port_var="${g}_DPORT"
        curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $3" \
            -H "X-Request-Timeout-Ms: $SHORT_MS" -H 'Content-Type: application/json' \
            --data-binary "$(msg "$2")" \
            "http://127.0.0.1:${!port_var}/v1/chat/completions" >"$WORK/burst.$i" &
    done
    burst_done() { for i in $(seq 1 "$n"); do [ -s "$WORK/burst.$i" ] || return 1; done; }
    wait_until 60 burst_done
    cat "$WORK"/burst.* >"$WORK/burst"
}
count() { grep -c "^$1\$" "$WORK/burst"; }

RPORT=$(free_port)
start_redis R "$RPORT"
PREFIX="b$$:"
gwa_DPORT=$(free_port)
gwb_DPORT=$(free_port)
while [ "$gwb_DPORT" = "$gwa_DPORT" ]; do gwb_DPORT=$(free_port); done
write_conf gwa "$gwa_DPORT" \
    "cluster = { redis = \"127.0.0.1:$RPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-a\"; };"
write_conf gwb "$gwb_DPORT" \
    "cluster = { redis = \"127.0.0.1:$RPORT\"; key_prefix = \"$PREFIX\"; instance = \"gw-b\"; };"
start_gw gwa
start_gw gwb
if wait_until 20 connected gwa && wait_until 20 connected gwb; then
    ok "both connected, each sees 2 instances"
else
    fail "not connected: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi

echo "a target's rpm across the cluster"
rl_left() {  # rl_left GW: local/rl's "budget":{"rpm":N} in GW's stats
    ctl "$1" stats | sed 's/{"name":/\n/g' | grep '^"local/rl"' |
        grep -o '"budget":{"rpm":[0-9-]*' | grep -o '[0-9-]*$'
}
left=$(rl_left gwa)
check_match "stats: the cluster's budget left, not this instance's slice: $left" '^(8|9|10)$' "$left"
# Twice the limit plus some, at once, half to each instance: on their
# own each would let $RPM through.
burst $((2 * RPM + 4)) rl "$PLAIN_KEY"
n200=$(count 200)
n429=$(count 429)
MAXR=$((RPM + 2))
echo "  ($n200 answered 200, $n429 refused 429 of $((2 * RPM + 4)); limit $RPM + 2)"
# At least half: the budget is leased, not lost (the rest of the burst
# may meet its deadline while the leases come, on a loaded machine).
if [ "$n200" -le "$MAXR" ] && [ "$n200" -ge $((RPM / 2)) ]; then
    ok "the cluster let through $n200 (between $((RPM / 2)) and $MAXR)"
else
    fail "the cluster let through $n200 (want $((RPM / 2))..$MAXR)"
fi
check "every other one refused with 429" $((2 * RPM + 4 - n200)) "$n429"
check "a further one on gw-b: 429" 429 "$(chat gwb "$PLAIN_KEY" rl)"
left=$(rl_left gwb)
check_match "stats: about none left in the cluster: $left" '^[0-2]$' "$left"
ra=$(grep -i '^Retry-After:' "$WORK/h.gwb" | tr -dc '0-9')
check_match "with Retry-After until the cluster's refill (1..7 s): $ra" '^[1-7]$' "$ra"
key_there() { [ "$(redis-cli -p "$RPORT" exists "${PREFIX}budget:target:rpm:local/rl")" = 1 ]; }
if key_there; then ok "the budget lives in Redis (${PREFIX}budget:target:rpm:local/rl)"
else fail "no budget key in Redis: $(redis-cli -p "$RPORT" keys "${PREFIX}*" | tr '\n' ' ')"; fi

check "a reload on gw-a" '{"ok":true}' "$(ctl gwa reload)"
check "keeps the cluster's budget spent there: 429" 429 "$(chat gwa "$PLAIN_KEY" rl)"

echo "a client's rpm across the cluster"
burst $((2 * CRPM + 4)) free "$TEAM_KEY"
n200=$(count 200)
MAXC=$((CRPM + 2))
echo "  ($n200 answered 200 of $((2 * CRPM + 4)); limit $CRPM + 2)"
if [ "$n200" -le "$MAXC" ] && [ "$n200" -ge 1 ]; then
    ok "the cluster let team through $n200 times (1..$MAXC)"
else
    fail "the cluster let team through $n200 times (want 1..$MAXC)"
fi
check "the others 429" $((2 * CRPM + 4 - n200)) "$(count 429)"

echo "a target's tpm, charged after each answer, across the cluster"
# One after the other, alternating: each answer's tokens are charged
# before the next starts.
WORDS=$(printf 'w%.0s ' $(seq 1 60))
check "the first answer" 200 "$(chat gwa "$PLAIN_KEY" tl "$WORDS")"
per=$(grep -o '"total_tokens":[0-9]*' "$WORK/b.gwa" | cut -d: -f2)
t200=1
for i in $(seq 1 9); do
    g=gwb; [ $((i % 2)) = 0 ] && g=gwa
    [ "$(chat "$g" "$PLAIN_KEY" tl "$WORDS")" = 200 ] && t200=$((t200 + 1))
done
# Let through while a token is left: TPM / per answers and one more,
# and at most one more per instance for what it holds leased.
MAXT=$(( (TPM + per - 1) / per + 2 ))
echo "  ($t200 of 10 answered at ${per:-?} tokens each; tpm $TPM)"
if [ -n "$per" ] && [ "$t200" -le "$MAXT" ]; then
    ok "the cluster let through $t200 (at most $MAXT)"
else
    fail "the cluster let through $t200 (at most $MAXT)"
fi

echo "Redis down: each goes on alone, its budgets split"
kill -TERM "$R_RPID"
wait "$R_RPID" 2>/dev/null
if wait_until 10 disconnected gwa && wait_until 10 disconnected gwb; then
    ok "both see Redis gone"
else
    fail "stats after Redis stopped: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi
bad=0
t0=$(date +%s%N)
for i in 1 2 3 4; do
    for g in gwa gwb; do
        for m in rl free tl; do
            s=$(chat "$g" "$PLAIN_KEY" "$m")
            case $s in
            200) ;;
            429) grep -qi '^Retry-After: [1-9]' "$WORK/h.$g" || bad=$((bad + 1)) ;;
            *) bad=$((bad + 1)); echo "  $g $m: $s" ;;
            esac
        done
        s=$(chat "$g" "$TEAM_KEY" free)
        [ "$s" = 200 ] || [ "$s" = 429 ] || bad=$((bad + 1))
    done
done
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check "32 requests answered 200 or 429 with Retry-After" 0 "$bad"
if [ "$took" -lt 20000 ]; then ok "and without a hang ($took ms)"
else fail "32 requests took $took ms"; fi
check "the free target still serves" 200 "$(chat gwa "$PLAIN_KEY" free)"
# rm, untouched so far: gw-a goes on with half of it (what it held and
# its half of what the cluster had left), not the whole of it.
s200=0
for i in $(seq 1 $((SRPM / 2 + 4))); do
    [ "$(chat gwa "$PLAIN_KEY" rm)" = 200 ] && s200=$((s200 + 1))
done
HALF=$((SRPM / 2))
if [ "$s200" -ge $((HALF - 2)) ] && [ "$s200" -le $((HALF + 1)) ]; then
    ok "gw-a alone let through $s200 of rpm $SRPM (its half: $HALF)"
else
    fail "gw-a alone let through $s200 of rpm $SRPM (want about $HALF)"
fi
check_match "gw-a splits its budgets by the 2 instances last seen" \
    "cluster: rate budgets split 2 ways" "$(cat "$WORK/gwa.log")"
check "the loss logged once" 1 "$(grep -c 'cluster: lost Redis' "$WORK/gwa.log")"

echo "Redis back: reconnected, leasing again"
start_redis R "$RPORT"
if wait_until 15 connected gwa && wait_until 15 connected gwb; then
    ok "both reconnected"
else
    fail "stats after Redis restarted: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi
if wait_until 10 key_there; then ok "the budgets are leased from the new Redis"
else fail "no budget key after the reconnection"; fi
# The new Redis starts rm's bucket full; gw-a charges what it spent
# alone with its first lease: the cluster keeps counting it.
rm_key="${PREFIX}budget:target:rpm:local/rm"
rm_there() { [ "$(redis-cli -p "$RPORT" exists "$rm_key")" = 1 ]; }
wait_until 10 rm_there
level=$(redis-cli -p "$RPORT" hget "$rm_key" level)
MERGED=$((SRPM - HALF + 3))
if awk -v l="$level" -v m="$MERGED" 'BEGIN { exit !(l != "" && l < m) }'; then
    ok "merged: what gw-a spent alone is charged (rm's level $level of $SRPM)"
else
    fail "rm's bucket after the merge: ${level:-none} of $SRPM (want < $MERGED)"
fi
check "a request on gw-b" 200 "$(chat gwb "$PLAIN_KEY" free)"

echo "a Redis that hangs: no request waits for it"
kill -STOP "$R_RPID"
hung=0
for g in gwa gwb; do
    port_var="${g}_DPORT"
    for m in rl tl free; do
        s=$(curl -s -o /dev/null -m 3 -w '%{http_code}' -H "Authorization: Bearer $PLAIN_KEY" \
            -H "X-Request-Timeout-Ms: $SHORT_MS" -H 'Content-Type: application/json' \
            --data-binary "$(msg "$m")" "http://127.0.0.1:${!port_var}/v1/chat/completions")
        [ "$s" = 200 ] || [ "$s" = 429 ] || { hung=$((hung + 1)); echo "  $g $m: $s"; }
    done
done
check "6 requests answered 200 or 429 while Redis hangs" 0 "$hung"
kill -CONT "$R_RPID"
if wait_until 15 connected gwa && wait_until 15 connected gwb; then
    ok "both connected again when it answers"
else
    fail "after SIGCONT: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi

echo "shutdown"
rcs=""
for g in gwa gwb; do
    pid_var="${g}_PID"
    kill -TERM "${!pid_var}"; wait "${!pid_var}"; rcs="$rcs $?"
done
check "both exit 0 on SIGTERM" " 0 0" "$rcs"
check_nomatch "no sanitizer or valgrind report" \
    'AddressSanitizer|runtime error:|LeakSanitizer|ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
    "$(cat "$WORK"/gw*.log)"

summary cluster_budget
