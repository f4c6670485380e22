#!/bin/bash
# bench/preflight.sh - documents/s and pages/s of copeesd's preflight (the
# helper server: fork per document, rlimits, seccomp, render at 18 dpi)
# against pdfinfo and pdftoppm -r 18 run as one process per file, measured
# in the same run.  See bench/README.md.
#
#   bench/preflight.sh            (from the source tree, after configure and make)
#
# Environment: top_builddir (default: this script's ../), BENCH_ROUNDS
# (default 5), BENCH_N1 (checks of the 1-page file per round, default 200),
# BENCH_N200 (checks of the 200-page file per round, default 10).
# Exit 0 when both targets are met, 1 when one is not, 2 on an error.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${top_builddir:-$(cd "$here/.." && pwd)}
ROUNDS=${BENCH_ROUNDS:-5} N1=${BENCH_N1:-200} N200=${BENCH_N200:-10}
CORES=$(nproc)
for tool in pdfinfo pdftoppm; do
    command -v $tool >/dev/null || { echo "bench: $tool not found (Debian package poppler-utils)" >&2; exit 2; }
done
make -s -C "$B" daemon/preflight tests/mkpdf tests/pfdrive >/dev/null || { echo "bench: build failed" >&2; exit 2; }
export COPEES_PREFLIGHT_HELPER=$B/daemon/preflight
W=$(mktemp -d /tmp/copees-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir "$W/ppm" && "$B/tests/mkpdf" --text "A one-page letter to print." "$W/p1.pdf" &&
    "$B/tests/mkpdf" --pages 200 --text "A page of a long report." "$W/p200.pdf" || exit 2

now_ns() { date +%s%N; }
# ms per document, one process per file, n times: ms_per_proc N CMD...
ms_per_proc() {
    local n=$1 t0 i
    shift
    t0=$(now_ns)
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || return 1; done
    awk -v a="$t0" -v b="$(now_ns)" -v n="$n" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 / n }'
}
# ms per document through the helper server, J at a time: ms_helper J N FILE
ms_helper() {
    "$B/tests/pfdrive" -s -j "$1" -r "$2" "$3" | awk '{ for (i = 1; i < NF; i++) if ($i == "ms_per_check") print $(i + 1) }'
}
# ms per document, one process per file, J at a time: ms_parallel J N CMD...
# ({} in CMD is the run's number)
ms_parallel() {
    local j=$1 n=$2 t0
    shift 2
    t0=$(now_ns)
    seq "$n" | xargs -P "$j" -I{} "$@" >/dev/null 2>&1 || return 1
    awk -v a="$t0" -v b="$(now_ns)" -v n="$n" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 / n }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A r
for ((k = 1; k <= ROUNDS; k++)); do   # interleaved rounds: drift hits every column alike
    r[h1]+="$(ms_helper 1 "$N1" "$W/p1.pdf") "
    r[info1]+="$(ms_per_proc "$N1" pdfinfo "$W/p1.pdf") "
    r[h200]+="$(ms_helper 1 "$N200" "$W/p200.pdf") "
    r[ppm200]+="$(ms_per_proc "$N200" pdftoppm -r 18 "$W/p200.pdf" "$W/ppm/p") "
    r[ppm1]+="$(ms_per_proc "$N1" pdftoppm -r 18 "$W/p1.pdf" "$W/ppm/p") "
    r[info200]+="$(ms_per_proc "$N1" pdfinfo "$W/p200.pdf") "
    r[warm1]+="$("$COPEES_PREFLIGHT_HELPER" --warm "$N1" < "$W/p1.pdf" |
                 awk '$1 == "warm" { print $5 }') "
    r[hj1]+="$(ms_helper "$CORES" "$N1" "$W/p1.pdf") "
    r[hj200]+="$(ms_helper "$CORES" "$N200" "$W/p200.pdf") "
    r[infoj1]+="$(ms_parallel "$CORES" "$N1" pdfinfo "$W/p1.pdf") "
    r[ppmj200]+="$(ms_parallel "$CORES" "$N200" pdftoppm -r 18 "$W/p200.pdf" "$W/ppm/{}") "
    rm -f "$W"/ppm/*
done
declare -A m
for key in "${!r[@]}"; do
    [ "$(wc -w <<<"${r[$key]}")" = "$ROUNDS" ] || { echo "bench: a measurement failed ($key)" >&2; exit 2; }
    m[$key]=$(tr ' ' '\n' <<<"${r[$key]}" | grep . | median)
done

row() {   # row LABEL PAGES MS
    awk -v l="$1" -v p="$2" -v ms="$3" 'BEGIN { printf "  %-46s %9.2f %9.1f %10.0f\n", l, ms, 1000 / ms, p * 1000 / ms }'
}
echo "preflight benchmark: $(nproc) cores, $(pdfinfo -v 2>&1 | head -1), $ROUNDS rounds (median)"
echo "  sandbox: $("$COPEES_PREFLIGHT_HELPER" --features)"
printf '  %-46s %9s %9s %10s\n' "" "ms/doc" "docs/s" "pages/s"
echo "1-page PDF, one at a time"
row "copeesd helper (fork, limits, seccomp, render)" 1 "${m[h1]}"
row "pdfinfo, one process per file" 1 "${m[info1]}"
row "pdftoppm -r 18, one process per file" 1 "${m[ppm1]}"
row "for information: the same check in one process" 1 "${m[warm1]}"
awk -v h="${m[h1]}" -v w="${m[warm1]}" 'BEGIN { printf "  (CPU, one warm process checking it %d times: the other %.0f%% of the helper'"'"'s\n   figure is its fresh sandboxed process per document)\n", '"$N1"', 100 * (h - w) / h }'
echo "200-page PDF, one at a time"
row "copeesd helper (fork, limits, seccomp, render)" 200 "${m[h200]}"
row "pdfinfo, one process per file (reads no page)" 200 "${m[info200]}"
row "pdftoppm -r 18, one process per file" 200 "${m[ppm200]}"
echo "$CORES at a time (workers = cores; the default is one more)"
row "copeesd helper, 1-page PDF" 1 "${m[hj1]}"
row "pdfinfo, 1-page PDF" 1 "${m[infoj1]}"
row "copeesd helper, 200-page PDF" 200 "${m[hj200]}"
row "pdftoppm -r 18, 200-page PDF" 200 "${m[ppmj200]}"

rc=0
target() {   # target LABEL OURS THEIRS LIMIT
    if awk -v a="$2" -v b="$3" -v l="$4" -v t="$1" 'BEGIN {
            r = a / b; printf "target: %s = %.2f (at most %s): %s\n", t, r, l, r <= l ? "met" : "MISSED"
            exit !(r <= l) }'; then :; else rc=1; fi
}
target "1-page helper / pdfinfo" "${m[h1]}" "${m[info1]}" 0.5
target "200-page helper / pdftoppm -r 18" "${m[h200]}" "${m[ppm200]}" 1.0
exit $rc
