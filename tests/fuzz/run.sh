#!/usr/bin/env bash
# run.sh - builds the libFuzzer targets (tests/fuzz/fuzz_*.c, each linked
# with all of common/*/*.c under ASan + UBSan), replays the inputs kept in
# tests/fuzz/regressions/<target>/, then fuzzes each target for
# FUZZ_SECONDS on a copy of its seed corpus in build/fuzz/corpus/<target>
# (the committed corpus is never written; what the fuzzer adds there is
# kept for the next run). <target> is the name without fuzz_: the
# binary build/fuzz/fuzz_sse uses corpus/sse, dict/sse.dict, crashes/sse.
# Prints one summary line per target and exits non-zero when any target
# failed to build, crashed, or failed a regression. New crashes land in
# tests/fuzz/crashes/<target>/; copy one to regressions/<target>/ to keep
# it replayed on every run.
#
#   FUZZ_SECONDS=60      time per target (-max_total_time)
#   FUZZ_TARGETS="sse frame"   a subset (names with or without fuzz_)
#   FUZZ_MAX_LEN=65536   longest input tried
#   FUZZ_BUILD_ONLY=1    build and replay regressions, do not fuzz
#   FUZZ_COVERAGE=1      then report the line coverage that the corpus
#                        reaches in common/*/<target>.c (llvm-cov)
set -u
cd "$(dirname "$0")/../.." || exit 1

FUZZ_DIR=tests/fuzz
OUT=build/fuzz
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
TIMEOUT_S=10                 # one input slower than this is a hang
# Targets fuzzed without a leak check after every input: libconfig 1.5
# leaks (suppressed) on many syntax errors, and each of those would stop
# the world for a LeakSanitizer scan, ten times slower. Their corpus is
# replayed with the per-input check afterwards, and LeakSanitizer still
# checks the whole run at exit.
LEAK_PASS_TARGETS="config"
PKGS_CFLAGS="json-c libconfig libevent"
PKGS_LIBS="json-c libconfig libevent libcurl openssl"

# A UBSan report aborts, so it counts as a crash, also in a binary built
# without -fno-sanitize-recover; leaks are reported at exit too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { as_root apt-get update -q >/dev/null &&
          as_root apt-get install -y -q "$@"; }
}

# clang with libFuzzer and the project's libraries.
ensure_tools() {
    local probe major
    command -v clang >/dev/null || apt_install clang || return 1
    make --no-print-directory deps || return 1
    mkdir -p "$OUT"
    probe=$OUT/probe.c
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' > "$probe"
    if ! clang -fsanitize=fuzzer,address,undefined "$probe" \
            -o "$OUT/probe" 2>/dev/null; then
        major=$(clang -dumpversion | cut -d. -f1)
        apt_install "libclang-rt-$major-dev" || return 1
        clang -fsanitize=fuzzer,address,undefined "$probe" \
            -o "$OUT/probe" || return 1
    fi
    rm -f "$probe" "$OUT/probe"
}

build_target() {
    local t=$1 cflags libs
    # shellcheck disable=SC2086  # pkg-config output is a word list
    cflags=$(pkg-config --cflags $PKGS_CFLAGS) || return 1
    # shellcheck disable=SC2086
    libs=$(pkg-config --libs $PKGS_LIBS) || return 1
    # shellcheck disable=SC2086
    clang -g -O1 -std=gnu11 -D_GNU_SOURCE \
        -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -Iinclude $cflags \
        "$FUZZ_DIR/$t.c" common/*/*.c $libs -lm -lpthread -o "$OUT/$t"
}

# Line coverage of common/*/<name>.c reached by the corpus: the target is
# rebuilt with clang's source-based coverage and run once over it.
# Prints "lines N% (covered/total)" or "n/a".
coverage_of() {
    local t=$1 name=${1#fuzz_} dir=$OUT/cov cflags libs line src
    src=$(ls common/*/"$name".c 2>/dev/null | head -1)
    [ -n "$src" ] || { echo "n/a"; return; }
    if ! command -v llvm-profdata >/dev/null ||
       ! command -v llvm-cov >/dev/null; then
        echo "n/a (no llvm-cov)"
        return
    fi
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    cflags=$(pkg-config --cflags $PKGS_CFLAGS) || return 1
    # shellcheck disable=SC2086
    libs=$(pkg-config --libs $PKGS_LIBS) || return 1
    # shellcheck disable=SC2086
    clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer \
        -fprofile-instr-generate -fcoverage-mapping -Iinclude $cflags \
        "$FUZZ_DIR/$t.c" common/*/*.c $libs -lm -lpthread -o "$dir/$t" \
        2>/dev/null || { echo "n/a (build failed)"; return; }
    rm -f "$dir/$t".profraw
    # An input that still crashes stops the run before the profile is
    # written: no figure then.
    if ! LLVM_PROFILE_FILE="$dir/$t.profraw" "$dir/$t" -runs=0 \
            -max_len="$MAX_LEN" "$OUT/corpus/$name" >/dev/null 2>&1 ||
       ! llvm-profdata merge -sparse "$dir/$t.profraw" \
            -o "$dir/$t.profdata" 2>/dev/null; then
        echo "coverage n/a (an input in the corpus crashes)"
        return
    fi
    line=$(llvm-cov report "$dir/$t" -instr-profile="$dir/$t.profdata" \
           "$src" | grep -E '^TOTAL')
    # TOTAL regions miss cover% functions miss exec% lines miss cover% ...
    echo "$line" | awk '{ printf "lines %s (%d/%d) of %s", \
        $10, $8 - $9, $8, src }' src="$src"
}

# Replays every kept input once; prints "passed/total".
replay_regressions() {
    local t=$1 log=$2 dir=$FUZZ_DIR/regressions/${1#fuzz_} f total=0 passed=0
    if [ -d "$dir" ]; then
        for f in "$dir"/*; do
            [ -f "$f" ] || continue
            total=$((total + 1))
            if "$OUT/$t" -runs=1 "$f" >>"$log" 2>&1; then
                passed=$((passed + 1))
            else
                echo "regression failed: $f" >>"$log"
            fi
        done
    fi
    echo "$passed/$total"
}

# The last status line libFuzzer printed, trimmed to its counters.
fuzz_stats() {
    local log=$1 line runs counters
    line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -1)
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
    counters=$(echo "$line" | grep -Eo '(cov|ft|corp|exec/s|rss): [^ ]+' |
               tr '\n' ' ')
    printf '%s' "${runs:-no runs (crashed on the corpus?)}"
    [ -n "$counters" ] && printf '; %s' "${counters% }"
    return 0
}

select_targets() {
    local t
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        for t in $FUZZ_TARGETS; do
            echo "fuzz_${t#fuzz_}"
        done
    else
        for t in "$FUZZ_DIR"/fuzz_*.c; do
            t=${t##*/}
            echo "${t%.c}"
        done
    fi
}

main() {
    local t name log status rc failed=0 summary=() regs dict stats
    local -a targets extra
    mapfile -t targets < <(select_targets)
    ensure_tools || { echo "fuzz: cannot set up clang/libFuzzer" >&2; exit 1; }
    mkdir -p "$OUT/logs"
    for t in "${targets[@]}"; do
        name=${t#fuzz_}
        log=$OUT/logs/$t.log
        : >"$log"
        if [ ! -f "$FUZZ_DIR/$t.c" ]; then
            summary+=("$t: FAILED (no $FUZZ_DIR/$t.c)")
            failed=1
            continue
        fi
        echo "=== $t: building"
        if ! build_target "$t" >>"$log" 2>&1; then
            summary+=("$t: FAILED to build (see $log)")
            tail -20 "$log"
            failed=1
            continue
        fi
        regs=$(replay_regressions "$t" "$log")
        status=ok
        if [ "${regs%/*}" != "${regs#*/}" ]; then
            status="FAILED (regressions)"
            failed=1
        fi
        if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
            summary+=("$t: $status; regressions $regs passed; not fuzzed")
            continue
        fi
        mkdir -p "$OUT/corpus/$name" "$FUZZ_DIR/crashes/$name"
        if [ -d "$FUZZ_DIR/corpus/$name" ]; then
            cp -R "$FUZZ_DIR/corpus/$name/." "$OUT/corpus/$name/"
        fi
        extra=()
        dict=$FUZZ_DIR/dict/$name.dict
        [ -f "$dict" ] && extra+=("-dict=$dict")
        case " $LEAK_PASS_TARGETS " in
        *" $name "*) extra+=("-detect_leaks=0") ;;
        esac
        echo "=== $t: fuzzing for ${SECONDS_PER_TARGET}s"
        "$OUT/$t" -max_total_time="$SECONDS_PER_TARGET" \
            -max_len="$MAX_LEN" -timeout="$TIMEOUT_S" \
            -print_final_stats=1 \
            -artifact_prefix="$FUZZ_DIR/crashes/$name/" "${extra[@]}" \
            "$OUT/corpus/$name" >>"$log" 2>&1
        rc=$?
        stats=$(fuzz_stats "$log")
        if [ "$rc" -eq 0 ] && [[ " ${extra[*]} " == *" -detect_leaks=0 "* ]]
        then
            echo "=== $t: leak check of each corpus input"
            "$OUT/$t" -runs=0 -max_len="$MAX_LEN" -timeout="$TIMEOUT_S" \
                -artifact_prefix="$FUZZ_DIR/crashes/$name/" \
                "$OUT/corpus/$name" >>"$log" 2>&1
            rc=$?
        fi
        if [ "$rc" -ne 0 ]; then
            if [ "$status" = ok ]; then
                status="CRASHED (exit $rc)"
            else
                status+=", CRASHED (exit $rc)"
            fi
            failed=1
            grep -E 'ERROR: |SUMMARY: |invariant failed|Test unit written' \
                "$log" | head -8
            echo "    keep it: cp $FUZZ_DIR/crashes/$name/<file>" \
                "$FUZZ_DIR/regressions/$name/"
        fi
        if [ -n "${FUZZ_COVERAGE:-}" ]; then
            stats+="; $(coverage_of "$t")"
        fi
        summary+=("$t: $status; regressions $regs passed; $stats")
    done
    echo "=== fuzz summary (logs in $OUT/logs)"
    printf '%s\n' "${summary[@]}"
    exit "$failed"
}

main "$@"
