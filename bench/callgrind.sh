#!/usr/bin/env bash
# bench/callgrind.sh - instructions per request, per process, counted by
# callgrind: a measure that does not depend on how busy the machine is
# (wall-clock benchmarks on a shared 2-core machine are noisy).
#
#   bench/callgrind.sh [N] [PARALLEL] [KIND]
#
# Runs bin/pipelined (under valgrind --tool=callgrind, which follows the
# workers across fork) in front of bin/mock_upstream twice: once with
# CG_BASE (default 200) requests, once with CG_BASE + N (default 2000),
# each sent by curl PARALLEL (default 8) at a time over keep-alive
# connections, then stopped with SIGTERM. Start-up and shutdown cost the
# same in both runs, so the difference divided by N is the cost of one
# request: printed for the master and the workers (summed), with the
# CG_TOP (default 15) functions whose own cost grew most per request.
# KIND: plain (default) or stream (the mock's echo stream).
# CG_CLUSTER=1: the daemon in cluster mode, against a redis-server this
# script starts on a free port; CG_RPM=N: the target's rpm budget (none
# by default). The cost of cluster mode: CG_RPM=100000000 with and
# without CG_CLUSTER=1.
# The callgrind files stay in CG_DIR (default a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
PAR=${2:-8}
KIND=${3:-plain}
BASE=${CG_BASE:-200}
TOP=${CG_TOP:-15}
BIN=${BIN:-bin}
CLUSTER=${CG_CLUSTER:-0}
RPM=${CG_RPM:-}
DIR=${CG_DIR:-$(mktemp -d /tmp/cgbench.XXXXXX)}
mkdir -p "$DIR"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
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

UP=$(free_port)
"$BIN"/mock_upstream -a 127.0.0.1 -p "$UP" -q >"$DIR/mock.log" 2>&1 &
pids+=($!)
wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$UP/v1/models"
CLUSTER_GROUP=""
if [[ $CLUSTER == 1 ]]; then
    RP=$(free_port)
    redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
        >"$DIR/redis.log" 2>&1 &
    pids+=($!)
    wait_for 20 grep -q "Ready to accept" "$DIR/redis.log"
    CLUSTER_GROUP="cluster = { redis = \"127.0.0.1:$RP\"; key_prefix = \"cg:\"; instance = \"cg\"; };"
fi
if [[ $KIND == stream ]]; then
    BODY='{"model":"default","stream":true,"messages":[{"role":"user","content":"hello bench"}]}'
else
    BODY='{"model":"default","messages":[{"role":"user","content":"hello bench"}]}'
fi

send() {     # send URL COUNT
    local cfg="$DIR/urls.cfg"
    : >"$cfg"
    for ((i = 0; i < $2; i++)); do
        printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >>"$cfg"
    done
    curl -s --no-progress-meter -Z --parallel-max "$PAR" \
        -H 'Content-Type: application/json' -d "$BODY" -K "$cfg" \
        -w '%{http_code}\n' >"$DIR/codes" || true
    local ok
    ok=$(grep -c '^200$' "$DIR/codes" || true)
    [[ $ok == "$2" ]] || { echo "only $ok of $2 answered 200" >&2; exit 1; }
}

connected() {    # connected SOCKET: a daemon in cluster mode reaches Redis
    "$BIN"/pipelinectl -s "$1" --json stats | grep -q '"cluster":{"connected":true'
}

run() {      # run NAME COUNT: the daemon over COUNT requests
    local lp out="$DIR/$1"
    mkdir -p "$out"
    lp=$(free_port)
    sed -e "s|@LISTEN_PORT@|$lp|g" -e "s|@UPSTREAM_PORT@|$UP|g" \
        -e "s|@WORKERS@|2|g" -e "s|@STREAM_PROVIDERS@||g" \
        -e "s|@STREAM_PROVIDER@|up|g" -e "s|@STREAM_PACE_MS@|20|g" \
        -e "s|@CONTROL_SOCKET@|$out/ctl.sock|g" \
        -e "s|@TARGET_OPTS@|${RPM:+rpm = $RPM;}|g" bench/pipelined.conf.in \
        >"$out/pipelined.conf"
    [[ -z $CLUSTER_GROUP ]] || echo "$CLUSTER_GROUP" >>"$out/pipelined.conf"
    chmod 600 "$out/pipelined.conf"
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" \
        "$BIN"/pipelined -c "$out/pipelined.conf" >"$out/daemon.log" 2>&1 &
    local vg=$!
    pids+=("$vg")
    local url="http://127.0.0.1:$lp/v1/chat/completions"
    # The readiness probe is a request too: counted in both runs alike.
    wait_for 120 curl -sf -o /dev/null -H 'Content-Type: application/json' \
        -d "$BODY" "$url"
    if [[ $CLUSTER == 1 ]]; then   # measured connected, or not at all
        wait_for 60 connected "$out/ctl.sock" ||
            { echo "the daemon did not connect to redis-server" >&2; exit 1; }
    fi
    send "$url" "$2"
    ps -o pid= --ppid "$vg" | tr -d ' ' >"$out/workers"
    echo "$vg" >"$out/master"
    kill -TERM "$vg"
    wait "$vg" || true
}

# own cost per function of the processes listed in FILE of run NAME
costs() {    # costs NAME LISTFILE
    local p
    for p in $(cat "$DIR/$1/$2"); do
        callgrind_annotate --inclusive=no --threshold=100 --auto=no \
            "$DIR/$1/cg.$p" 2>/dev/null | sed -n '/file:function/,$p' |
            grep '^ *[0-9]' |
            sed -e 's|???:\(0x[0-9a-f]*\) \[.*/\([^/]*\)\]$|\2:\1|' \
                -e 's/ \[[^]]*\]$//' \
                -e 's|/work/wt/[^/]*/||' -e 's/(\s*[0-9.]*%)//'
    done | awk '{gsub(",", "", $1); c[$2] += $1} END {for (f in c) print c[f], f}'
}
total() {    # total NAME LISTFILE
    local p s=0
    for p in $(cat "$DIR/$1/$2"); do
        s=$((s + $(awk '/^(summary|totals):/ {print $2; exit}' "$DIR/$1/cg.$p")))
    done
    echo "$s"
}

run base "$BASE"
run full $((BASE + N))
echo "requests: $N ($KIND, $PAR at a time${RPM:+, rpm $RPM}$( [[ $CLUSTER == 1 ]] && echo ', cluster mode')); instructions per request" \
     "(callgrind, run of $((BASE + N)) minus run of $BASE)"
for who in master workers; do
    a=$(total base "$who")
    b=$(total full "$who")
    printf '%-8s %8.0f instructions per request\n' "$who" \
        "$(echo "($b - $a) / $N" | bc -l)"
    if ((TOP > 0)); then
        join -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 \
            <(costs base "$who" | sort -k2,2) \
            <(costs full "$who" | sort -k2,2) |
            awk -v n="$N" '{d = ($3 - $2) / n; if (d > 0) printf "%9.0f  %s\n", d, $1}' |
            sort -rn >"$DIR/top.$who"
        # head closing the pipe early must not stop the script (pipefail)
        head -n "$TOP" "$DIR/top.$who" | sed 's/^/    /'
    fi
done
echo "files in $DIR"
