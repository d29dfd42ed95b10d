#!/usr/bin/env bash
# test_layout.sh - the shape of the source tree: no source file in
# master/, worker/, common/ or include/ is over LAYOUT_MAX_LINES lines,
# and no two modules depend on each other in a circle (module A calls or
# takes the address of a function of B, B of C, ..., back to A), read
# from the symbols of the normal build's objects (build/).
# LAYOUT_EDGES=1 prints every module dependency on stderr.
# Prints "layout: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."

LAYOUT_MAX_LINES=900
OBJ=${OBJ:-build}
PASSED=0
FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }

echo "source files at most $LAYOUT_MAX_LINES lines, modules in no circle"

long=$(wc -l master/*.[ch] worker/*.[ch] common/*.[ch] include/*.h \
           common/*/*.[ch] 2>/dev/null |
       awk -v max=$LAYOUT_MAX_LINES '$2 != "total" && $1 > max { print $2 "(" $1 ")" }')
if [ -z "$long" ]; then ok "no file over $LAYOUT_MAX_LINES lines"
else fail "files over $LAYOUT_MAX_LINES lines: $(echo $long)"; fi

# One module is one object; tests, mocks and benches are not modules.
objs=$(find "$OBJ/master" "$OBJ/worker" "$OBJ/common" -name '*.o' 2>/dev/null | sort)
if [ -z "$objs" ]; then
    fail "no objects under $OBJ/ (build first)"
else
    # "module symbol D|U" lines, then the module graph and its circles.
    cycles=$(for o in $objs; do
                 mod=${o#"$OBJ"/}; mod=${mod%.o}
                 nm "$o" | awk -v m="$mod" '
                     $1 == "U" { print m, $2, "U"; next }
                     NF == 3 && $2 ~ /^[TDBR]$/ { print m, $3, "D" }'
             done | awk '
        $3 == "D" { def[$2] = $1; next }
        { use[++n] = $1 SUBSEP $2 }
        END {
            for (i = 1; i <= n; i++) {
                split(use[i], p, SUBSEP)
                if ((p[2] in def) && def[p[2]] != p[1])
                    edge[p[1] SUBSEP def[p[2]]] = 1
            }
            for (e in edge) {
                split(e, p, SUBSEP)
                out[p[1]] = out[p[1]] " " p[2]; node[p[1]]; node[p[2]]
                if (ENVIRON["LAYOUT_EDGES"] != "") print "edge " p[1] " -> " p[2] > "/dev/stderr"
            }
            # A circle: a module that reaches itself again (depth-first).
            for (s in node) {
                delete seen; top = 0; stack[++top] = s; found = ""
                while (top > 0 && found == "") {
                    v = stack[top--]
                    k = split(out[v], nx, " ")
                    for (j = 1; j <= k; j++) {
                        if (nx[j] == s) { found = v; break }
                        if (!(nx[j] in seen)) { seen[nx[j]]; stack[++top] = nx[j] }
                    }
                }
                if (found != "") print s
            }
        }' | sort)
    if [ -z "$cycles" ]; then ok "no module is in a circle of calls"
    else fail "modules in a circle of calls: $(echo $cycles)"; fi
fi

echo "layout: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
