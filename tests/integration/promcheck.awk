# promcheck.awk - a small checker of the Prometheus text format as
# /metrics writes it: every sample belongs to a family declared by
# "# TYPE" before it, names and labels are well formed, values are
# numbers, histogram buckets are cumulative with le labels that are
# numbers rising to +Inf, +Inf equals _count, and every series of one
# histogram has the same le labels. Prints "ok" or the first problem;
# exit 1 on a problem.
function fail(msg) { print "line " NR ": " msg ": " $0; bad = 1; exit 1 }
/^# HELP / { next }
/^# TYPE / {
    if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) fail("bad type")
    type[$3] = $4; next
}
/^#/ { next }
/^$/ { next }
{
    if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf)$/)
        fail("malformed sample")
    name = $1; sub(/\{.*/, "", name)
    family = name; sub(/_(bucket|sum|count)$/, "", family)
    if (!(name in type) && !(family in type)) fail("sample before its # TYPE")
    if (name ~ /_bucket$/ && type[family] == "histogram") {
        series = $1; sub(/,?le="[^"]*"/, "", series)
        v = $2 + 0
        if ((series in last) && v < last[series]) fail("buckets not cumulative")
        last[series] = v
        le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
        if (le !~ /^([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf)$/) fail("le not a number")
        if ((series in lastle) && (lastle[series] == "+Inf" || (le != "+Inf" && le + 0 <= lastle[series] + 0)))
            fail("le labels not rising")
        lastle[series] = le
        les[series] = les[series] " " le
        fam[series] = family
        if ($1 ~ /le="\+Inf"/) inf[series] = v
    }
    if (name ~ /_count$/ && type[family] == "histogram") {
        series = $1; sub(/_count/, "_bucket", series)
        key = series; sub(/\}$/, "}", key)
        count[key] = $2 + 0
    }
}
END {
    if (bad) exit 1
    for (s in les) {
        f = fam[s]
        if (!(f in famles)) famles[f] = les[s]
        else if (famles[f] != les[s]) {
            print "histogram " f ": le labels differ between series"; exit 1
        }
    }
    for (s in count) if (!(s in inf) || inf[s] != count[s]) {
        print "histogram " s ": +Inf bucket " inf[s] " != _count " count[s]; exit 1
    }
    print "ok"
}
