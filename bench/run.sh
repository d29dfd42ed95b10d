#!/usr/bin/env bash
# bench/run.sh — throughput/latency/memory/TTFB benchmark for rcc-pipeline.
#
# Run after `make` (or via `make bench`); it works from the repo root
# whatever the current directory:
#
#     bench/run.sh                      # full run, ~5 min with the defaults
#     BENCH_DURATION=3 BENCH_RUNS=1 bench/run.sh   # quick smoke run
#     BENCH_LAYOUTS=pinned bench/run.sh # the issue 14 measurement only
#     BENCH_LAYOUTS=none bench/run.sh   # the cluster-mode comparison only
#     BENCH_LAYOUTS=pinned BENCH_SOAK_SECONDS=600 bench/run.sh  # + 10 min soak
#     bench/run.sh > report.md          # stdout is the markdown report only;
#                                       # progress and diagnostics go to stderr
#
# It compares three systems under the same wrk load:
#   upstream direct  wrk -> bin/mock_upstream
#   nginx proxy      wrk -> our own nginx (reverse proxy) -> bin/mock_upstream
#   rcc-pipeline     wrk -> bin/pipelined -> bin/mock_upstream
#
# in two layouts (BENCH_LAYOUTS):
#   unpinned  everything shares every CPU: the direct/nginx/rcc runs, the
#             streaming TTFB and the concurrent stream runs
#   pinned    the gateway under test (rcc's master and workers, or nginx's
#             master and its one worker) pinned to BENCH_GATEWAY_CPU with
#             taskset, its own upstream (BENCH_PIN_UPSTREAM) and wrk pinned
#             to BENCH_LOAD_CPU; BENCH_PIN_RUNS rounds of rcc, nginx and
#             upstream direct (the most wrk and the upstream can do on
#             their CPU: a gateway close to it is held back by the load
#             side)
# and, unless BENCH_CLUSTER=0, rcc-pipeline in cluster mode against
# the same rcc-pipeline without it (issue 17: cluster mode may cost at
# most 10% of req/s): one instance with a `cluster` group pointing at a
# local redis-server and one with the same configuration without it,
# BENCH_CLUSTER_RUNS rounds of each, interleaved, on the pinned layout's
# CPUs when it can run here (unpinned otherwise), each round a warm-up
# and a BENCH_DURATION run; their median req/s, p99 and CPU us per
# request, and the ratio cluster/single. Both configurations give the
# target an rpm budget too high to be reached, so that cluster mode's
# shared budget is on the path.
#
# It prints for each layout, rcc against nginx measured in the same run
# (best of the rounds and medians, and their ratios): req/s, p50/p99,
# CPU us per request (utime + stime from /proc/PID/stat of the gateway's
# processes, master and workers, summed; delta over the measured run
# divided by the requests wrk completed), PSS (Pss of
# /proc/PID/smaps_rollup summed over the same processes) idle and right
# after a BENCH_BIG_SECONDS run at BENCH_BIG_CONNECTIONS. With
# BENCH_SOAK_SECONDS it then drives rcc (the pinned one if that layout
# ran) with mixed plain (wrk) and paced streamed (bin/stream_bench) load
# for that long and prints its RSS and PSS every BENCH_SOAK_INTERVAL s.
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
#   BENCH_STREAM_SECONDS  sustained run: seconds of streams opened (30)
#   BENCH_STREAM_RUNS  runs of each stream test per path          (3)
#   BENCH_DOOR_STREAMS the doors' run: streams opened at once through
#                      each door, OpenAI's and Anthropic's        (50)
#   BENCH_DOOR_RUNS    the doors' run: runs per door, interleaved (BENCH_STREAM_RUNS)
#   BENCH_LAYOUTS      layouts to run (unpinned first; none: neither)
#                                                  ("unpinned pinned")
#   BENCH_PIN_RUNS     pinned layout: rounds of rcc, nginx, direct       (2)
#   BENCH_GATEWAY_CPU  pinned layout: taskset CPU list of the gateway   (0)
#   BENCH_LOAD_CPU     pinned layout: CPU list of upstream(s) and wrk   (1)
#   BENCH_PIN_NGINX_WORKERS  pinned layout: nginx worker_processes      (1)
#   BENCH_PIN_RCC_WORKERS    pinned layout: pipelined workers           (2)
#   BENCH_PIN_UPSTREAM pinned layout: upstream of the plain requests:
#                      nginx (one worker returning mock model fast's
#                      answer, as the issue measured; half the mock's CPU
#                      per request, so that wrk and the upstream on one
#                      CPU do not cap nginx) or mock (bin/mock_upstream);
#                      the soak's paced streams always go to the mock (nginx)
#   BENCH_CLUSTER      1: the cluster-mode comparison, 0: skip it     (1)
#   BENCH_CLUSTER_RUNS the cluster-mode comparison: rounds of cluster
#                      and single, interleaved                       (3)
#   BENCH_BIG_CONNECTIONS  wrk -c of the run before the loaded PSS    (512)
#   BENCH_BIG_SECONDS  seconds of that run                            (6)
#   BENCH_SOAK_SECONDS soak: seconds of mixed load on rcc, 0 = no soak (0)
#   BENCH_SOAK_INTERVAL   soak: seconds between RSS/PSS samples       (5)
#   BENCH_SOAK_CONNECTIONS soak: wrk -c of the plain requests         (32)
#   BENCH_SOAK_STREAMS soak: paced streams kept in flight             (50)
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
STREAM_SECONDS=${BENCH_STREAM_SECONDS:-30}
STREAM_RUNS=${BENCH_STREAM_RUNS:-3}
DOOR_STREAMS=${BENCH_DOOR_STREAMS:-50}
DOOR_RUNS=${BENCH_DOOR_RUNS:-$STREAM_RUNS}
PIPELINED=${BENCH_PIPELINED:-bin/pipelined}
MOCK=${BENCH_MOCK:-bin/mock_upstream}
KEEP_LOGS=${BENCH_KEEP_LOGS:-}
ALLOW_ERRORS=${BENCH_ALLOW_ERRORS:-0}
LAYOUTS=${BENCH_LAYOUTS:-unpinned pinned}
PIN_RUNS=${BENCH_PIN_RUNS:-2}
GATEWAY_CPU=${BENCH_GATEWAY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PIN_NGINX_WORKERS=${BENCH_PIN_NGINX_WORKERS:-1}
PIN_RCC_WORKERS=${BENCH_PIN_RCC_WORKERS:-2}
PIN_UPSTREAM=${BENCH_PIN_UPSTREAM:-nginx}
BIG_CONNS=${BENCH_BIG_CONNECTIONS:-512}
BIG_SECONDS=${BENCH_BIG_SECONDS:-6}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-0}
SOAK_INTERVAL=${BENCH_SOAK_INTERVAL:-5}
SOAK_CONNS=${BENCH_SOAK_CONNECTIONS:-32}
SOAK_STREAMS=${BENCH_SOAK_STREAMS:-50}
DO_CLUSTER=${BENCH_CLUSTER:-1}
CLUSTER_RUNS=${BENCH_CLUSTER_RUNS:-3}
UNPINNED_WORKERS=2       # nginx worker_processes and pipelined workers, unpinned

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
         STREAM_PACE_MS STREAM_SECONDS STREAM_RUNS PIN_RUNS PIN_NGINX_WORKERS \
         PIN_RCC_WORKERS BIG_CONNS BIG_SECONDS SOAK_INTERVAL SOAK_CONNS \
         SOAK_STREAMS DOOR_STREAMS DOOR_RUNS CLUSTER_RUNS; do
    if ! is_uint "${!v}" || (( 10#${!v} == 0 )); then
        die 1 "BENCH_${v/CONNS/CONNECTIONS} must be a positive integer (got '${!v}')"
    fi
    printf -v "$v" '%d' "$(( 10#${!v} ))"
done
is_uint "$SOAK_SECONDS" || die 1 "BENCH_SOAK_SECONDS must be a non-negative integer (got '$SOAK_SECONDS')"
SOAK_SECONDS=$(( 10#$SOAK_SECONDS ))
(( CONNS >= THREADS )) || die 1 "BENCH_CONNECTIONS ($CONNS) must be >= BENCH_THREADS ($THREADS)"
(( BIG_CONNS >= THREADS )) || die 1 "BENCH_BIG_CONNECTIONS ($BIG_CONNS) must be >= BENCH_THREADS ($THREADS)"
(( SOAK_CONNS >= THREADS )) || die 1 "BENCH_SOAK_CONNECTIONS ($SOAK_CONNS) must be >= BENCH_THREADS ($THREADS)"
[[ $GATEWAY_CPU =~ ^[0-9,-]+$ && $LOAD_CPU =~ ^[0-9,-]+$ ]] \
    || die 1 "BENCH_GATEWAY_CPU and BENCH_LOAD_CPU must be taskset CPU lists (got '$GATEWAY_CPU', '$LOAD_CPU')"
DO_UNPINNED=0 DO_PINNED=0
for l in $LAYOUTS; do
    case $l in
        unpinned) DO_UNPINNED=1 ;;
        pinned) DO_PINNED=1 ;;
        none) ;;
        *) die 1 "BENCH_LAYOUTS: unknown layout '$l' (unpinned, pinned, none)" ;;
    esac
done
[[ $DO_CLUSTER == 0 || $DO_CLUSTER == 1 ]] || die 1 "BENCH_CLUSTER must be 0 or 1 (got '$DO_CLUSTER')"
(( DO_UNPINNED + DO_PINNED + DO_CLUSTER > 0 )) || die 1 "BENCH_LAYOUTS names no layout and BENCH_CLUSTER is 0"
[[ $PIN_UPSTREAM == mock || $PIN_UPSTREAM == nginx ]] \
    || die 1 "BENCH_PIN_UPSTREAM must be mock or nginx (got '$PIN_UPSTREAM')"
(( SOAK_SECONDS == 0 || SOAK_SECONDS * 1000 > STREAM_PACE_MS * (STREAM_WORDS + 1) )) \
    || die 1 "BENCH_SOAK_SECONDS must be longer than one stream ($(( STREAM_PACE_MS * (STREAM_WORDS + 1) )) ms)"

# ------------------------------------------------------- process tracking
WORK=""
declare -a PIDS=()        # every long-running process we started
declare -A PID_NAME=()
CUR_JOB=""                # foreground-ish job (wrk) run in background + wait
declare -a BG_JOBS=()     # load generators of the soak, run side by side

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
    for pid in "${BG_JOBS[@]}"; do
        alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || true
        targets+=("$pid")
    done
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
    BG_JOBS=()
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
for f in post.lua nginx.conf.in nginx-upstream.conf.in pipelined.conf.in; do
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
# Each start_* function starts one server and sets the globals below for
# the caller. Arguments: TAG ("" for the unpinned servers, "-pin" for the
# pinned ones: a suffix of their file names) and CPUS (a taskset CPU list
# the process and its children are pinned to; "" = not pinned).
MOCK_PORT="" MOCK_PID="" NGINX_PORT="" NGINX_STREAM_PORT="" NGINX_PID=""
RCC_PORT="" RCC_PID="" NGINX_VERSION=""
PLAIN_PORT="" PLAIN_PID=""   # upstream of the plain requests if not the mock

# pin_cmd CPUS: sets PIN_CMD to the command prefix that pins to CPUS.
declare -a PIN_CMD=()
pin_cmd() {
    PIN_CMD=()
    [[ -z $1 ]] || PIN_CMD=(taskset -c "$1")
}

start_mock() { # TAG CPUS
    local tag=$1 portfile=$WORK/mock$1.port logf=$WORK/mock$1.log pid deadline
    pin_cmd "$2"
    log "starting $MOCK (ephemeral port${2:+, CPU $2})"
    "${PIN_CMD[@]}" "$MOCK" -a 127.0.0.1 -p 0 -P "$portfile" -q >"$logf" 2>&1 &
    pid=$!
    track "$pid" "mock_upstream$tag"
    PID_LOG[$pid]=$logf
    deadline=$(( $(now_ms) + READY_TIMEOUT_MS ))
    while [[ ! -s $portfile ]]; do
        alive "$pid" || { show_log "$logf"; die 1 "mock_upstream exited during start-up"; }
        (( $(now_ms) <= deadline )) || { show_log "$logf"; die 1 "mock_upstream wrote no port file within 10 s"; }
        sleep "$POLL_S"
    done
    MOCK_PORT=$(tr -dc '0-9' <"$portfile")
    is_uint "$MOCK_PORT" || die 1 "bad port in $portfile: '$(cat "$portfile")'"
    wait_ready mock_upstream "$pid" "http://127.0.0.1:$MOCK_PORT/" any \
        || { show_log "$logf"; die 1 "mock_upstream did not become ready"; }
    MOCK_PID=$pid
    log "mock_upstream$tag ready on 127.0.0.1:$MOCK_PORT (pid $pid)"
}

start_nginx() { # TAG CPUS WORKERS: proxies to PLAIN_PORT
    local tag=$1 workers=$3 attempt prefix=$WORK/nginx$1 pid
    mkdir -p "$prefix"
    chmod 755 "$prefix"
    pin_cmd "$2"
    for attempt in 1 2 3; do
        pick_port; NGINX_PORT=$PICKED
        pick_port; NGINX_STREAM_PORT=$PICKED
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@UPSTREAM_PORT@|${PLAIN_PORT:-$MOCK_PORT}|g" \
            -e "s|@LISTEN_PORT@|$NGINX_PORT|g" -e "s|@WORKERS@|$workers|g" \
            -e "s|@STREAM_LISTEN_PORT@|$NGINX_STREAM_PORT|g" \
            "$BENCH_DIR/nginx.conf.in" >"$prefix/nginx.conf"
        log "starting nginx$tag on 127.0.0.1:$NGINX_PORT${2:+, CPU $2} (attempt $attempt)"
        "${PIN_CMD[@]}" "$NGINX_BIN" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
            >"$prefix/stdout.log" 2>&1 &
        pid=$!
        track "$pid" "nginx$tag"
        PID_LOG[$pid]=$prefix/error.log
        if wait_ready nginx "$pid" "http://127.0.0.1:$NGINX_PORT/" any; then
            NGINX_PID=$pid
            log "nginx$tag ready (master pid $pid, worker_processes $workers)"
            return 0
        fi
        show_log "$prefix/error.log"; show_log "$prefix/stdout.log"
        stop_last
        port_clash "$prefix/error.log" "$prefix/stdout.log" || break
    done
    die 1 "nginx failed to start"
}

# PIPELINED_TARGET_OPTS: put in the plain target's group (e.g. a budget);
# PIPELINED_EXTRA: added at the end of the configuration (e.g. a group).
PIPELINED_TARGET_OPTS="" PIPELINED_EXTRA=""
start_pipelined() { # TAG CPUS WORKERS: plain requests to PLAIN_PORT, streams to MOCK_PORT
    local tag=$1 workers=$3 attempt pid conf=$WORK/pipelined$1.conf
    local logf=$WORK/pipelined$1.log sock=$WORK/control$1.sock
    local up=${PLAIN_PORT:-$MOCK_PORT} sprov=up sprovs=""
    if [[ $up != "$MOCK_PORT" ]]; then
        sprov=drip
        sprovs=", { name = \"drip\"; type = \"openai\"; base_url = \"http://127.0.0.1:$MOCK_PORT/v1\"; api_key = \"bench-key\"; }"
    fi
    pin_cmd "$2"
    for attempt in 1 2 3; do
        pick_port; RCC_PORT=$PICKED
        sed -e "s|@LISTEN_PORT@|$RCC_PORT|g" -e "s|@UPSTREAM_PORT@|$up|g" \
            -e "s|@STREAM_PROVIDERS@|$sprovs|g" -e "s|@STREAM_PROVIDER@|$sprov|g" \
            -e "s|@STREAM_PACE_MS@|$STREAM_PACE_MS|g" -e "s|@WORKERS@|$workers|g" \
            -e "s|@CONTROL_SOCKET@|$sock|g" -e "s|@TARGET_OPTS@|$PIPELINED_TARGET_OPTS|g" \
            "$BENCH_DIR/pipelined.conf.in" >"$conf"
        [[ -z $PIPELINED_EXTRA ]] || printf '%s\n' "$PIPELINED_EXTRA" >>"$conf"
        rm -f "$sock"
        log "starting $PIPELINED$tag on 127.0.0.1:$RCC_PORT${2:+, CPU $2} (attempt $attempt)"
        "${PIN_CMD[@]}" "$PIPELINED" -c "$conf" >"$logf" 2>&1 &
        pid=$!
        track "$pid" "pipelined$tag"
        PID_LOG[$pid]=$logf
        if wait_ready pipelined "$pid" "http://127.0.0.1:$RCC_PORT/health" 200; then
            RCC_PID=$pid
            log "pipelined$tag ready (master pid $pid, workers $workers)"
            return 0
        fi
        show_log "$logf"
        stop_last
        port_clash "$logf" || break
    done
    die 1 "pipelined failed to start"
}

start_static() { # TAG CPUS: nginx answering every request with "fast"'s answer
    local tag=$1 attempt prefix=$WORK/upstream-nginx$1 pid
    mkdir -p "$prefix"
    chmod 755 "$prefix"
    pin_cmd "$2"
    for attempt in 1 2 3; do
        pick_port; PLAIN_PORT=$PICKED
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@LISTEN_PORT@|$PLAIN_PORT|g" \
            "$BENCH_DIR/nginx-upstream.conf.in" >"$prefix/nginx.conf"
        log "starting nginx as upstream$tag on 127.0.0.1:$PLAIN_PORT${2:+, CPU $2} (attempt $attempt)"
        "${PIN_CMD[@]}" "$NGINX_BIN" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
            >"$prefix/stdout.log" 2>&1 &
        pid=$!
        track "$pid" "upstream-nginx$tag"
        PID_LOG[$pid]=$prefix/error.log
        if wait_ready upstream-nginx "$pid" "http://127.0.0.1:$PLAIN_PORT/" 200; then
            PLAIN_PID=$pid
            log "upstream-nginx$tag ready (master pid $pid)"
            return 0
        fi
        show_log "$prefix/error.log"; show_log "$prefix/stdout.log"
        stop_last
        port_clash "$prefix/error.log" "$prefix/stdout.log" || break
    done
    die 1 "nginx as upstream failed to start"
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

# stop_some PID...: stop these servers (started by us) and forget them.
stop_some() {
    local pid p
    local -a keep=()
    for p in "${PIDS[@]}"; do
        for pid in "$@"; do [[ $p == "$pid" ]] && continue 2; done
        keep+=("$p")
    done
    PIDS=("$@")
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

fmt() { awk -v x="$1" -v p="${2:-2}" 'BEGIN { if (x == "" || x == "-") print "n/a"; else printf "%.*f\n", p, x }'; }
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

# run_wrk OUTFILE SECONDS URL MODEL [CONNECTIONS]: wrk in the background +
# wait, so a signal to this script is handled at once (and cleanup stops
# wrk). wrk is pinned to WRK_CPU when that is set.
WRK_CPU=""
run_wrk() {
    local out=$1 secs=$2 url=$3 model=$4 conns=${5:-$CONNS} rc=0
    pin_cmd "$WRK_CPU"
    BENCH_MODEL=$model "${PIN_CMD[@]}" wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency \
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

# ------------------------------------------------- CPU and memory accounting
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
is_uint "$CLK_TCK" && (( CLK_TCK > 0 )) || CLK_TCK=100

# proc_tree PID: PID and all its descendants (a gateway's master and
# workers), one a line.
proc_tree() {
    local c
    echo "$1"
    while read -r c; do
        [[ -n $c ]] && proc_tree "$c"
    done < <(pgrep -P "$1" 2>/dev/null || true)
}

# tree_cpu_ticks PID: utime + stime (clock ticks) of PID and every live
# descendant, plus PID's cutime + cstime (children it reaped: a worker that
# exited meanwhile still counts).
tree_cpu_ticks() {
    local total=0 pid line f
    while read -r pid; do
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        line=${line##*) }   # fields from the state on: utime is the 12th
        read -r -a f <<<"$line"
        total=$(( total + f[11] + f[12] ))
        [[ $pid == "$1" ]] && total=$(( total + f[13] + f[14] ))
    done < <(proc_tree "$1")
    echo "$total"
}

# tree_mem_kb PID: "PSS RSS" in kB summed over PID and its descendants:
# Pss of /proc/PID/smaps_rollup (shared pages divided among the processes
# that map them), RssAnon + RssFile of /proc/PID/status (as the RSS table).
tree_mem_kb() {
    local pss=0 rss=0 pid v
    while read -r pid; do
        v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
        pss=$(( pss + ${v:-0} ))
        v=$(awk '/^RssAnon:|^RssFile:/ { s += $2 } END { print s + 0 }' "/proc/$pid/status" 2>/dev/null || true)
        rss=$(( rss + ${v:-0} ))
    done < <(proc_tree "$1")
    echo "$pss $rss"
}

# cpu_snapshot: "busy total" jiffies of each CPU in /proc/stat, one a line
# in CPU order (busy = all but idle and iowait).
cpu_snapshot() {
    awk '$1 ~ /^cpu[0-9]+$/ { t = 0; for (i = 2; i <= NF; i++) t += $i
         printf "%s %d %d\n", $1, t - $5 - $6, t }' /proc/stat
}

# busy_pct SNAP0 SNAP1: "cpu0 97% cpu1 54%": how busy each CPU in
# BUSY_CPUS (all if empty; on more than BUSY_LIST_MAX CPUs their average,
# "all N%") was between two cpu_snapshot outputs, whoever ran on it.
BUSY_CPUS="" BUSY_LIST_MAX=4
busy_pct() {
    paste -d' ' <(printf '%s\n' "$1") <(printf '%s\n' "$2") |
    awk -v want=" $BUSY_CPUS " -v max="$BUSY_LIST_MAX" '
        { db = $5 - $2; dt = $6 - $3; sb += db; st += dt; n++
          if (want != "  " && index(want, " " substr($1, 4) " ") == 0) next
          out = out (out != "" ? " " : "") sprintf("%s %.0f%%", $1, dt > 0 ? 100 * db / dt : 0) }
        END { if (want == "  " && n > max) printf "all %.0f%%\n", st > 0 ? 100 * sb / st : 0
              else print out }'
}

# expand_cpus LIST: a taskset CPU list ("0-2,5") as "0 1 2 5".
expand_cpus() {
    local part i
    local -a parts=() cpus=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            for (( i = ${part%-*}; i <= ${part#*-}; i++ )); do cpus+=("$i"); done
        elif [[ -n $part ]]; then
            cpus+=("$part")
        fi
    done
    echo "${cpus[*]}"
}

# wrk_requests FILE: the requests wrk completed ("N requests in ...").
wrk_requests() {
    awk '/ requests in / { print $1; exit }' "$1"
}

# measure KEY URL MODEL GW_PID UP_PID OUTBASE: a warm-up and a measured wrk
# run; sets W_RPS W_P50 W_P99 W_N2 W_SE W_SELINE (as parse_wrk), W_REQS,
# W_CPU_US (gateway CPU us per request: GW_PID's process tree; empty
# without GW_PID), W_UP_US (the upstream's, UP_PID) and W_BUSY (busy_pct
# over the measured run). Exits 2 if wrk's output cannot be parsed.
W_RPS="" W_P50="" W_P99="" W_N2=0 W_SE=0 W_SELINE="-" W_REQS=0
W_CPU_US="" W_UP_US="" W_BUSY=""
measure() {
    local key=$1 url=$2 model=$3 gw=$4 up=$5 out=$6 parsed g0=0 g1=0 u0 u1 c0 c1
    run_wrk "$out-warmup.txt" "$WARMUP" "$url" "$model"
    [[ -n $gw ]] && g0=$(tree_cpu_ticks "$gw")
    u0=$(tree_cpu_ticks "$up")
    c0=$(cpu_snapshot)
    run_wrk "$out.txt" "$DURATION" "$url" "$model"
    c1=$(cpu_snapshot)
    u1=$(tree_cpu_ticks "$up")
    [[ -n $gw ]] && g1=$(tree_cpu_ticks "$gw")
    parsed=$(parse_wrk "$out.txt")
    if [[ $parsed == FAIL ]]; then
        log "could not parse wrk output for $key:"
        cat "$out.txt" >&2
        exit 2
    fi
    read -r W_RPS W_P50 W_P99 W_N2 W_SE W_SELINE <<<"$parsed"
    W_REQS=$(wrk_requests "$out.txt")
    is_uint "${W_REQS:-}" || W_REQS=0
    W_CPU_US="" W_UP_US=""
    if (( W_REQS > 0 )); then
        [[ -n $gw ]] && W_CPU_US=$(awk -v t=$(( g1 - g0 )) -v hz="$CLK_TCK" -v n="$W_REQS" \
            'BEGIN { printf "%.3f\n", t * 1e6 / hz / n }')
        W_UP_US=$(awk -v t=$(( u1 - u0 )) -v hz="$CLK_TCK" -v n="$W_REQS" \
            'BEGIN { printf "%.3f\n", t * 1e6 / hz / n }')
    fi
    W_BUSY=$(busy_pct "$c0" "$c1")
}

# big_run KEY URL MODEL GW_PID OUTFILE: BIG_SECONDS of wrk at BIG_CONNS,
# then the gateway's memory at once; sets BIG_RPS, BIG_N2 and BIG_PSS,
# BIG_RSS (kB).
BIG_RPS="" BIG_N2=0 BIG_PSS=0 BIG_RSS=0
big_run() {
    local key=$1 url=$2 model=$3 gw=$4 out=$5 parsed
    run_wrk "$out" "$BIG_SECONDS" "$url" "$model" "$BIG_CONNS"
    read -r BIG_PSS BIG_RSS < <(tree_mem_kb "$gw")
    parsed=$(parse_wrk "$out")
    BIG_RPS="" BIG_N2=0
    [[ $parsed == FAIL ]] || read -r BIG_RPS _ _ BIG_N2 _ <<<"$parsed"
    log "$key at c$BIG_CONNS for ${BIG_SECONDS}s: $(fmt "$BIG_RPS" 0) req/s, then PSS $(kb_mb "$BIG_PSS") MB"
}

kb_mb() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f\n", k / 1024 }'; }

# Results of the lean comparison, per "LAYOUT.SYSTEM": space-separated
# values, one per round ("-": none).
declare -A L_RPS=() L_P50=() L_P99=() L_CPU=() L_UP=() L_BUSY=() L_N2=()
declare -A L_PSS_IDLE=() L_PSS_BIG=() L_RSS_IDLE=() L_RSS_BIG=() L_BIG_RPS=()
lean_record() { # LAYOUT SYSTEM
    local k=$1.$2
    L_RPS[$k]+="$W_RPS " L_P50[$k]+="$W_P50 " L_P99[$k]+="$W_P99 "
    L_CPU[$k]+="${W_CPU_US:--} " L_UP[$k]+="${W_UP_US:--} "
    L_BUSY[$k]+="${W_BUSY// /_} "
    L_N2[$k]=$(( ${L_N2[$k]:-0} + W_N2 ))
}

# list_median LIST, list_best max|min LIST: of the space-separated values
# of LIST, "-" (no value) left out; empty if none.
list_median() { tr ' ' '\n' <<<"$1" | awk 'NF && $1 != "-"' | median; }
list_best() {
    tr ' ' '\n' <<<"$2" | awk -v how="$1" 'NF && $1 != "-" {
        if (!n++ || (how == "max" && $1 > b) || (how == "min" && $1 < b)) b = $1 + 0 }
        END { if (n) printf "%.6f\n", b }'
}
# nth N LIST: the Nth (from 1) space-separated value of LIST, "-" if none.
nth() {
    local -a words=()
    read -r -a words <<<"$2"
    echo "${words[$1 - 1]:--}"
}

# The issue's targets for the pinned layout (issue 14, "Lean and fast").
TARGET_RPS_RATIO=0.6      # rcc req/s >= this x nginx's
TARGET_CPU_RATIO=1.8      # rcc CPU per request <= this x nginx's
TARGET_PSS_BIG_MB=30      # rcc PSS after the c512 run
TARGET_PSS_IDLE_MB=12     # rcc PSS idle

declare -A LEAN_SYSTEMS=()   # LAYOUT -> systems in the order they ran
# lean_report LAYOUT LOAD_NOTE CONFIG_NOTE: the per-round table, best and
# median of rcc and nginx and their ratios, the memory table.
lean_report() {
    local layout=$1 s i n k busy row name arrname how prec rb nb rm nm
    local -a systems=() seen=()
    read -r -a systems <<<"${LEAN_SYSTEMS[$layout]}"
    echo
    echo "### Lean and fast, $layout layout: rcc-pipeline against nginx proxy"
    echo
    echo "- $2"
    echo "- $3"
    echo "- load: wrk \`-t$THREADS -c$CONNS -d${DURATION}s --latency\`, ${WARMUP} s warm-up before each run; best = highest req/s, lowest latency and CPU of the rounds, each on its own"
    echo "- CPU µs/req: utime + stime (/proc/PID/stat) of the gateway's processes (rcc: master + workers; nginx: master + workers), summed, delta over the measured run, divided by the requests wrk completed; upstream CPU: the upstream's processes, the same way; CPU busy: /proc/stat over the run, whoever ran there"
    echo "- PSS: \`Pss\` of /proc/PID/smaps_rollup summed over the same processes, idle (after one request) and right after ${BIG_SECONDS} s of \`wrk -t$THREADS -c$BIG_CONNS\`; RSS: RssAnon + RssFile of /proc/PID/status, summed"
    echo
    echo "| run | system | req/s | p50 ms | p99 ms | CPU µs/req | upstream CPU µs/req | CPU busy |"
    echo "|---:|---|---:|---:|---:|---:|---:|---|"
    n=0
    for s in "${systems[@]}"; do
        read -r -a seen <<<"${L_RPS[$layout.$s]:-}"
        (( ${#seen[@]} > n )) && n=${#seen[@]}
    done
    for (( i = 1; i <= n; i++ )); do
        for s in "${systems[@]}"; do
            k=$layout.$s
            busy=$(nth "$i" "${L_BUSY[$k]:-}")
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$i" "${LABEL[$s]}" \
                "$(fmt "$(nth "$i" "${L_RPS[$k]:-}")" 0)" "$(fmt "$(nth "$i" "${L_P50[$k]:-}")")" \
                "$(fmt "$(nth "$i" "${L_P99[$k]:-}")")" "$(fmt "$(nth "$i" "${L_CPU[$k]:-}")" 1)" \
                "$(fmt "$(nth "$i" "${L_UP[$k]:-}")" 1)" "${busy//_/ }"
        done
    done
    echo
    echo "| metric | rcc best | nginx best | rcc/nginx best | rcc median | nginx median | rcc/nginx median |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for row in "req/s:L_RPS:max:0" "p50 ms:L_P50:min:2" "p99 ms:L_P99:min:2" "CPU µs/req:L_CPU:min:1"; do
        IFS=: read -r name arrname how prec <<<"$row"
        local -n arr=$arrname
        rb=$(list_best "$how" "${arr[$layout.rcc]:-}") nb=$(list_best "$how" "${arr[$layout.nginx]:-}")
        rm=$(list_median "${arr[$layout.rcc]:-}") nm=$(list_median "${arr[$layout.nginx]:-}")
        unset -n arr
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$rb" "$prec")" "$(fmt "$nb" "$prec")" \
            "$(ratio "$rb" "$nb")" "$(fmt "$rm" "$prec")" "$(fmt "$nm" "$prec")" "$(ratio "$rm" "$nm")"
    done
    echo
    echo "| memory, gateway's processes summed | rcc-pipeline | nginx proxy | rcc/nginx |"
    echo "|---|---:|---:|---:|"
    for row in "PSS idle, MB:L_PSS_IDLE" "PSS after ${BIG_SECONDS} s at c$BIG_CONNS, MB:L_PSS_BIG" \
             "RSS idle, MB:L_RSS_IDLE" "RSS after ${BIG_SECONDS} s at c$BIG_CONNS, MB:L_RSS_BIG"; do
        IFS=: read -r name arrname <<<"$row"
        local -n arr=$arrname
        printf '| %s | %s | %s | %s |\n' "$name" "$(kb_mb "${arr[$layout.rcc]:-}")" \
            "$(kb_mb "${arr[$layout.nginx]:-}")" "$(ratio "${arr[$layout.rcc]:-}" "${arr[$layout.nginx]:-}")"
        unset -n arr
    done
    printf '| req/s of the c%s run | %s | %s | %s |\n' "$BIG_CONNS" \
        "$(fmt "${L_BIG_RPS[$layout.rcc]:-}" 0)" "$(fmt "${L_BIG_RPS[$layout.nginx]:-}" 0)" \
        "$(ratio "${L_BIG_RPS[$layout.rcc]:-}" "${L_BIG_RPS[$layout.nginx]:-}")"
    if [[ -n ${L_RPS[$layout.direct]:-} ]]; then
        rb=$(list_best max "${L_RPS[$layout.direct]}")
        echo
        echo "Upstream direct (no gateway): best $(fmt "$rb" 0) req/s, median $(fmt "$(list_median "${L_RPS[$layout.direct]}")" 0);" \
            "of that, nginx reached $(ratio "$(list_best max "${L_RPS[$layout.nginx]:-}")" "$rb")" \
            "and rcc $(ratio "$(list_best max "${L_RPS[$layout.rcc]:-}")" "$rb") (best of the rounds)."
    fi
}

# met VALUE >=|<= TARGET: "yes", "**no**" or "n/a".
met() {
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v == "" || v == "n/a") print "n/a"
        else if ((op == ">=" && v + 0 >= t + 0) || (op == "<=" && v + 0 <= t + 0)) print "yes"
        else print "**no**" }'
}

# lean_targets LAYOUT: the issue's targets against this run's numbers.
lean_targets() {
    local layout=$1 r c pb pi
    r=$(ratio "$(list_best max "${L_RPS[$layout.rcc]:-}")" "$(list_best max "${L_RPS[$layout.nginx]:-}")")
    c=$(ratio "$(list_best min "${L_CPU[$layout.rcc]:-}")" "$(list_best min "${L_CPU[$layout.nginx]:-}")")
    pb=$(kb_mb "${L_PSS_BIG[$layout.rcc]:-}") pi=$(kb_mb "${L_PSS_IDLE[$layout.rcc]:-}")
    echo
    echo "Issue 14 targets ($layout layout, best of the $PIN_RUNS rounds; measured here, not asserted):"
    echo
    echo "| target | this run | met |"
    echo "|---|---:|---|"
    echo "| rcc req/s ≥ $TARGET_RPS_RATIO × nginx's (c$CONNS) | $r | $(met "$r" '>=' "$TARGET_RPS_RATIO") |"
    echo "| rcc CPU per request ≤ $TARGET_CPU_RATIO × nginx's | $c | $(met "$c" '<=' "$TARGET_CPU_RATIO") |"
    echo "| rcc PSS after ${BIG_SECONDS} s at c$BIG_CONNS ≤ $TARGET_PSS_BIG_MB MB | $pb | $(met "$pb" '<=' "$TARGET_PSS_BIG_MB") |"
    echo "| rcc PSS idle ≤ $TARGET_PSS_IDLE_MB MB | $pi | $(met "$pi" '<=' "$TARGET_PSS_IDLE_MB") |"
}

# soak: SOAK_SECONDS of mixed load on the rcc at SOAK_PORT (master
# SOAK_PID): wrk's plain POSTs (SOAK_CONNS connections) and bin/stream_bench
# keeping SOAK_STREAMS paced streams in flight, both pinned to SOAK_CPU
# when set, both ending by themselves after SOAK_SECONDS. Samples rcc's
# RSS and PSS at the start and every SOAK_INTERVAL s until both ended, and
# once more after; prints the curve. Adds wrk's non-2xx replies to
# NON2XX[rcc]; sets SOAK_FAIL=1 if stream_bench failed.
SOAK_GRACE_S=70   # past SOAK_SECONDS: stream_bench's own 60 s timeout + slack
soak() {
    local url=http://127.0.0.1:$SOAK_PORT$CHAT_PATH ramp wrk_pid sb_pid t0 next now
    local deadline pss rss rc parsed rps n2 sbout i
    local -a st=() srss=() spss=()
    ramp=$(( STREAM_PACE_MS * (STREAM_WORDS + 1) ))
    log "soak: ${SOAK_SECONDS}s of wrk -c$SOAK_CONNS plain + $SOAK_STREAMS paced streams on rcc ($SOAK_LAYOUT), RSS/PSS every ${SOAK_INTERVAL}s"
    pin_cmd "$SOAK_CPU"
    check_servers
    t0=$(now_ms)
    read -r pss rss < <(tree_mem_kb "$SOAK_PID")
    st+=(0) spss+=("$pss") srss+=("$rss")
    BENCH_MODEL=default "${PIN_CMD[@]}" wrk -t"$THREADS" -c"$SOAK_CONNS" -d"${SOAK_SECONDS}s" \
        --latency -s "$BENCH_DIR/post.lua" "$url" -- default >"$WORK/soak-wrk.txt" 2>&1 &
    wrk_pid=$!
    BG_JOBS+=("$wrk_pid")
    "${PIN_CMD[@]}" bin/stream_bench "$SOAK_PORT" paced "$SOAK_STREAMS" "$STREAM_WORDS" \
        "$ramp" "$SOAK_SECONDS" >"$WORK/soak-streams.txt" 2>&1 &
    sb_pid=$!
    BG_JOBS+=("$sb_pid")
    deadline=$(( t0 + (SOAK_SECONDS + SOAK_GRACE_S) * 1000 ))
    next=$t0
    while alive "$wrk_pid" || alive "$sb_pid"; do
        now=$(now_ms)
        if (( now > deadline )); then
            log "soak load still running ${SOAK_GRACE_S}s after its end; stopping it"
            kill -TERM "$wrk_pid" "$sb_pid" 2>/dev/null || true
            break
        fi
        if (( now >= next + SOAK_INTERVAL * 1000 )); then
            next=$(( next + SOAK_INTERVAL * 1000 ))
            check_servers
            read -r pss rss < <(tree_mem_kb "$SOAK_PID")
            st+=("$(( (now - t0) / 1000 ))") spss+=("$pss") srss+=("$rss")
            log "soak t=$(( (now - t0) / 1000 ))s RSS $(kb_mb "$rss") MB PSS $(kb_mb "$pss") MB"
        fi
        sleep "$POLL_S"
    done
    rc=0; wait "$wrk_pid" || rc=$?
    (( rc == 0 )) || { log "soak wrk exited with status $rc:"; cat "$WORK/soak-wrk.txt" >&2; SOAK_FAIL=1; }
    rc=0; wait "$sb_pid" || rc=$?
    sbout=$(tail -n 1 "$WORK/soak-streams.txt" 2>/dev/null || true)
    (( rc == 0 )) || { log "soak stream_bench exited with status $rc: $sbout"; SOAK_FAIL=1; }
    BG_JOBS=()
    check_servers
    now=$(now_ms)
    read -r pss rss < <(tree_mem_kb "$SOAK_PID")
    st+=("$(( (now - t0) / 1000 )) (after)") spss+=("$pss") srss+=("$rss")
    parsed=$(parse_wrk "$WORK/soak-wrk.txt")
    rps="" n2=0
    [[ $parsed == FAIL ]] || read -r rps _ _ n2 _ <<<"$parsed"
    if (( n2 > 0 )); then
        NON2XX[rcc]=$(( ${NON2XX[rcc]:-0} + n2 ))
        WARNINGS+=("rcc-pipeline soak: Non-2xx or 3xx responses: $n2")
    fi

    echo
    echo "### Soak: ${SOAK_SECONDS} s of mixed plain and streamed load on rcc-pipeline ($SOAK_LAYOUT layout)"
    echo
    echo "- plain: \`wrk -t$THREADS -c$SOAK_CONNS -d${SOAK_SECONDS}s\` chat POSTs (model \`default\`)${SOAK_CPU:+, pinned to CPU $SOAK_CPU}: $(fmt "$rps" 0) req/s, $n2 non-2xx"
    echo "- streamed: \`bin/stream_bench\` keeping $SOAK_STREAMS streams of $(( STREAM_WORDS + 2 )) chunks in flight, a chunk every $STREAM_PACE_MS ms (virtual model \`paced\`), for ${SOAK_SECONDS} s: ${sbout:-no output}"
    echo "- memory of master + workers, summed: RSS = RssAnon + RssFile, PSS from smaps_rollup; t = 0 just before the load starts"
    echo
    echo "| t s | RSS MB | PSS MB |"
    echo "|---:|---:|---:|"
    for (( i = 0; i < ${#st[@]}; i++ )); do
        printf '| %s | %s | %s |\n' "${st[i]}" "$(kb_mb "${srss[i]}")" "$(kb_mb "${spss[i]}")"
    done
    if (( ${#st[@]} >= 4 )); then
        # first sample under load, last under load, the largest under load
        echo
        printf '%s\n' "${srss[@]:1:${#srss[@]}-2}" | awk -v first="${srss[1]}" -v last="${srss[-2]}" '
            { if ($1 > max) max = $1 }
            END { printf "RSS under load: first sample %.1f MB, last %.1f MB (%+.1f), max %.1f MB.\n",
                  first / 1024, last / 1024, (last - first) / 1024, max / 1024 }'
        printf '%s\n' "${spss[@]:1:${#spss[@]}-2}" | awk -v first="${spss[1]}" -v last="${spss[-2]}" '
            { if ($1 > max) max = $1 }
            END { printf "PSS under load: first sample %.1f MB, last %.1f MB (%+.1f), max %.1f MB.\n",
                  first / 1024, last / 1024, (last - first) / 1024, max / 1024 }'
    fi
}

# ===================================================================== main
log "work dir $WORK"
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed -n 's|^nginx version: nginx/||p')
declare -A LABEL=([direct]="upstream direct" [nginx]="nginx proxy" [rcc]="rcc-pipeline")
declare -A NON2XX=() SOCKERR=() TTFB_FAIL=() SB_FAIL=()
declare -a WARNINGS=()
SOAK_FAIL=0

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $cpu_model ]] || cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
[[ -n $cpu_model ]] || cpu_model=unknown
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2; exit }' || true)

echo "## rcc-pipeline benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(nproc) CPUs, ${cpu_model}, kernel $(uname -r)"
echo "- layouts: $LAYOUTS"

# smoke_all LAYOUT SYSTEM...: one request to each must answer 200.
smoke_all() {
    local layout=$1 s tag=""; shift
    [[ $layout == pinned ]] && tag=-pin
    for s in "$@"; do
        smoke "${LABEL[$s]}" "${URL[$s]}" "${MODEL[$s]}" || {
            [[ $s == rcc ]] && show_log "$WORK/pipelined$tag.log"
            [[ $s == nginx ]] && show_log "$WORK/nginx$tag/error.log"
            die 1 "smoke request to ${LABEL[$s]} ($layout) failed"
        }
    done
    log "smoke requests OK ($layout)"
}

# idle_mem LAYOUT: PSS and RSS of both gateways before any load.
idle_mem() {
    local s pss rss
    for s in rcc nginx; do
        read -r pss rss < <(tree_mem_kb "${GW_PID[$s]}")
        # shellcheck disable=SC2034  # L_RSS_* are read through a nameref
        L_PSS_IDLE[$1.$s]=$pss L_RSS_IDLE[$1.$s]=$rss
    done
    log "idle PSS ($1): rcc $(kb_mb "${L_PSS_IDLE[$1.rcc]}") MB, nginx $(kb_mb "${L_PSS_IDLE[$1.nginx]}") MB"
}

# round LAYOUT SYSTEM RUN: one measured run of SYSTEM; recorded for the
# lean report and in the wrk error counts.
round() {
    local layout=$1 s=$2 run=$3 tag=""
    [[ $layout == pinned ]] && tag=-pin
    check_servers
    measure "${LABEL[$s]} ($layout) run $run" "${URL[$s]}" "${MODEL[$s]}" \
        "${GW_PID[$s]:-}" "$UP_PID" "$WORK/wrk-$s$tag-$run"
    lean_record "$layout" "$s"
    NON2XX[$s]=$(( ${NON2XX[$s]:-0} + W_N2 ))
    SOCKERR[$s]=$(( ${SOCKERR[$s]:-0} + W_SE ))
    if (( W_N2 > 0 )); then
        WARNINGS+=("${LABEL[$s]} ($layout) run $run: Non-2xx or 3xx responses: $W_N2")
    fi
    if [[ $W_SELINE != - ]]; then
        WARNINGS+=("${LABEL[$s]} ($layout) run $run: ${W_SELINE//_/ }")
    fi
    log "run $run ${LABEL[$s]} ($layout): $(fmt "$W_RPS" 0) req/s, p50 $(fmt "$W_P50") ms, p99 $(fmt "$W_P99") ms, CPU $(fmt "$W_CPU_US" 1) us/req (upstream $(fmt "$W_UP_US" 1)), $W_BUSY$( (( W_N2 > 0 )) && printf ', %s non-2xx' "$W_N2")$( [[ $W_SELINE != - ]] && printf ', %s' "${W_SELINE//_/ }")"
}

# big_runs LAYOUT: the BIG_CONNS run of each gateway, then its memory.
big_runs() {
    local layout=$1 s tag=""
    [[ $layout == pinned ]] && tag=-pin
    for s in rcc nginx; do
        check_servers
        big_run "${LABEL[$s]} ($layout)" "${URL[$s]}" "${MODEL[$s]}" "${GW_PID[$s]}" \
            "$WORK/wrk-$s$tag-c$BIG_CONNS.txt"
        # shellcheck disable=SC2034  # L_RSS_* are read through a nameref
        L_PSS_BIG[$layout.$s]=$BIG_PSS L_RSS_BIG[$layout.$s]=$BIG_RSS L_BIG_RPS[$layout.$s]=$BIG_RPS
        if (( BIG_N2 > 0 )); then
            NON2XX[$s]=$(( ${NON2XX[$s]:-0} + BIG_N2 ))
            WARNINGS+=("${LABEL[$s]} ($layout) c$BIG_CONNS run: Non-2xx or 3xx responses: $BIG_N2")
        fi
    done
}

declare -A URL=() MODEL=([direct]=fast [nginx]=fast [rcc]=default) GW_PID=()
UP_PID=""
SOAK_LAYOUT="" SOAK_PORT="" SOAK_PID="" SOAK_CPU=""

if (( DO_UNPINNED )); then
    start_mock "" ""
    start_nginx "" "" "$UNPINNED_WORKERS"
    start_pipelined "" "" "$UNPINNED_WORKERS"
    UNPIN_MOCK_PID=$MOCK_PID UNPIN_NGINX_PID=$NGINX_PID UNPIN_RCC_PID=$RCC_PID
    SOAK_LAYOUT=unpinned SOAK_PORT=$RCC_PORT SOAK_PID=$RCC_PID SOAK_CPU=""

    SYSTEMS=(direct nginx rcc)
    LEAN_SYSTEMS[unpinned]="${SYSTEMS[*]}"
    URL=(
        [direct]="http://127.0.0.1:$MOCK_PORT$CHAT_PATH"
        [nginx]="http://127.0.0.1:$NGINX_PORT$CHAT_PATH"
        [rcc]="http://127.0.0.1:$RCC_PORT$CHAT_PATH"
    )
    GW_PID=([nginx]=$NGINX_PID [rcc]=$RCC_PID)
    UP_PID=$MOCK_PID

    smoke_all unpinned "${SYSTEMS[@]}"
    snapshot_mem idle
    idle_mem unpinned

    total_s=$(( RUNS * ${#SYSTEMS[@]} * (DURATION + WARMUP) + 2 * BIG_SECONDS ))
    log "load: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up, $RUNS run(s) per system interleaved, then ${BIG_SECONDS}s at c$BIG_CONNS per proxy (~${total_s}s)"
    for (( run = 1; run <= RUNS; run++ )); do
        for s in "${SYSTEMS[@]}"; do
            round unpinned "$s" "$run"
        done
    done

    check_servers
    snapshot_mem load
    big_runs unpinned

    # --------------------------------------------------------------- streaming
    log "streaming TTFB: $STREAM_N sequential requests each way"
    declare -A TTFB=()
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
        M_RPS[$s]=$(list_median "${L_RPS[unpinned.$s]}")
        M_P50[$s]=$(list_median "${L_P50[unpinned.$s]}")
        M_P99[$s]=$(list_median "${L_P99[unpinned.$s]}")
    done

    echo
    echo "### Unpinned layout: upstream direct, nginx proxy, rcc-pipeline"
    echo
    echo "- load: wrk ${wrk_version:-?} \`-t$THREADS -c$CONNS -d${DURATION}s --latency\`, ${WARMUP} s warm-up before each run, $RUNS measured run(s) per system interleaved (direct, nginx, rcc, ...); medians over runs"
    echo "- request: \`POST $CHAT_PATH\`, \`{\"model\":...,\"messages\":[{\"role\":\"user\",\"content\":\"hello bench\"}]}\`; model \`fast\` direct and via nginx, \`default\` via rcc-pipeline (routed to upstream model \`fast\`)"
    echo "- upstream: \`bin/mock_upstream\` (model \`fast\`: small fixed JSON); nginx ${NGINX_VERSION}: \`worker_processes $UNPINNED_WORKERS\` to match pipelined \`workers = $UNPINNED_WORKERS\`, upstream \`keepalive 64\`, \`proxy_http_version 1.1\`, access log off"
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
        for v in ${L_RPS[unpinned.$s]}; do runs_fmt+="$(fmt "$v" 0), "; done
        echo "- ${LABEL[$s]}: ${runs_fmt%, }"
    done

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

    lean_report unpinned "wrk, the proxies and the upstream share all $(nproc) CPUs; the rounds are the runs above (direct, nginx, rcc, ...)" \
        "nginx \`worker_processes $UNPINNED_WORKERS\`, pipelined \`workers = $UNPINNED_WORKERS\`"

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
    # line; "added" is a proxy's median minus direct's median. The
    # sustained run lasts 30 s by default: about 1,300 timed streams, so
    # that its p99 is the 13th slowest, not the 3rd of 290 (at 10 s the
    # p99 of one path moved by 2x between runs). CPU µs/chunk: the
    # gateway's utime + stime over the run over the data: lines read.
    # RssAnon + RssFile of the PIDS, summed, with bash builtins only: the
    # sampler below runs every 20 ms beside rcc's stream runs, and a
    # pgrep, awk or sleep there (forks) would load the machine during
    # rcc's runs alone.
    rss_kb_of() {  # PIDS...
        local total=0 pid k v rest
        for pid in "$@"; do
            while read -r k v rest; do
                case $k in RssAnon:|RssFile:) total=$(( total + v )) ;; esac
            done 2>/dev/null <"/proc/$pid/status"
        done
        echo "$total"
    }
    rcc_rss_kb() {  # master + workers
        # shellcheck disable=SC2046
        rss_kb_of "$RCC_PID" $(pgrep -P "$RCC_PID" || true)
    }
    mkfifo "$WORK/tick.fifo"
    declare -A SB_P50=() SB_P99=() SB_FAIL=() SB_PEAK=() SB_CPU=()
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
                    # shellcheck disable=SC2207
                    sb_pids=("$RCC_PID" $(pgrep -P "$RCC_PID" || true))
                    ( exec 3<>"$WORK/tick.fifo"   # read -t: a sleep, no fork
                      while :; do rss_kb_of "${sb_pids[@]}"; read -rt 0.02 -u 3 _ || true; done
                    ) >"$WORK/rss.samples" &
                    sampler=$!
                fi
                sb_gw=${GW_PID[$s]:-}
                [[ -n $sb_gw ]] && sb_g0=$(tree_cpu_ticks "$sb_gw")
                out=$(bin/stream_bench "${SB_PORT[$s]}" "$model" "$STREAMS" \
                      "$STREAM_WORDS" "${args[@]}") || SB_FAIL[$s]=$(( ${SB_FAIL[$s]:-0} + 1 ))
                if [[ -n $sb_gw ]]; then
                    # The gateway's CPU per chunk relayed (utime + stime
                    # over the run, divided by the data: lines read).
                    sb_g1=$(tree_cpu_ticks "$sb_gw")
                    sb_n=$(sed -n 's/.*chunks=\([0-9]*\).*/\1/p' <<<"$out")
                    (( ${sb_n:-0} > 0 )) && SB_CPU[$kind.$s]+="$(awk -v t=$(( sb_g1 - sb_g0 )) \
                        -v hz="$CLK_TCK" -v n="$sb_n" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }') "
                fi
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
        echo "| path | first chunk p50 ms | first chunk p99 ms | added p50 ms | added p99 ms | CPU µs/chunk |"
        echo "|---|---:|---:|---:|---:|---:|"
        d50=$(tr ' ' '\n' <<<"${SB_P50[$kind.direct]:-}" | grep . | median)
        d99=$(tr ' ' '\n' <<<"${SB_P99[$kind.direct]:-}" | grep . | median)
        for s in direct nginx rcc; do
            m50=$(tr ' ' '\n' <<<"${SB_P50[$kind.$s]:-}" | grep . | median)
            m99=$(tr ' ' '\n' <<<"${SB_P99[$kind.$s]:-}" | grep . | median)
            if [[ $s == direct ]]; then
                printf '| %s | %s | %s | | | |\n' "${LABEL[$s]}" "$(fmt "$m50")" "$(fmt "$m99")"
            else
                printf '| %s | %s | %s | %s | %s | %s |\n' "${LABEL[$s]}" "$(fmt "$m50")" "$(fmt "$m99")" \
                    "$(added "$m50" "$d50")" "$(added "$m99" "$d99")" \
                    "$(fmt "$(list_median "${SB_CPU[$kind.$s]:-}")")"
            fi
        done
        echo
        echo "Peak RSS of master + workers while these streams ran: $(awk -v k="${SB_PEAK[$kind]}" 'BEGIN { printf "%.1f", k / 1024 }') MB."
    done
    echo
    echo "RSS of master + workers after the stream runs: $(awk -v k="$idle_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB."

    # The two doors side by side: DOOR_STREAMS streams opened at once
    # through rcc's OpenAI door (POST /v1/chat/completions) and through
    # its Anthropic door (POST /v1/messages, translated in the worker from
    # the same OpenAI-format upstream), DOOR_RUNS runs each, interleaved.
    # bin/stream_bench times each stream to its first data: line (the
    # first chunk, or message_start); the ratio says what the Anthropic
    # door's translation adds to the first event.
    declare -A DOOR_P50=() DOOR_P99=() DOOR_M50=() DOOR_M99=()
    log "doors: $DOOR_STREAMS streams opened at once through each door, $DOOR_RUNS run(s) per door"
    for (( r = 1; r <= DOOR_RUNS; r++ )); do
        for door in openai anthropic; do
            check_servers
            out=$(SB_DOOR=$door bin/stream_bench "$RCC_PORT" default "$DOOR_STREAMS" \
                  "$STREAM_WORDS") || SB_FAIL[rcc]=$(( ${SB_FAIL[rcc]:-0} + 1 ))
            log "streams door $door run $r: $out"
            DOOR_P50[$door]+="$(sed -n 's/.*ttfb_p50_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
            DOOR_P99[$door]+="$(sed -n 's/.*ttfb_p99_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
        done
    done
    echo
    echo "### The two doors: $DOOR_STREAMS concurrent streams of $((STREAM_WORDS + 2)) chunks through each, opened at once (medians of $DOOR_RUNS runs)"
    echo
    echo "| door | first event p50 ms | first event p99 ms |"
    echo "|---|---:|---:|"
    for door in openai anthropic; do
        DOOR_M50[$door]=$(list_median "${DOOR_P50[$door]:-}")
        DOOR_M99[$door]=$(list_median "${DOOR_P99[$door]:-}")
    done
    echo "| OpenAI (\`POST /v1/chat/completions\`, first chunk) | $(fmt "${DOOR_M50[openai]}") | $(fmt "${DOOR_M99[openai]}") |"
    echo "| Anthropic (\`POST /v1/messages\`, message_start) | $(fmt "${DOOR_M50[anthropic]}") | $(fmt "${DOOR_M99[anthropic]}") |"
    echo "| ratio Anthropic / OpenAI | $(ratio "${DOOR_M50[anthropic]}" "${DOOR_M50[openai]}") | $(ratio "${DOOR_M99[anthropic]}" "${DOOR_M99[openai]}") |"

fi

if (( DO_PINNED )); then
    pin_skip=""
    if ! command -v taskset >/dev/null 2>&1; then
        pin_skip="taskset not found (util-linux)"
    elif ! taskset -c "$GATEWAY_CPU" true 2>/dev/null || ! taskset -c "$LOAD_CPU" true 2>/dev/null; then
        pin_skip="CPU list $GATEWAY_CPU or $LOAD_CPU not usable here ($(nproc) CPUs)"
    fi
    if [[ -n $pin_skip ]]; then
        log "pinned layout skipped: $pin_skip"
        echo
        echo "### Lean and fast, pinned layout"
        echo
        echo "Skipped: $pin_skip."
    else
        if (( DO_UNPINNED )); then
            # The unpinned servers are done; the pinned ones run alone.
            stop_some "$UNPIN_RCC_PID" "$UNPIN_NGINX_PID" "$UNPIN_MOCK_PID"
            SOAK_PID=""
        fi
        # The mock always (the soak's paced streams); nginx's static
        # answer as well with BENCH_PIN_UPSTREAM=nginx.
        start_mock -pin "$LOAD_CPU"
        PLAIN_PORT="" PLAIN_PID=""
        if [[ $PIN_UPSTREAM == nginx ]]; then
            start_static -pin "$LOAD_CPU"
            up_note="nginx ${NGINX_VERSION} (one worker, \`return 200\` of model \`fast\`'s answer)"
        else
            up_note="\`bin/mock_upstream\` (model \`fast\`)"
        fi
        start_nginx -pin "$GATEWAY_CPU" "$PIN_NGINX_WORKERS"
        start_pipelined -pin "$GATEWAY_CPU" "$PIN_RCC_WORKERS"
        SOAK_LAYOUT=pinned SOAK_PORT=$RCC_PORT SOAK_PID=$RCC_PID SOAK_CPU=$LOAD_CPU
        URL=(
            [direct]="http://127.0.0.1:${PLAIN_PORT:-$MOCK_PORT}$CHAT_PATH"
            [nginx]="http://127.0.0.1:$NGINX_PORT$CHAT_PATH"
            [rcc]="http://127.0.0.1:$RCC_PORT$CHAT_PATH"
        )
        GW_PID=([nginx]=$NGINX_PID [rcc]=$RCC_PID)
        UP_PID=${PLAIN_PID:-$MOCK_PID}
        # direct: wrk and the upstream alone on the load CPU, with no
        # gateway: the most the load side can drive.
        LEAN_SYSTEMS[pinned]="rcc nginx direct"
        smoke_all pinned rcc nginx direct
        idle_mem pinned

        WRK_CPU=$LOAD_CPU
        BUSY_CPUS="$(expand_cpus "$GATEWAY_CPU") $(expand_cpus "$LOAD_CPU")"
        total_s=$(( PIN_RUNS * 3 * (DURATION + WARMUP) + 2 * BIG_SECONDS ))
        log "pinned load: gateway on CPU $GATEWAY_CPU, upstream ($PIN_UPSTREAM) and wrk on CPU $LOAD_CPU; $PIN_RUNS round(s) of rcc, nginx, direct, then ${BIG_SECONDS}s at c$BIG_CONNS each (~${total_s}s)"
        for (( run = 1; run <= PIN_RUNS; run++ )); do
            for s in rcc nginx direct; do
                round pinned "$s" "$run"
            done
        done
        big_runs pinned
        WRK_CPU="" BUSY_CPUS=""

        lean_report pinned "pinned: the gateway under test (its master and workers) with \`taskset -c $GATEWAY_CPU\`; the upstream, $up_note, and wrk with \`taskset -c $LOAD_CPU\`; rounds alternate rcc, nginx (then upstream direct: wrk and the upstream alone on CPU $LOAD_CPU, the most the load side can drive; a gateway close to it is held back by CPU $LOAD_CPU, not by its own)" \
            "nginx ${NGINX_VERSION} \`worker_processes $PIN_NGINX_WORKERS\` (same config as unpinned otherwise), pipelined \`workers = $PIN_RCC_WORKERS\`"
        lean_targets pinned
    fi
fi

# ------------------------------------------------------ cluster-mode cost
# Issue 17: one instance in cluster mode (a `cluster` group, a local
# redis-server) against the same configuration without the group,
# CLUSTER_RUNS rounds of each, interleaved (single first in odd rounds,
# cluster first in even ones), on the pinned layout's CPUs when they are
# usable here. Both run side by side, the one not measured idle.
TARGET_CLUSTER_COST=0.10          # cluster req/s >= (1 - this) x single's
CLUSTER_BUDGET_RPM=100000000      # the most rpm allows: never reached
REDIS_START_TIMEOUT_MS=10000
cluster_compare() {
    local redis_bin redis_port redis_pid redis_version gw_cpu="" load_cpu="" where
    local run s first second up_pid up_note conn deadline ctl
    local -A cl_url=() cl_pid=() cl_sock=()
    echo
    echo "### Cluster mode against a single instance (issue 17)"
    echo
    redis_bin=$(command -v redis-server 2>/dev/null || true)
    if [[ -z $redis_bin ]]; then
        log "cluster-mode comparison skipped: redis-server not installed (make deps installs it)"
        echo "Skipped: redis-server is not installed (\`make deps\` installs it)."
        return 0
    fi
    if command -v taskset >/dev/null 2>&1 && taskset -c "$GATEWAY_CPU" true 2>/dev/null &&
       taskset -c "$LOAD_CPU" true 2>/dev/null; then
        gw_cpu=$GATEWAY_CPU load_cpu=$LOAD_CPU
        where="pinned as the pinned layout: each gateway (master and workers) with \`taskset -c $GATEWAY_CPU\`; the upstream, redis-server and wrk with \`taskset -c $LOAD_CPU\`"
    else
        where="unpinned: everything shares the $(nproc) CPUs (taskset or the CPU lists $GATEWAY_CPU, $LOAD_CPU not usable here)"
    fi
    redis_version=$("$redis_bin" --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')
    pick_port; redis_port=$PICKED
    pin_cmd "$load_cpu"
    log "starting redis-server on 127.0.0.1:$redis_port${load_cpu:+, CPU $load_cpu}"
    "${PIN_CMD[@]}" "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no >"$WORK/redis.log" 2>&1 &
    redis_pid=$!
    track "$redis_pid" redis-server
    PID_LOG[$redis_pid]=$WORK/redis.log
    deadline=$(( $(now_ms) + REDIS_START_TIMEOUT_MS ))
    until grep -q "Ready to accept" "$WORK/redis.log" 2>/dev/null; do
        alive "$redis_pid" && (( $(now_ms) <= deadline )) ||
            { show_log "$WORK/redis.log"; die 1 "redis-server did not start"; }
        sleep "$POLL_S"
    done

    # Their own upstream, as the pinned layout's.
    PLAIN_PORT="" PLAIN_PID=""
    start_mock -cl "$load_cpu"
    up_note="\`bin/mock_upstream\` (model \`fast\`)"
    if [[ -n $load_cpu && $PIN_UPSTREAM == nginx ]]; then
        start_static -cl "$load_cpu"
        up_note="nginx ${NGINX_VERSION} (one worker, \`return 200\` of model \`fast\`'s answer)"
    fi
    up_pid=${PLAIN_PID:-$MOCK_PID}
    PIPELINED_TARGET_OPTS="rpm = $CLUSTER_BUDGET_RPM;"
    for s in single cluster; do
        PIPELINED_EXTRA=""
        if [[ $s == cluster ]]; then
            PIPELINED_EXTRA="cluster = { redis = \"127.0.0.1:$redis_port\"; key_prefix = \"bench:\"; instance = \"bench\"; };"
        fi
        start_pipelined "-$s" "$gw_cpu" "$PIN_RCC_WORKERS"
        cl_url[$s]="http://127.0.0.1:$RCC_PORT$CHAT_PATH" cl_pid[$s]=$RCC_PID
        cl_sock[$s]=$WORK/control-$s.sock
        smoke "rcc-pipeline ($s)" "${cl_url[$s]}" default ||
            { show_log "$WORK/pipelined-$s.log"; die 1 "smoke request to rcc-pipeline ($s) failed"; }
    done
    PIPELINED_TARGET_OPTS="" PIPELINED_EXTRA=""
    ctl=bin/pipelinectl
    [[ $PIPELINED == */* ]] && ctl=${PIPELINED%/*}/pipelinectl
    [[ -x $ctl ]] || die 1 "$ctl not found (run make first)"
    # cl_connected: the cluster instance reaches Redis now.
    cl_connected() { "$ctl" -s "${cl_sock[cluster]}" --json stats 2>/dev/null |
                     grep -q '"cluster":{"connected":true'; }
    deadline=$(( $(now_ms) + REDIS_START_TIMEOUT_MS ))
    until cl_connected; do
        (( $(now_ms) <= deadline )) ||
            { show_log "$WORK/pipelined-cluster.log"; die 1 "rcc-pipeline (cluster) did not connect to redis-server"; }
        sleep "$POLL_S"
    done

    log "cluster-mode comparison: $CLUSTER_RUNS round(s) of single and cluster, interleaved (~$(( CLUSTER_RUNS * 2 * (DURATION + WARMUP) ))s)"
    for (( run = 1; run <= CLUSTER_RUNS; run++ )); do
        first=single second=cluster
        (( run % 2 == 0 )) && first=cluster second=single
        for s in "$first" "$second"; do
            check_servers
            measure "rcc-pipeline $s run $run" "${cl_url[$s]}" default "${cl_pid[$s]}" \
                "$up_pid" "$WORK/wrk-cl-$s-$run"
            lean_record cl "$s"
            NON2XX[rcc]=$(( ${NON2XX[rcc]:-0} + W_N2 ))
            if (( W_N2 > 0 )); then
                WARNINGS+=("rcc-pipeline ($s mode) run $run: Non-2xx or 3xx responses: $W_N2")
            fi
            if [[ $W_SELINE != - ]]; then
                WARNINGS+=("rcc-pipeline ($s mode) run $run: ${W_SELINE//_/ }")
            fi
            log "run $run rcc-pipeline ($s): $(fmt "$W_RPS" 0) req/s, p99 $(fmt "$W_P99") ms, CPU $(fmt "$W_CPU_US" 1) us/req, $W_BUSY"
        done
    done
    conn=yes
    cl_connected || conn="**no** (the numbers do not measure cluster mode)"

    echo "- $where"
    echo "- upstream: $up_note; redis-server ${redis_version:-?} on loopback (no persistence)"
    echo "- both: \`bench/pipelined.conf.in\`, \`workers = $PIN_RCC_WORKERS\`, the target with \`rpm = $CLUSTER_BUDGET_RPM\` (never reached: the budget is on the path, not limiting); cluster: the same plus \`cluster = { redis = \"127.0.0.1:PORT\"; key_prefix = \"bench:\"; instance = \"bench\"; }\`, connected to Redis at the end: $conn"
    echo "- load: wrk \`-t$THREADS -c$CONNS -d${DURATION}s --latency\`, ${WARMUP} s warm-up before each run, $CLUSTER_RUNS round(s), single first in odd rounds, cluster first in even ones; CPU µs/req as in the lean tables (the gateway's master and workers)"
    echo
    echo "| run | mode | req/s | p50 ms | p99 ms | CPU µs/req |"
    echo "|---:|---|---:|---:|---:|---:|"
    for (( run = 1; run <= CLUSTER_RUNS; run++ )); do
        for s in single cluster; do
            printf '| %s | %s | %s | %s | %s | %s |\n' "$run" "$s" \
                "$(fmt "$(nth "$run" "${L_RPS[cl.$s]:-}")" 0)" "$(fmt "$(nth "$run" "${L_P50[cl.$s]:-}")")" \
                "$(fmt "$(nth "$run" "${L_P99[cl.$s]:-}")")" "$(fmt "$(nth "$run" "${L_CPU[cl.$s]:-}")" 1)"
        done
    done
    echo
    echo "| median | single | cluster | cluster/single |"
    echo "|---|---:|---:|---:|"
    local row name arrname prec sm cm
    for row in "req/s:L_RPS:0" "p50 ms:L_P50:2" "p99 ms:L_P99:2" "CPU µs/req:L_CPU:1"; do
        IFS=: read -r name arrname prec <<<"$row"
        local -n arr=$arrname
        sm=$(list_median "${arr[cl.single]:-}") cm=$(list_median "${arr[cl.cluster]:-}")
        unset -n arr
        printf '| %s | %s | %s | %s |\n' "$name" "$(fmt "$sm" "$prec")" "$(fmt "$cm" "$prec")" "$(ratio "$cm" "$sm")"
    done
    local r floor
    r=$(ratio "$(list_median "${L_RPS[cl.cluster]:-}")" "$(list_median "${L_RPS[cl.single]:-}")")
    floor=$(awk -v c="$TARGET_CLUSTER_COST" 'BEGIN { printf "%.2f\n", 1 - c }')
    echo
    echo "Issue 17 target: cluster mode costs at most $(awk -v c="$TARGET_CLUSTER_COST" 'BEGIN { print c * 100 }')% of req/s, i.e. cluster/single median req/s ≥ $floor: $r, met: $(met "$r" '>=' "$floor") (measured here, not asserted)."
    log "cluster-mode comparison: cluster/single median req/s $r"
    stop_some "${cl_pid[single]}" "${cl_pid[cluster]}" "$MOCK_PID" ${PLAIN_PID:+"$PLAIN_PID"} "$redis_pid"
}

if (( DO_CLUSTER )); then
    cluster_compare
fi

if (( SOAK_SECONDS > 0 )); then
    if [[ -n $SOAK_PID ]]; then
        soak
    else
        log "soak skipped: no rcc-pipeline running"
    fi
fi

if (( ${#WARNINGS[@]} > 0 )); then
    echo
    echo "**Errors reported by wrk** (non-2xx replies make a run's numbers meaningless; socket errors are as wrk counts them):"
    echo
    for w in "${WARNINGS[@]}"; do echo "- $w"; done
fi

total_non2xx=0
for s in direct nginx rcc; do total_non2xx=$(( total_non2xx + ${NON2XX[$s]:-0} )); done
if (( total_non2xx > 0 )) && [[ $ALLOW_ERRORS != 1 ]]; then
    log "wrk saw $total_non2xx non-2xx responses; exiting 3 (set BENCH_ALLOW_ERRORS=1 to ignore)"
    exit 3
fi
sb_failed=$(( ${SB_FAIL[direct]:-0} + ${SB_FAIL[nginx]:-0} + ${SB_FAIL[rcc]:-0} + SOAK_FAIL ))
ttfb_failed=$(( ${TTFB_FAIL[direct]:-0} + ${TTFB_FAIL[rcc]:-0} ))
if (( ttfb_failed + sb_failed > 0 )); then
    log "$ttfb_failed streamed request(s) and $sb_failed stream run(s) (the soak's included) failed; exiting 4"
    exit 4
fi
log "done"
exit 0
