#!/usr/bin/env bash
# run.sh - runs every test suite against the normal build and, unless
# --quick, against the sanitizer build (bin/asan) and under valgrind
# (the unit tests and VALGRIND_SUITES below), then prints the closing
# line "N passed, M failed" over all of them.
set -u
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
total_pass=0
total_fail=0
failed_suites=()
timings=()                 # "SECONDS s  NAME" per suite, shown at the end

# run_suite NAME COMMAND...: the suite's last "X: N passed, M failed"
# line is added to the totals; a suite that dies without one counts as
# one failure.
run_suite() {
    local name=$1 log line p f rc started
    shift
    log=$(mktemp /tmp/rcc-suite.XXXXXX)
    echo "=== $name"
    started=$SECONDS
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    timings+=("$((SECONDS - started)) s  $name")
    line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    rm -f "$log"
    if [ -z "$line" ]; then
        p=0; f=1
    else
        p=${line%% passed*}
        f=${line#*, }; f=${f%% failed*}
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [ "$f" -ne 0 ] && failed_suites+=("$name")
}

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Under valgrind: the unit tests, and the integration suites that drive
# the daemon's main paths (requests, failures, OAuth, and each feature's
# own suite); valgrind finds what ASan cannot (reads of uninitialised
# memory) and ASan+UBSan with LeakSanitizer runs every suite; valgrind
# on all of them took the whole run past CI's 10 minutes. Of the cluster
# suites, cluster (the connection, breakers, heartbeat, reconnection),
# cluster_budget (leases) and cluster_oauth (tokens through Redis) run
# under it; cluster_health, cluster_refused and cluster_reload (about
# 37 s there) drive the same code with other scripts, under ASan only.
# RCC_VALGRIND_ALL=1: every suite.
VALGRIND_SUITES="api errors oauth capture budgets health anthropic cluster cluster_budget cluster_oauth"
# On the normal build only: suites that drive a script rather than the
# daemon's code (cluster_demo: `make cluster-demo`, whose daemons the
# cluster suites already run under ASan and valgrind).
NORMAL_ONLY_SUITES="cluster_demo"
normal_only() { local b; b=$(basename "$1" .sh); [[ " $NORMAL_ONLY_SUITES " == *" ${b#test_} "* ]]; }

have_unit=0
ls tests/unit/*.c >/dev/null 2>&1 && have_unit=1
integration=(tests/integration/test_*.sh)
suite_name() { local b; b=$(basename "$1" .sh); echo "integration: ${b#test_}"; }

[ $have_unit -eq 1 ] && run_suite "unit" bin/unit_tests
for t in "${integration[@]}"; do
    run_suite "$(suite_name "$t")" env BIN=bin "$t"
done
if [ $quick -eq 0 ]; then
    [ $have_unit -eq 1 ] && run_suite "unit (asan)" bin/asan/unit_tests
    for t in "${integration[@]}"; do
        normal_only "$t" && continue
        run_suite "$(suite_name "$t") (asan)" env BIN=bin/asan "$t"
    done
    if command -v valgrind >/dev/null; then
        vg="valgrind --leak-check=full --show-leak-kinds=definite"
        vg="$vg --errors-for-leak-kinds=definite --error-exitcode=1"
        [ $have_unit -eq 1 ] && run_suite "unit (valgrind)" $vg -q bin/unit_tests
        for t in "${integration[@]}"; do
            normal_only "$t" && continue
            b=$(basename "$t" .sh); b=${b#test_}
            if [ -z "${RCC_VALGRIND_ALL:-}" ] &&
               [[ " $VALGRIND_SUITES " != *" $b "* ]]; then
                continue
            fi
            run_suite "$(suite_name "$t") (valgrind)" env VALGRIND="$vg" \
                BIN=bin "$t"
        done
    else
        echo "valgrind not installed: skipping the valgrind runs"
    fi
fi

echo
echo "time per suite (slowest first):"
printf '%s\n' "${timings[@]}" | sort -rn | head -12 | sed 's/^/  /'
echo "all suites: $SECONDS s"
[ ${#failed_suites[@]} -gt 0 ] && echo "failed suites: ${failed_suites[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
