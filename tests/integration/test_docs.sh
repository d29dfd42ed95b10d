#!/usr/bin/env bash
# test_docs.sh - the documentation stands on its own. Every key the
# configuration parser accepts (the cfg*_keys tables the modules of
# common/config/ check every group against) has its row in docs/CONFIGURATION.md and
# appears in etc/pipelined.conf; README.md, docs/ and etc/ point to
# nothing outside the repository (no ../shared, no DESIGN.md) and their
# relative links resolve; the complete example of docs/CONFIGURATION.md
# passes `pipelined -t`. Reads files only (plus one -t run): well under a
# second. Prints "docs: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

CONFIG_C=(common/config/*.c)
CONF_DOC=docs/CONFIGURATION.md
EXAMPLE=etc/pipelined.conf
# Fewer keys than this means the extraction below broke, not the docs.
MIN_KEYS=40

# The accepted keys: the strings of every
#   static const char *const cfg_NAME_keys[] = { "a", "b", ..., NULL };
# (or cfgMODULE_NAME_keys) table, one per line as "NAME key".
config_keys() {
    awk '
        /static const char \*const cfg[a-z]*_[a-z_]*_keys\[\] *= *\{/ {
            table = $0
            sub(/.*const cfg[a-z]*_/, "", table); sub(/_keys\[.*/, "", table)
            inside = 1
        }
        inside {
            line = $0
            while (match(line, /"[^"]*"/)) {
                print table, substr(line, RSTART + 1, RLENGTH - 2)
                line = substr(line, RSTART + RLENGTH)
            }
            if ($0 ~ /\};/) inside = 0
        }' "${CONFIG_C[@]}"
}

KEYS=$(config_keys)
NKEYS=$(printf '%s\n' "$KEYS" | grep -c .)
if [ "$NKEYS" -ge "$MIN_KEYS" ]; then
    ok "found $NKEYS accepted keys in common/config/"
else
    fail "found only $NKEYS accepted keys in common/config/ (extraction broken?)"
fi

# missing_keys REGEX FILE: the "table.key" of every accepted key for
# which FILE has no line matching REGEX (KEY stands for the key), in one
# pass so that the check stays fast on a loaded machine.
missing_keys() {
    printf '%s\n' "$KEYS" | awk -v re="$1" -v file="$2" '
        { table[NR] = $1; key[NR] = $2; n = NR }
        END {
            while ((getline line < file) > 0) text[++lines] = line
            for (i = 1; i <= n; i++) {
                pat = re; gsub(/KEY/, key[i], pat)
                found = 0
                for (l = 1; l <= lines && !found; l++)
                    if (text[l] ~ pat) found = 1
                if (!found) printf "%s%s.%s", (out++ ? " " : ""), table[i], key[i]
            }
        }'
}

# Each key has a table row of its own in the reference: | `key` | ...
if [ -f "$CONF_DOC" ]; then
    ok "$CONF_DOC exists"
    check "every accepted key has a row in $CONF_DOC" "" \
        "$(missing_keys '^\\| *`KEY` *\\|' "$CONF_DOC")"
else
    fail "$CONF_DOC exists"
fi

# ... and is shown, set or commented, in the example configuration.
check "every accepted key appears in $EXAMPLE" "" \
    "$(missing_keys '(^|[^a-z_])KEY *=' "$EXAMPLE")"

# Every /metrics series the master prints is in the HTTP API reference.
metrics_missing=""
for name in $(grep -oh '"pipeline_[a-z_]*' master/*.c | tr -d '"' | sort -u); do
    grep -q -- "$name" docs/HTTP_API.md || metrics_missing="$metrics_missing $name"
done
check "every /metrics series is in docs/HTTP_API.md" "" "${metrics_missing# }"

# Nothing points outside the repository.
DOCS=(README.md docs/*.md etc/*)
check "no ../shared in README.md, docs/, etc/" "" \
    "$(grep -l '\.\./shared' "${DOCS[@]}" 2>/dev/null | tr '\n' ' ')"
check "no DESIGN.md in README.md, docs/, etc/" "" \
    "$(grep -l 'DESIGN\.md' "${DOCS[@]}" 2>/dev/null | tr '\n' ' ')"
check_match "$EXAMPLE points to $CONF_DOC" "$CONF_DOC" "$(head -5 "$EXAMPLE")"

# Relative markdown links [text](path#anchor) resolve: the file exists
# and, for a .md file, has a heading with that anchor (GitHub's rule:
# lower case, punctuation but - and _ dropped, spaces to -).
anchors() {   # anchors FILE: the anchor of each of its headings
    grep -E '^#{1,6} ' "$1" | sed -E 's/^#+ +//' | tr 'A-Z' 'a-z' |
        sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}
broken=""
for f in README.md docs/*.md; do
    dir=$(dirname "$f")
    for link in $(grep -o '](\([^) ]*\))' "$f" | sed 's/^](//; s/)$//'); do
        case $link in
            http://*|https://*|mailto:*) continue ;;
        esac
        path=${link%%#*}
        anchor=""
        [ "$path" != "$link" ] && anchor=${link#*#}
        if [ -z "$path" ]; then target=$f; else target=$dir/$path; fi
        if [ ! -e "$target" ]; then
            broken="$broken $f:$link"
        elif [ -n "$anchor" ] && ! anchors "$target" | grep -qx -- "$anchor"; then
            broken="$broken $f:$link"
        fi
    done
done
check "relative links (and anchors) in README.md and docs/ resolve" "" \
    "${broken# }"

# The README points to each reference in docs/.
for ref in docs/CONFIGURATION.md docs/HTTP_API.md docs/CONTROL.md \
           docs/OPERATIONS.md; do
    if [ -f "$ref" ] && grep -q "($ref)" README.md; then
        ok "README.md links $ref"
    else
        fail "README.md links $ref (and it exists)"
    fi
done

# The complete example of the reference (the first ```conf block) and
# the shipped example load. Warnings (an unset api_key_env) may go to
# stderr; the verdict is on stdout.
config_ok() {   # config_ok NAME FILE
    local out
    out=$("$BIN/pipelined" -t -c "$2" 2>"$WORK/check.err")
    if [ "$out" = "configuration ok" ]; then ok "$1"
    else fail "$1: $(head -c 300 "$WORK/check.err")"; fi
}
if [ -f "$CONF_DOC" ] && [ -x "$BIN/pipelined" ]; then
    awk '/^```conf$/ { on = 1; next } on && /^```$/ { exit } on' \
        "$CONF_DOC" >"$WORK/example.conf"
    if [ -s "$WORK/example.conf" ]; then
        config_ok "the example of $CONF_DOC passes pipelined -t" \
            "$WORK/example.conf"
    else
        fail "$CONF_DOC has a \`\`\`conf example"
    fi
    config_ok "$EXAMPLE passes pipelined -t" "$EXAMPLE"
else
    fail "the examples load (no $CONF_DOC or no $BIN/pipelined)"
fi

summary docs
