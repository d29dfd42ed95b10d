#!/usr/bin/env bash
# test_cluster_oauth.sh - OAuth tokens shared in cluster mode: a real
# redis-server on a free loopback port, one mock OAuth server with
# rotating refresh tokens (bin/mock_oauth: a reused refresh token is
# refused, its chat API takes only the current access token) and three
# daemons (gw-a, gw-b, gw-c), each with its own token file for the same
# Qwen account, all near expiry. Requests to all three at once: exactly
# one refresh reaches the mock for the cluster, every token file ends
# with the new tokens, every instance answers with the new access token,
# and no refresh token is used twice (the mock counts every refresh
# call); no token in any log. A later refresh reaches an instance that
# was stopped meanwhile when it starts again. Then Redis is stopped: a
# refresh goes on with the local lock alone, and its tokens reach the
# others when Redis is back. Prints "cluster_oauth: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SUITE=cluster_oauth
. tests/integration/cluster_lib.sh

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
WAIT=30
[ -n "${VALGRIND:-}" ] && WAIT=120
GWS="gwa gwb gwc"

# write_tokens NAME ACCESS REFRESH EXPIRY_MS: NAME's token file, as the
# Qwen CLI writes it.
write_tokens() {
    local f="$WORK/$1/oauth_creds.json"
    mkdir -p "$WORK/$1"
    printf '{"access_token":"%s","refresh_token":"%s","token_type":"Bearer","resource_url":"http://127.0.0.1:%s","expiry_date":%s}\n' \
        "$2" "$3" "$QA_PORT" "$4" >"$f.new"
    chmod 600 "$f.new"
    mv "$f.new" "$f"
}
has_tokens() {  # has_tokens NAME ACCESS REFRESH
    local f="$WORK/$1/oauth_creds.json"
    grep -q "\"access_token\": *\"$2\"" "$f" && grep -q "\"refresh_token\": *\"$3\"" "$f"
}

# write_conf NAME PORT INSTANCE
write_conf() {
    cat >"$WORK/$1.conf" <<CONF
listen = "127.0.0.1:$2";
control_socket = "$WORK/$1.sock";
workers = 2;
max_concurrent_per_worker = 4;
log_level = "info";
retry = { max_retries = 2; base_delay_ms = 10; max_delay_ms = 50; };
providers = ( { name = "qwen"; type = "qwen"; auth = "oauth";
                token_file = "$WORK/$1/oauth_creds.json";
                oauth_base_url = "http://127.0.0.1:$QA_PORT"; } );
virtual_models = ( { name = "q"; targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); } );
cluster = { redis = "127.0.0.1:$RPORT"; key_prefix = "$PREFIX"; instance = "$3"; };
CONF
    chmod 600 "$WORK/$1.conf"
}

# poke_until GW COUNT: requests to GW until the mock has seen COUNT
# refreshes (a worker looks at its token file once a second).
poke_until() {
    local deadline=$(( $(now_ms) + WAIT * 1000 ))
    while [ "$(oauth_stat QA refresh)" != "$2" ]; do
        [ "$(now_ms)" -ge $deadline ] && return 1
        chat "$1" >/dev/null
        sleep 0.1
    done
}
sees_three() { ctl "$1" stats | grep -q '"cluster":{"connected":true,"instances":3}'; }
disconnected() { ctl "$1" stats | grep -q '"cluster":{"connected":false'; }
chat() {  # chat GW: the HTTP status; the body in $WORK/GW.body
    local port_var="${1}_DPORT"
    curl -s -o "$WORK/$1.body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$(msg q)" "http://127.0.0.1:${!port_var}/v1/chat/completions"
}

RPORT=$(free_port)
start_redis R "$RPORT"
start_oauth_mock QA
# A slow token endpoint: refreshes that overlap, overlap for long.
oauth_control QA "refresh_delay_ms=300" >/dev/null
PREFIX="t$$:"
used_ports=" $RPORT $QA_PORT "
for g in $GWS; do
    p=$(free_port)
    while [[ $used_ports == *" $p "* ]]; do p=$(free_port); done
    used_ports+="$p "
    printf -v "${g}_DPORT" '%s' "$p"
done
# Near expiry (inside the 30 s refresh margin): every instance wants to
# refresh at its first request.
SOON=$(( $(now_ms) + 20000 ))
for g in $GWS; do
    write_tokens "$g" at-0 rt-0 "$SOON"
done
write_conf gwa "$gwa_DPORT" gw-a
write_conf gwb "$gwb_DPORT" gw-b
write_conf gwc "$gwc_DPORT" gw-c
for g in $GWS; do start_gw "$g"; done

echo "one refresh for the cluster"
if wait_until 30 sees_three gwa && wait_until 30 sees_three gwb &&
   wait_until 30 sees_three gwc; then
    ok "three instances connected"
else
    fail "the instances did not all connect: $(ctl gwa stats | grep -o '"cluster":{[^}]*}')"
fi
# Three requests at each instance, all at once.
CPIDS=()
for g in $GWS; do
    for i in 1 2 3; do
        chat "$g" >"$WORK/code.$g.$i" &
        CPIDS+=($!)
    done
done
for p in "${CPIDS[@]}"; do wait "$p"; done
codes=$(cat "$WORK"/code.* | tr -d '\n ')
check "nine requests at three instances, all answered 200" \
    "200200200200200200200200200" "$codes"
all_new() { for g in $GWS; do has_tokens "$g" at-1 rt-1 || return 1; done; }
if wait_until "$WAIT" all_new; then
    ok "every token file holds the new tokens (at-1, rt-1)"
else
    fail "token files: $(for g in $GWS; do tr -d '\n ' <"$WORK/$g/oauth_creds.json"; echo; done)"
fi
check "exactly one refresh reached the OAuth server" 1 "$(oauth_stat QA refresh)"
for g in $GWS; do
    code=$(chat "$g")
    check "$g answers with the new access token" 200 "$code"
done
check "no refresh token refused (log lines)" 0 \
    "$(cat "$WORK"/gw?.log | grep -c 'refused the refresh token')"
check "two instances took the cluster's tokens (log lines)" 2 \
    "$(cat "$WORK"/gw?.log | grep -Ec 'newer tokens from instance gw-[abc], saved')"
check "no token in any log (lines)" 0 "$(cat "$WORK"/gw?.log | grep -Ec 'at-[0-9]|rt-[0-9]')"
perm=$(stat -c %a "$WORK/gwb/oauth_creds.json")
check "a token file written for the cluster is 0600" 600 "$perm"

if [ "$FAILED" -gt 0 ]; then
    # The rest builds on the tokens of the first part.
    echo "  the first part failed: the rest is skipped"
    summary cluster_oauth
    exit 1
fi

echo "a later refresh, and an instance that was away"
# gw-c stops; gw-b's file alone near expiry again: gw-b refreshes (rt-1
# -> rt-2) and gw-a, whose rt-1 is now consumed, takes rt-2 from the
# cluster; gw-c, started again, takes it too, without a refresh.
kill -TERM "$gwc_PID"
wait "$gwc_PID"
check "gw-c stopped cleanly" 0 $?
write_tokens gwb at-1 rt-1 $(( $(now_ms) + 20000 ))
if poke_until gwb 2; then ok "gw-b refreshed"; else fail "gw-b did not refresh"; fi
if wait_until "$WAIT" has_tokens gwa at-2 rt-2; then
    ok "gw-a's token file holds at-2, rt-2"
else
    fail "gw-a's file: $(tr -d '\n ' <"$WORK/gwa/oauth_creds.json")"
fi
check "gw-c's file still has what it had" 0 "$(has_tokens gwc at-1 rt-1; echo $?)"
start_gw gwc
if wait_until "$WAIT" has_tokens gwc at-2 rt-2; then
    ok "gw-c, started again, took at-2, rt-2 from the cluster"
else
    fail "gw-c's file: $(tr -d '\n ' <"$WORK/gwc/oauth_creds.json")"
fi
check "two refreshes in all" 2 "$(oauth_stat QA refresh)"
for g in gwa gwc; do
    check "$g answers with at-2" 200 "$(chat "$g")"
done

echo "Redis down: the local lock alone"
kill "$R_RPID"
if wait_until 20 disconnected gwa; then
    ok "gw-a lost Redis"
else
    fail "gw-a still connected"
fi
write_tokens gwa at-2 rt-2 $(( $(now_ms) + 20000 ))
if poke_until gwa 3; then ok "gw-a refreshed without Redis"; else fail "gw-a did not refresh"; fi
if wait_until "$WAIT" has_tokens gwa at-3 rt-3; then
    ok "gw-a refreshed alone (at-3, rt-3)"
else
    fail "gw-a's file: $(tr -d '\n ' <"$WORK/gwa/oauth_creds.json")"
fi
check "three refreshes in all" 3 "$(oauth_stat QA refresh)"
check "gw-a answers with at-3" 200 "$(chat gwa)"

echo "Redis back: what was refreshed alone reaches the others"
start_redis R "$RPORT"
others_three() { has_tokens gwb at-3 rt-3 && has_tokens gwc at-3 rt-3; }
if wait_until "$WAIT" others_three; then
    ok "gw-b and gw-c took at-3, rt-3"
else
    fail "token files: $(for g in gwb gwc; do tr -d '\n ' <"$WORK/$g/oauth_creds.json"; echo; done)"
fi
check "still three refreshes in all" 3 "$(oauth_stat QA refresh)"
for g in gwb gwc; do
    check "$g answers with at-3" 200 "$(chat "$g")"
done

echo "a worker dying mid-refresh frees the cluster's lock"
# gw-b's file near expiry, a token endpoint that takes 60 s: gw-b's
# worker takes the cluster lock and waits on the endpoint. The requests
# that started it give up after 1 s, so that no request is run again
# (and no refresh started again) when gw-b's workers are then killed:
# its master releases the lock at once, where it would otherwise hold
# every other instance off until its 35 s expiry.
LOCK="${PREFIX}oauth:lock:qwen"
oauth_control QA "refresh_delay_ms=60000" >/dev/null
write_tokens gwb at-3 rt-3 $(( $(now_ms) + 20000 ))
held_by_b() { [ "$(redis-cli -p "$RPORT" get "$LOCK")" = gw-b ]; }
CPIDS=()
for i in $(seq 1 50); do
    held_by_b && break
    curl -s -o /dev/null -m 1 -H 'Content-Type: application/json' \
        --data-binary "$(msg q)" "http://127.0.0.1:$gwb_DPORT/v1/chat/completions" &
    CPIDS+=($!)
    sleep 0.2
done
if wait_until "$WAIT" held_by_b; then ok "gw-b holds the cluster's refresh lock"
else fail "lock: $(redis-cli -p "$RPORT" get "$LOCK")"; fi
for p in "${CPIDS[@]}"; do wait "$p"; done
pkill -KILL -P "$gwb_PID"
T0=$(now_ms)
lock_gone() { [ "$(redis-cli -p "$RPORT" exists "$LOCK")" = 0 ]; }
if wait_until 10 lock_gone; then
    ok "its workers killed, the lock is gone after $(( $(now_ms) - T0 )) ms"
else
    fail "the lock is still there: $(redis-cli -p "$RPORT" pttl "$LOCK") ms left"
fi
check_match "gw-b says why" "provider qwen: the worker refreshing its tokens died: the cluster's refresh lock is released" \
    "$(cat "$WORK/gwb.log")"
oauth_control QA "refresh_delay_ms=0" >/dev/null
refreshed_b() { chat gwb >/dev/null; has_tokens gwb at-4 rt-4; }
if wait_until "$WAIT" refreshed_b; then ok "the next refresh goes through (at-4, rt-4)"
else fail "gw-b's file: $(tr -d '\n ' <"$WORK/gwb/oauth_creds.json")"; fi

echo "a token file that cannot be written: handed over less and less often"
# gw-c's directory belongs to nobody and is read-only: the worker saving
# the cluster's newer tokens (written as the directory's owner) fails,
# and its master hands them over again after 2 s, then 4 s, 8 s, ...
if wait_until "$WAIT" has_tokens gwc at-4 rt-4; then ok "gw-c holds at-4, rt-4"
else fail "gw-c's file: $(tr -d '\n ' <"$WORK/gwc/oauth_creds.json")"; fi
chown nobody "$WORK/gwc"
chmod 500 "$WORK/gwc"
write_tokens gwa at-4 rt-4 $(( $(now_ms) + 20000 ))
refreshed_a() { chat gwa >/dev/null; has_tokens gwa at-5 rt-5; }
if wait_until "$WAIT" refreshed_a; then ok "gw-a refreshed (at-5, rt-5)"
else fail "gw-a's file: $(tr -d '\n ' <"$WORK/gwa/oauth_creds.json")"; fi
if wait_until "$WAIT" grep -q "try 2; the next in 4 s" "$WORK/gwc.log"; then
    ok "gw-c's second hand-over waits 4 s for the third"
else
    fail "gw-c's log: $(grep -c 'not saved' "$WORK/gwc.log") failed saves; $(tail -2 "$WORK/gwc.log")"
fi
check "gw-c's file still has at-4" 0 "$(has_tokens gwc at-4 rt-4; echo $?)"
chmod 700 "$WORK/gwc"
chown root "$WORK/gwc"
if wait_until "$WAIT" has_tokens gwc at-5 rt-5; then ok "writable again, the next try saves at-5"
else fail "gw-c's file: $(tr -d '\n ' <"$WORK/gwc/oauth_creds.json")"; fi

check "still no token in any log (lines)" 0 "$(cat "$WORK"/gw?.log | grep -Ec 'at-[0-9]|rt-[0-9]')"
for g in $GWS; do
    pid_var="${g}_PID"
    kill -TERM "${!pid_var}" 2>/dev/null
    wait "${!pid_var}"
    check "$g exits cleanly" 0 $?
done
summary cluster_oauth
