#!/usr/bin/env bash
# bench/run.sh — throughput/latency/memory/TTFB benchmark for rcc-pipeline.
#
# Run after `make` (or via `make bench`); it works from the repo root
# whatever the current directory:
#
#     bench/run.sh                      # full run, ~2 min with the defaults
#     BENCH_DURATION=3 BENCH_RUNS=1 bench/run.sh   # quick smoke run
#     bench/run.sh > report.md          # stdout is the markdown report only;
#                                       # progress and diagnostics go to stderr
#
# It compares three systems under the same wrk load:
#   upstream direct  wrk -> bin/mock_upstream
#   nginx proxy      wrk -> our own nginx (reverse proxy) -> bin/mock_upstream
#   rcc-pipeline     wrk -> bin/pipelined -> bin/mock_upstream
#
# Environment knobs (all optional):
#   BENCH_DURATION     seconds per measured wrk run              (10)
#   BENCH_RUNS         measured runs per system, interleaved      (3)
#   BENCH_WARMUP       seconds of warm-up before each run         (2)
#   BENCH_THREADS      wrk -t                                     (2)
#   BENCH_CONNECTIONS  wrk -c                                     (64)
#   BENCH_STREAM_N     sequential streamed requests per path      (20)
#   BENCH_STREAMS      concurrent streams in the stream runs     (200)
#   BENCH_STREAM_WORDS words per streamed answer (one chunk each) (199)
#   BENCH_STREAM_PACE_MS  sustained run: ms between chunks        (20)
#   BENCH_STREAM_SECONDS  sustained run: seconds of streams opened (10)
#   BENCH_STREAM_RUNS  runs of each stream test per path          (3)
#   BENCH_PIPELINED    daemon binary                  (bin/pipelined)
#   BENCH_MOCK         mock upstream binary           (bin/mock_upstream)
#   BENCH_KEEP_LOGS    if set to a directory, server logs and raw wrk
#                      output are copied there on exit
#   BENCH_ALLOW_ERRORS set to 1 to exit 0 even when wrk saw non-2xx replies
#
# Exit status: 0 if everything ran cleanly; 1 on a setup failure (missing
# binary, a server that did not start or died, a failed smoke request);
# 2 if wrk failed or produced no results; 3 if any measured run got non-2xx
# responses (results are then not comparable; see BENCH_ALLOW_ERRORS);
# 4 if a streamed (TTFB) request or a stream run (a stream without [DONE])
# failed. With 3 and 4 the report is still printed, with the failures
# counted in it.
# Signals (Ctrl-C, TERM) and every failure path stop all processes the
# script started and remove its temp dir.

set -euo pipefail
export LC_ALL=C

# ---------------------------------------------------------------- settings
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$BENCH_DIR/.."   # repo root: bin/ paths (and BENCH_PIPELINED/BENCH_MOCK) are relative to it
DURATION=${BENCH_DURATION:-10}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
STREAM_N=${BENCH_STREAM_N:-20}
STREAMS=${BENCH_STREAMS:-200}
STREAM_WORDS=${BENCH_STREAM_WORDS:-199}
STREAM_PACE_MS=${BENCH_STREAM_PACE_MS:-20}
STREAM_SECONDS=${BENCH_STREAM_SECONDS:-10}
STREAM_RUNS=${BENCH_STREAM_RUNS:-3}
PIPELINED=${BENCH_PIPELINED:-bin/pipelined}
MOCK=${BENCH_MOCK:-bin/mock_upstream}
KEEP_LOGS=${BENCH_KEEP_LOGS:-}
ALLOW_ERRORS=${BENCH_ALLOW_ERRORS:-0}

READY_TIMEOUT_MS=10000   # per server start-up deadline
POLL_S=0.05              # readiness poll interval
STOP_TIMEOUT_MS=5000     # graceful stop deadline before SIGKILL
CHAT_PATH=/v1/chat/completions

log() { printf '[bench] %s\n' "$*" >&2; }
die() { local rc=$1; shift; printf '[bench] ERROR: %s\n' "$*" >&2; exit "$rc"; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; die 1 "unexpected argument: $1 (configure with BENCH_* environment variables)" ;;
esac
[[ $# -le 1 ]] || die 1 "too many arguments"

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in DURATION RUNS WARMUP THREADS CONNS STREAM_N STREAMS STREAM_WORDS \
         STREAM_PACE_MS STREAM_SECONDS STREAM_RUNS; do
    if ! is_uint "${!v}" || (( 10#${!v} == 0 )); then
        die 1 "BENCH_${v/CONNS/CONNECTIONS} must be a positive integer (got '${!v}')"
    fi
    printf -v "$v" '%d' "$(( 10#${!v} ))"
done
(( CONNS >= THREADS )) || die 1 "BENCH_CONNECTIONS ($CONNS) must be >= BENCH_THREADS ($THREADS)"

# ------------------------------------------------------- process tracking
WORK=""
declare -a PIDS=()        # every long-running process we started
declare -A PID_NAME=()
CUR_JOB=""                # foreground-ish job (wrk) run in background + wait

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }

# alive PID: exists and is not a zombie
alive() {
    local st=""
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${st##*) }     # state is the field after "(comm) "
    st=${st%% *}
    [[ -n $st && $st != Z && $st != X ]]
}

stop_all() {
    local pid k c deadline any
    local -a targets=() kids=()
    if [[ -n $CUR_JOB ]] && alive "$CUR_JOB"; then
        kill -TERM "$CUR_JOB" 2>/dev/null || true
    fi
    # Newest first: pipelined, nginx, then the upstream they depend on.
    for (( k=${#PIDS[@]}-1; k>=0; k-- )); do
        pid=${PIDS[k]}
        alive "$pid" || continue
        targets+=("$pid")
        while read -r c; do [[ -n $c ]] && kids+=("$c"); done < <(pgrep -P "$pid" || true)
        kill -TERM "$pid" 2>/dev/null || true
    done
    [[ -n $CUR_JOB ]] && targets+=("$CUR_JOB")
    deadline=$(( $(now_ms) + STOP_TIMEOUT_MS ))
    while :; do
        any=0
        for pid in "${targets[@]}" "${kids[@]}"; do
            alive "$pid" && { any=1; break; }
        done
        (( any )) || break
        if (( $(now_ms) > deadline )); then
            for pid in "${targets[@]}" "${kids[@]}"; do
                if alive "$pid"; then
                    log "process $pid (${PID_NAME[$pid]:-child}) ignored SIGTERM; sending SIGKILL"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep "$POLL_S"
    done
    for pid in "${targets[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    CUR_JOB=""
}

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    stop_all
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ -n $KEEP_LOGS ]]; then
            mkdir -p "$KEEP_LOGS" && cp -r "$WORK"/. "$KEEP_LOGS"/ 2>/dev/null \
                && log "logs kept in $KEEP_LOGS"
        fi
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------ dependencies
NGINX_BIN=""
find_nginx() {
    NGINX_BIN=$(command -v nginx 2>/dev/null || true)
    [[ -z $NGINX_BIN && -x /usr/sbin/nginx ]] && NGINX_BIN=/usr/sbin/nginx
    [[ -n $NGINX_BIN ]]
}

install_tools() {
    local -a sudo=()
    if (( EUID != 0 )); then
        command -v sudo >/dev/null || die 1 "wrk/nginx missing and not root (no sudo): apt-get install wrk nginx-light"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "installing wrk and nginx-light with apt-get (the packaged nginx service, if started, is not used)"
    if ! "${sudo[@]}" apt-get install -y wrk nginx-light >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        "${sudo[@]}" apt-get update >&2 || true
        "${sudo[@]}" apt-get install -y wrk nginx-light >&2 \
            || "${sudo[@]}" apt-get install -y wrk nginx >&2 \
            || die 1 "could not install wrk/nginx"
    fi
}

if ! command -v wrk >/dev/null 2>&1 || ! find_nginx; then
    install_tools
    command -v wrk >/dev/null 2>&1 || die 1 "wrk still not on PATH after install"
    find_nginx || die 1 "nginx still not found after install"
fi
for tool in curl ss pgrep awk; do
    command -v "$tool" >/dev/null 2>&1 || die 1 "required tool '$tool' not found"
done

[[ -x $PIPELINED ]] || die 1 "$PIPELINED not found or not executable (run make first, from the repo root)"
[[ -x $MOCK ]] || die 1 "$MOCK not found or not executable (run make first, from the repo root)"
for f in post.lua nginx.conf.in pipelined.conf.in; do
    [[ -r $BENCH_DIR/$f ]] || die 1 "missing $BENCH_DIR/$f"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcc-bench.XXXXXX")
chmod 755 "$WORK"   # nginx workers drop privileges when started as root

# ------------------------------------------------------------------- ports
declare -A PORT_TAKEN=()
# pick_port: sets PICKED to a loopback TCP port nobody listens on, below the
# kernel's ephemeral range so outgoing connections cannot grab it meanwhile.
# (Not used via $(...): PORT_TAKEN must persist in this shell.)
PICKED=""
pick_port() {
    local used p lo=20000 hi=32767 tries
    used=$(ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
    for (( tries = 0; tries < 200; tries++ )); do
        p=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1) ))
        [[ -n ${PORT_TAKEN[$p]:-} ]] && continue
        grep -qx "$p" <<<"$used" && continue
        PORT_TAKEN[$p]=1
        PICKED=$p
        return 0
    done
    die 1 "could not find a free port"
}

# http_code URL [curl args...] -> prints the HTTP status (000 = no connection)
http_code() {
    local url=$1; shift
    curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

# wait_ready NAME PID URL MODE: poll every 50 ms until the server answers
# (MODE any: any HTTP status; MODE 200: status 200), the process dies, or
# the deadline passes.
wait_ready() {
    local name=$1 pid=$2 url=$3 mode=$4 code deadline
    deadline=$(( $(now_ms) + READY_TIMEOUT_MS ))
    while :; do
        if ! alive "$pid"; then
            log "$name (pid $pid) exited during start-up"
            return 1
        fi
        code=$(http_code "$url")
        if [[ $mode == any && $code != 000 ]] || [[ $code == 200 ]]; then
            return 0
        fi
        if (( $(now_ms) > deadline )); then
            log "$name did not answer on $url within $(( READY_TIMEOUT_MS / 1000 )) s (last status $code)"
            return 1
        fi
        sleep "$POLL_S"
    done
}

show_log() {
    local f=$1
    [[ -s $f ]] || return 0
    log "---- last lines of $(basename "$f") ----"
    tail -n 20 "$f" >&2 || true
}

track() { PIDS+=("$1"); PID_NAME[$1]=$2; }

declare -A PID_LOG=()
# check_servers: every server we started must still be running.
check_servers() {
    local pid
    for pid in "${PIDS[@]}"; do
        if ! alive "$pid"; then
            show_log "${PID_LOG[$pid]:-/dev/null}"
            die 1 "${PID_NAME[$pid]} (pid $pid) is no longer running"
        fi
    done
}

# ------------------------------------------------------------------ servers
MOCK_PORT="" NGINX_PORT="" NGINX_STREAM_PORT="" RCC_PORT="" RCC_PID="" NGINX_VERSION=""

start_mock() {
    local portfile=$WORK/mock.port pid deadline
    log "starting $MOCK (ephemeral port)"
    "$MOCK" -a 127.0.0.1 -p 0 -P "$portfile" -q >"$WORK/mock.log" 2>&1 &
    pid=$!
    track "$pid" mock_upstream
    PID_LOG[$pid]=$WORK/mock.log
    deadline=$(( $(now_ms) + READY_TIMEOUT_MS ))
    while [[ ! -s $portfile ]]; do
        alive "$pid" || { show_log "$WORK/mock.log"; die 1 "mock_upstream exited during start-up"; }
        (( $(now_ms) <= deadline )) || { show_log "$WORK/mock.log"; die 1 "mock_upstream wrote no port file within 10 s"; }
        sleep "$POLL_S"
    done
    MOCK_PORT=$(tr -dc '0-9' <"$portfile")
    is_uint "$MOCK_PORT" || die 1 "bad port in $portfile: '$(cat "$portfile")'"
    wait_ready mock_upstream "$pid" "http://127.0.0.1:$MOCK_PORT/" any \
        || { show_log "$WORK/mock.log"; die 1 "mock_upstream did not become ready"; }
    log "mock_upstream ready on 127.0.0.1:$MOCK_PORT (pid $pid)"
}

start_nginx() {
    local attempt prefix=$WORK/nginx pid
    mkdir -p "$prefix"
    chmod 755 "$prefix"
    for attempt in 1 2 3; do
        pick_port; NGINX_PORT=$PICKED
        pick_port; NGINX_STREAM_PORT=$PICKED
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@UPSTREAM_PORT@|$MOCK_PORT|g" \
            -e "s|@LISTEN_PORT@|$NGINX_PORT|g" \
            -e "s|@STREAM_LISTEN_PORT@|$NGINX_STREAM_PORT|g" \
            "$BENCH_DIR/nginx.conf.in" >"$prefix/nginx.conf"
        log "starting nginx on 127.0.0.1:$NGINX_PORT (attempt $attempt)"
        "$NGINX_BIN" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
            >"$prefix/stdout.log" 2>&1 &
        pid=$!
        track "$pid" nginx
        PID_LOG[$pid]=$prefix/error.log
        if wait_ready nginx "$pid" "http://127.0.0.1:$NGINX_PORT/" any; then
            log "nginx ready (master pid $pid, worker_processes 2)"
            return 0
        fi
        show_log "$prefix/error.log"; show_log "$prefix/stdout.log"
        stop_last
        port_clash "$prefix/error.log" "$prefix/stdout.log" || break
    done
    die 1 "nginx failed to start"
}

start_pipelined() {
    local attempt pid conf=$WORK/pipelined.conf
    for attempt in 1 2 3; do
        pick_port; RCC_PORT=$PICKED
        sed -e "s|@LISTEN_PORT@|$RCC_PORT|g" -e "s|@UPSTREAM_PORT@|$MOCK_PORT|g" \
            -e "s|@STREAM_PACE_MS@|$STREAM_PACE_MS|g" \
            -e "s|@CONTROL_SOCKET@|$WORK/control.sock|g" "$BENCH_DIR/pipelined.conf.in" >"$conf"
        rm -f "$WORK/control.sock"
        log "starting $PIPELINED on 127.0.0.1:$RCC_PORT (attempt $attempt)"
        "$PIPELINED" -c "$conf" >"$WORK/pipelined.log" 2>&1 &
        pid=$!
        track "$pid" pipelined
        PID_LOG[$pid]=$WORK/pipelined.log
        if wait_ready pipelined "$pid" "http://127.0.0.1:$RCC_PORT/health" 200; then
            RCC_PID=$pid
            log "pipelined ready (master pid $pid)"
            return 0
        fi
        show_log "$WORK/pipelined.log"
        stop_last
        port_clash "$WORK/pipelined.log" || break
    done
    die 1 "pipelined failed to start"
}

# port_clash LOG...: did a failed start fail because the port was taken
# meanwhile? Only then is another port worth a retry.
port_clash() {
    cat "$@" 2>/dev/null | grep -qiE 'address already in use|EADDRINUSE'
}

# After a failed start attempt: stop only the most recently started process
# so the retry starts from a clean slate.
stop_last() {
    local -a keep=("${PIDS[@]:0:${#PIDS[@]}-1}")
    PIDS=("${PIDS[-1]}")
    stop_all
    PIDS=("${keep[@]}")
}

# ----------------------------------------------------------------- helpers
chat_body() { # MODEL [STREAM]
    if [[ ${2:-} == stream ]]; then
        printf '{"model":"%s","stream":true,"messages":[{"role":"user","content":"hello bench"}]}' "$1"
    else
        printf '{"model":"%s","messages":[{"role":"user","content":"hello bench"}]}' "$1"
    fi
}

# smoke NAME URL MODEL: one request must answer 200 before we load it.
smoke() {
    local name=$1 url=$2 model=$3 code
    code=$(curl -s -o "$WORK/smoke.out" --max-time 5 -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary "$(chat_body "$model")" "$url" || true)
    if [[ $code != 200 ]]; then
        log "smoke request to $name ($url, model $model) answered HTTP $code:"
        head -c 500 "$WORK/smoke.out" >&2 2>/dev/null || true; echo >&2
        return 1
    fi
}

median() { # numbers on stdin -> median (empty input -> empty output)
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) exit
        if (NR % 2) printf "%.6f\n", a[(NR + 1) / 2]
        else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

fmt() { awk -v x="$1" -v p="${2:-2}" 'BEGIN { if (x == "") print "n/a"; else printf "%.*f\n", p, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# parse_wrk FILE -> "reqs p50ms p99ms non2xx sockerr_total sockerr_line"
parse_wrk() {
    awk '
    function ms(s,   v, u) {
        v = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        if (u == "us") return v / 1000
        if (u == "ms") return v
        if (u == "s")  return v * 1000
        if (u == "m")  return v * 60000
        if (u == "h")  return v * 3600000
        return -1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ {
        line = $0; sub(/^[ \t]+/, "", line)
        for (i = 3; i <= NF; i++) { g = $i; gsub(/[^0-9]/, "", g); if (g != "") se += g }
    }
    END {
        if (rps == "" || p50 == "" || p99 == "") { print "FAIL"; exit }
        gsub(/ /, "_", line)
        printf "%s %.6f %.6f %d %d %s\n", rps, p50, p99, non2xx + 0, se + 0, (line == "" ? "-" : line)
    }' "$1"
}

# run_wrk OUTFILE SECONDS URL MODEL: wrk in the background + wait, so a
# signal to this script is handled at once (and cleanup stops wrk).
run_wrk() {
    local out=$1 secs=$2 url=$3 model=$4 rc=0
    BENCH_MODEL=$model wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency \
        -s "$BENCH_DIR/post.lua" "$url" -- "$model" >"$out" 2>&1 &
    CUR_JOB=$!
    wait "$CUR_JOB" || rc=$?
    CUR_JOB=""
    if (( rc != 0 )); then
        log "wrk exited with status $rc against $url:"
        cat "$out" >&2 || true
        check_servers
        exit 2
    fi
}

# rss_mb PID -> RssAnon+RssFile in MB (excludes RssShmem), empty if gone
rss_mb() {
    awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
         END { if (a == "" && f == "") exit; printf "%.1f\n", (a + f) / 1024 }' \
        "/proc/$1/status" 2>/dev/null || true
}

declare -A MEM_IDLE=() MEM_LOAD=() MEM_ROLE=()
snapshot_mem() { # idle|load
    local phase=$1 pid v
    local -a procs=("$RCC_PID")
    while read -r pid; do [[ -n $pid ]] && procs+=("$pid"); done < <(pgrep -P "$RCC_PID" | sort -n || true)
    for pid in "${procs[@]}"; do
        v=$(rss_mb "$pid")
        [[ -n $v ]] || continue
        if [[ $pid == "$RCC_PID" ]]; then MEM_ROLE[$pid]=master; else MEM_ROLE[$pid]=worker; fi
        if [[ $phase == idle ]]; then MEM_IDLE[$pid]=$v; else MEM_LOAD[$pid]=$v; fi
    done
}

# ttfb_ms URL MODEL -> one streamed request's time to first byte, in ms
ttfb_ms() {
    local url=$1 model=$2 res code t
    res=$(curl -s -N -o /dev/null --max-time 10 -w '%{http_code} %{time_starttransfer}' \
        -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
        --data-binary "$(chat_body "$model" stream)" "$url" || true)
    read -r code t <<<"$res"
    if [[ $code != 200 ]]; then
        log "streamed request to $url (model $model) answered HTTP ${code:-none}"
        return 1
    fi
    awk -v t="$t" 'BEGIN { printf "%.3f\n", t * 1000 }'
}

# ===================================================================== main
log "work dir $WORK"
start_mock
start_nginx
start_pipelined
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed -n 's|^nginx version: nginx/||p')

SYSTEMS=(direct nginx rcc)
declare -A LABEL=([direct]="upstream direct" [nginx]="nginx proxy" [rcc]="rcc-pipeline")
declare -A URL=(
    [direct]="http://127.0.0.1:$MOCK_PORT$CHAT_PATH"
    [nginx]="http://127.0.0.1:$NGINX_PORT$CHAT_PATH"
    [rcc]="http://127.0.0.1:$RCC_PORT$CHAT_PATH"
)
declare -A MODEL=([direct]=fast [nginx]=fast [rcc]=default)

for s in "${SYSTEMS[@]}"; do
    smoke "${LABEL[$s]}" "${URL[$s]}" "${MODEL[$s]}" || {
        [[ $s == rcc ]] && show_log "$WORK/pipelined.log"
        [[ $s == nginx ]] && show_log "$WORK/nginx/error.log"
        die 1 "smoke request to ${LABEL[$s]} failed"
    }
done
log "smoke requests OK"

snapshot_mem idle

declare -A RPS=() P50=() P99=() NON2XX=() SOCKERR=()
declare -a WARNINGS=()
total_s=$(( RUNS * ${#SYSTEMS[@]} * (DURATION + WARMUP) ))
log "load: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up, $RUNS run(s) per system interleaved (~${total_s}s)"
for (( run = 1; run <= RUNS; run++ )); do
    for s in "${SYSTEMS[@]}"; do
        check_servers
        run_wrk "$WORK/wrk-$s-warmup-$run.txt" "$WARMUP" "${URL[$s]}" "${MODEL[$s]}"
        out=$WORK/wrk-$s-$run.txt
        run_wrk "$out" "$DURATION" "${URL[$s]}" "${MODEL[$s]}"
        parsed=$(parse_wrk "$out")
        if [[ $parsed == FAIL ]]; then
            log "could not parse wrk output for ${LABEL[$s]} run $run:"
            cat "$out" >&2
            exit 2
        fi
        read -r rps p50 p99 n2 se seline <<<"$parsed"
        RPS[$s]+="$rps "; P50[$s]+="$p50 "; P99[$s]+="$p99 "
        NON2XX[$s]=$(( ${NON2XX[$s]:-0} + n2 ))
        SOCKERR[$s]=$(( ${SOCKERR[$s]:-0} + se ))
        if (( n2 > 0 )); then
            WARNINGS+=("${LABEL[$s]} run $run: Non-2xx or 3xx responses: $n2")
        fi
        if [[ $seline != - ]]; then
            WARNINGS+=("${LABEL[$s]} run $run: ${seline//_/ }")
        fi
        log "run $run ${LABEL[$s]}: $(fmt "$rps" 0) req/s, p50 $(fmt "$p50") ms, p99 $(fmt "$p99") ms$( (( n2 > 0 )) && printf ', %s non-2xx' "$n2")$( [[ $seline != - ]] && printf ', %s' "${seline//_/ }")"
    done
done

check_servers
snapshot_mem load

# --------------------------------------------------------------- streaming
log "streaming TTFB: $STREAM_N sequential requests each way"
declare -A TTFB=() TTFB_FAIL=()
for s in direct rcc; do
    vals="" TTFB_FAIL[$s]=0
    for (( i = 0; i < STREAM_N; i++ )); do
        if v=$(ttfb_ms "${URL[$s]}" "${MODEL[$s]}"); then
            vals+="$v"$'\n'
        else
            TTFB_FAIL[$s]=$(( TTFB_FAIL[$s] + 1 ))
        fi
    done
    TTFB[$s]=$(printf '%s' "$vals" | median)
done
(( TTFB_FAIL[rcc] == 0 )) || show_log "$WORK/pipelined.log"

# ------------------------------------------------------------------ report
declare -A M_RPS=() M_P50=() M_P99=()
for s in "${SYSTEMS[@]}"; do
    M_RPS[$s]=$(tr ' ' '\n' <<<"${RPS[$s]}" | grep . | median)
    M_P50[$s]=$(tr ' ' '\n' <<<"${P50[$s]}" | grep . | median)
    M_P99[$s]=$(tr ' ' '\n' <<<"${P99[$s]}" | grep . | median)
done

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $cpu_model ]] || cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
[[ -n $cpu_model ]] || cpu_model=unknown
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2; exit }' || true)

echo "## rcc-pipeline benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(nproc) CPUs, ${cpu_model}, kernel $(uname -r)"
echo "- load: wrk ${wrk_version:-?} \`-t$THREADS -c$CONNS -d${DURATION}s --latency\`, ${WARMUP} s warm-up before each run, $RUNS measured run(s) per system interleaved (direct, nginx, rcc, ...); medians over runs"
echo "- request: \`POST $CHAT_PATH\`, \`{\"model\":...,\"messages\":[{\"role\":\"user\",\"content\":\"hello bench\"}]}\`; model \`fast\` direct and via nginx, \`default\` via rcc-pipeline (routed to upstream model \`fast\`)"
echo "- upstream: \`bin/mock_upstream\` (model \`fast\`: small fixed JSON); nginx ${NGINX_VERSION}: \`worker_processes 2\` to match pipelined \`workers = 2\`, upstream \`keepalive 64\`, \`proxy_http_version 1.1\`, access log off"
echo "- wrk, the proxies and the upstream all share the same $(nproc) CPUs (loopback)"
echo
echo "| system | req/s | p50 ms | p99 ms | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|"
for s in "${SYSTEMS[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s |\n' "${LABEL[$s]}" "$(fmt "${M_RPS[$s]}" 0)" \
        "$(fmt "${M_P50[$s]}")" "$(fmt "${M_P99[$s]}")" "${NON2XX[$s]:-0}" "${SOCKERR[$s]:-0}"
done
echo
echo "| ratio | value |"
echo "|---|---:|"
echo "| rcc/nginx req/s | $(ratio "${M_RPS[rcc]}" "${M_RPS[nginx]}") |"
echo "| rcc p99 / nginx p99 | $(ratio "${M_P99[rcc]}" "${M_P99[nginx]}") |"
echo "| rcc/direct req/s | $(ratio "${M_RPS[rcc]}" "${M_RPS[direct]}") |"
echo
echo "Per-run req/s:"
echo
for s in "${SYSTEMS[@]}"; do
    runs_fmt=""
    for v in ${RPS[$s]}; do runs_fmt+="$(fmt "$v" 0), "; done
    echo "- ${LABEL[$s]}: ${runs_fmt%, }"
done
if (( ${#WARNINGS[@]} > 0 )); then
    echo
    echo "**Errors reported by wrk** (non-2xx replies make a run's numbers meaningless; socket errors are as wrk counts them):"
    echo
    for w in "${WARNINGS[@]}"; do echo "- $w"; done
fi

echo
echo "### pipelined memory (RssAnon + RssFile, excluding RssShmem), MB"
echo
echo "| process | pid | idle | after load |"
echo "|---|---:|---:|---:|"
sum_idle=0 sum_load=0
mapfile -t mem_pids < <(printf '%s\n' "${!MEM_ROLE[@]}" | sort -n)
for pid in "${mem_pids[@]}"; do
    i=${MEM_IDLE[$pid]:-} l=${MEM_LOAD[$pid]:-}
    printf '| %s | %s | %s | %s |\n' "${MEM_ROLE[$pid]}" "$pid" "${i:--}" "${l:--}"
    sum_idle=$(awk -v a="$sum_idle" -v b="${i:-0}" 'BEGIN { print a + b }')
    sum_load=$(awk -v a="$sum_load" -v b="${l:-0}" 'BEGIN { print a + b }')
done
printf '| **total** | | **%s** | **%s** |\n' "$(fmt "$sum_idle" 1)" "$(fmt "$sum_load" 1)"
n_idle=${#MEM_IDLE[@]} n_load=${#MEM_LOAD[@]}
if (( n_idle != n_load )) || (( n_idle != ${#MEM_ROLE[@]} )); then
    echo
    echo "Note: the set of pipelined processes changed during the load (idle: $n_idle, after: $n_load)."
fi

echo
echo "### Streaming time to first byte ($STREAM_N sequential \`\"stream\":true\` requests each way, median of curl time_starttransfer)"
echo
echo "| path | TTFB ms | failed |"
echo "|---|---:|---:|"
echo "| upstream direct (model \`fast\`) | $(fmt "${TTFB[direct]}") | ${TTFB_FAIL[direct]} |"
echo "| via rcc-pipeline (model \`default\`) | $(fmt "${TTFB[rcc]}") | ${TTFB_FAIL[rcc]} |"
ttfb_diff=""
[[ -n ${TTFB[rcc]} && -n ${TTFB[direct]} ]] && ttfb_diff=$(awk -v a="${TTFB[rcc]}" -v b="${TTFB[direct]}" 'BEGIN { print a - b }')
echo "| difference (rcc - direct) | $(fmt "$ttfb_diff") | |"

# Concurrent streams (bin/stream_bench), direct, through nginx (its
# unbuffered server) and through rcc, STREAM_RUNS runs each, interleaved:
#   burst      STREAMS streams opened at once, back to back; the mock
#              (model fast) writes each whole answer, STREAM_WORDS + 2
#              chunks, as fast as it can: the thundering herd.
#   sustained  STREAMS streams always in flight: opened at staggered times
#              over one stream's length, each replaced when it ends, for
#              STREAM_SECONDS; the mock sends a chunk every STREAM_PACE_MS
#              (model drip-MS; rcc's virtual model "paced"), as a model
#              generating tokens does. Only streams opened once all
#              STREAMS are in flight are timed.
# Each reports the p50/p99 of the time from connect() to the first data:
# line; "added" is a proxy's median minus direct's median.
rcc_rss_kb() {  # master + workers, RssAnon + RssFile
    local total=0 pid
    for pid in "$RCC_PID" $(pgrep -P "$RCC_PID" || true); do
        total=$(( total + $(awk '/^RssAnon|^RssFile/ { s += $2 } END { print s + 0 }' "/proc/$pid/status" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}
declare -A SB_P50=() SB_P99=() SB_FAIL=() SB_PEAK=()
STREAM_RAMP_MS=$(( STREAM_PACE_MS * (STREAM_WORDS + 1) ))
(( STREAM_SECONDS * 1000 > STREAM_RAMP_MS )) \
    || die 1 "BENCH_STREAM_SECONDS must be longer than one stream ($STREAM_RAMP_MS ms)"
declare -A SB_PORT=([direct]=$MOCK_PORT [nginx]=$NGINX_STREAM_PORT [rcc]=$RCC_PORT)
for kind in burst sustained; do
    SB_PEAK[$kind]=0
    if [[ $kind == burst ]]; then
        log "streams: $STREAMS opened at once, $((STREAM_WORDS + 2)) chunks each, $STREAM_RUNS run(s) per path"
    else
        log "streams: $STREAMS in flight for ${STREAM_SECONDS}s, a chunk every ${STREAM_PACE_MS} ms, $STREAM_RUNS run(s) per path"
    fi
    for (( r = 1; r <= STREAM_RUNS; r++ )); do
        for s in direct nginx rcc; do
            check_servers
            if [[ $kind == burst ]]; then
                model=fast; [[ $s == rcc ]] && model=default
                args=()
            else
                model=drip-$STREAM_PACE_MS; [[ $s == rcc ]] && model=paced
                args=("$STREAM_RAMP_MS" "$STREAM_SECONDS")
            fi
            sampler=""
            if [[ $s == rcc ]]; then
                ( while :; do rcc_rss_kb; sleep 0.02; done ) >"$WORK/rss.samples" &
                sampler=$!
            fi
            out=$(bin/stream_bench "${SB_PORT[$s]}" "$model" "$STREAMS" \
                  "$STREAM_WORDS" "${args[@]}") || SB_FAIL[$s]=$(( ${SB_FAIL[$s]:-0} + 1 ))
            if [[ -n $sampler ]]; then
                kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
                p=$(sort -n "$WORK/rss.samples" | tail -1)
                (( ${p:-0} > SB_PEAK[$kind] )) && SB_PEAK[$kind]=$p
            fi
            log "streams $kind ${LABEL[$s]} run $r: $out"
            SB_P50[$kind.$s]+="$(sed -n 's/.*ttfb_p50_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
            SB_P99[$kind.$s]+="$(sed -n 's/.*ttfb_p99_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
        done
    done
done
idle_kb=$(rcc_rss_kb)
added() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%+.2f\n", a - b }'; }
for kind in burst sustained; do
    echo
    if [[ $kind == burst ]]; then
        echo "### $STREAMS concurrent streams of $((STREAM_WORDS + 2)) chunks, opened at once (burst; medians of $STREAM_RUNS runs)"
    else
        echo "### $STREAMS concurrent streams, a chunk every $STREAM_PACE_MS ms, staggered and replaced as they end for ${STREAM_SECONDS} s (sustained; medians of $STREAM_RUNS runs)"
    fi
    echo
    echo "| path | first chunk p50 ms | first chunk p99 ms | added p50 ms | added p99 ms |"
    echo "|---|---:|---:|---:|---:|"
    d50=$(tr ' ' '\n' <<<"${SB_P50[$kind.direct]:-}" | grep . | median)
    d99=$(tr ' ' '\n' <<<"${SB_P99[$kind.direct]:-}" | grep . | median)
    for s in direct nginx rcc; do
        m50=$(tr ' ' '\n' <<<"${SB_P50[$kind.$s]:-}" | grep . | median)
        m99=$(tr ' ' '\n' <<<"${SB_P99[$kind.$s]:-}" | grep . | median)
        if [[ $s == direct ]]; then
            printf '| %s | %s | %s | | |\n' "${LABEL[$s]}" "$(fmt "$m50")" "$(fmt "$m99")"
        else
            printf '| %s | %s | %s | %s | %s |\n' "${LABEL[$s]}" "$(fmt "$m50")" "$(fmt "$m99")" \
                "$(added "$m50" "$d50")" "$(added "$m99" "$d99")"
        fi
    done
    echo
    echo "Peak RSS of master + workers while these streams ran: $(awk -v k="${SB_PEAK[$kind]}" 'BEGIN { printf "%.1f", k / 1024 }') MB."
done
echo
echo "RSS of master + workers after the stream runs: $(awk -v k="$idle_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB."

total_non2xx=0
for s in "${SYSTEMS[@]}"; do total_non2xx=$(( total_non2xx + ${NON2XX[$s]:-0} )); done
if (( total_non2xx > 0 )) && [[ $ALLOW_ERRORS != 1 ]]; then
    log "wrk saw $total_non2xx non-2xx responses; exiting 3 (set BENCH_ALLOW_ERRORS=1 to ignore)"
    exit 3
fi
sb_failed=$(( ${SB_FAIL[direct]:-0} + ${SB_FAIL[nginx]:-0} + ${SB_FAIL[rcc]:-0} ))
if (( TTFB_FAIL[direct] + TTFB_FAIL[rcc] + sb_failed > 0 )); then
    log "$(( TTFB_FAIL[direct] + TTFB_FAIL[rcc] )) streamed request(s) and $sb_failed stream run(s) failed; exiting 4"
    exit 4
fi
log "done"
exit 0
