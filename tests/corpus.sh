#!/bin/bash
# Every file of the shared corpus of hostile and edge-case PDFs
# ($top_srcdir/../shared/corpus, read in place, never copied) is uploaded
# to copeesd: each gets its verdict within the time limit, the verdict
# matches tests/corpus-expect.tsv, and copeesd keeps serving throughout.
# Without the corpus folder the test is skipped.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
CORPUS=$top_srcdir/../shared/corpus
EXPECT=$top_srcdir/tests/corpus-expect.tsv
if [ ! -d "$CORPUS" ]; then
    echo "ok 1 # SKIP corpus not present ($CORPUS)"
    echo "1..1"
    exit 0
fi
. "$(dirname "$0")/lib.sh"

FEATURES=$("$COPEES_PREFLIGHT_HELPER" --features) || bail "the helper does not run"
TIMEOUT_S=5
CUPS_SERVER=$T/no-cups.sock write_conf "[preflight]
workers = 2
timeout = ${TIMEOUT_S}s
page_time = 50ms
memory = 512M"
start_copeesd

# up FILE ORDER OUT: upload, write "STATUS SECONDS PAGES CODES" to OUT (codes: the
# reasons R:, then the warnings W:)
up() {
    local body res
    body=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$1" \
           -w '\n%{http_code} %{time_total}' "http://copees/v1/jobs?order=$2")
    res=${body##*$'\n'}
    body=${body%$'\n'*}
    printf '%s %s %s\n' "$res" "$(jq -r '.preflight // .job.preflight | .pages' <<<"$body" 2>/dev/null)" \
        "$(jq -r '[(.reasons // .preflight.reasons)[]? | "R:" + .code] +
                   [(.preflight.warnings // .job.preflight.warnings)[]? | "W:" + .code] | join(" ")' \
           <<<"$body" 2>/dev/null)" > "$3"
}

declare -A want why need
while IFS=$'\t' read -r f v n w; do
    [[ -z $f || $f == \#* ]] && continue
    want[$f]=$v why[$f]=$w need[$f]=$n
done < "$EXPECT"
# skip: a file whose verdict needs a sandbox feature this build lacks
skip() { [ "${need[$1]:--}" != - ] && [[ " $FEATURES " != *" ${need[$1]} "* ]]; }

mapfile -t files < <(cd "$CORPUS" && ls -1)
mkdir -p "$T/out"
lanes=()
# two lanes, as many as workers: an upload's time is its own check, not a queue
for lane in 0 1; do
    (
        for i in "${!files[@]}"; do
            [ $((i % 2)) = "$lane" ] || continue
            skip "${files[$i]}" && continue
            up "$CORPUS/${files[$i]}" "ORD-corpus-$i" "$T/out/$i"
        done
    ) &
    lanes+=($!)
done
# meanwhile the API keeps answering
lanes_alive() { local p; for p in "${lanes[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
samples=0 slow=0
while lanes_alive; do
    t=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$SOCK" http://copees/v1/health)
    samples=$((samples + 1))
    awk -v t="$t" 'BEGIN { exit !(t > 0.5) }' && slow=$((slow + 1))
    sleep 0.05
done
wait "${lanes[@]}"
is "health answered within 0.5 s all through the corpus ($samples samples)" "$slow" 0

for i in "${!files[@]}"; do
    f=${files[$i]}
    if skip "$f"; then
        ok "# SKIP $f: its verdict needs ${need[$f]}, which this build ($FEATURES) lacks"
        continue
    fi
    read -r status secs pages codes < "$T/out/$i"
    got="$status${codes:+ $codes}"
    limit=$(awk -v p="${pages:-0}" -v t=$TIMEOUT_S 'BEGIN { if (p !~ /^[0-9]+$/) p = 0; print t + 0.05 * p + 2 }')
    if [ -z "${want[$f]+x}" ]; then
        not_ok "$f: no expectation in tests/corpus-expect.tsv (got: $got)"
    else
        is "$f: ${why[$f]}" "$got" "${want[$f]}"
    fi
    check "... within the time limit (${secs}s <= ${limit}s)" awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s <= l) }'
done
for f in "${!want[@]}"; do
    [ -e "$CORPUS/$f" ] || diag "expected but not in the corpus: $f"
done

"$MKPDF" "$T/after.pdf" || bail "mkpdf failed"
out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$T/after.pdf" \
      -w '\nHTTP %{http_code}' "http://copees/v1/jobs?order=ORD-after")
like "after the corpus a good PDF is still accepted" "$out" 'HTTP 201$'
check "copeesd is the same process" kill -0 "$COPEESD_PID"
like "health answers ready" "$(api GET /v1/health)" '"ready":true'
check "no log line carries an order reference" bash -c "! grep -q 'ORD-' '$T/copeesd.log'"
done_testing
