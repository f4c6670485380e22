#!/bin/bash
# The default 12-hour complaint window and wall-clock steps, with a moved
# clock instead of hours of waiting: copeesd runs under libfaketime, whose
# offset the test changes while it runs (FAKETIME_TIMESTAMP_FILE re-read on
# every call; the monotonic clock stays real, as a real clock step leaves
# it).  Deadlines are wall-clock: a step forward past retain_until shreds
# the document at the next wake-up; a step back (or forward but short of
# it) does not.  The wake-up period is shortened from 30 s to 1 s
# (COPEES_TEST_RECHECK, test builds only).
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs"; exit 0; }
FT=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
    [ -e "$f" ] && FT=$f && break
done
[ -n "$FT" ] || { echo "1..0 # SKIP libfaketime is not installed (Debian package faketime)"; exit 0; }
if [ "${COPEES_ASAN:-}" = yes ]; then
    echo "1..0 # SKIP libfaketime cannot be preloaded before the ASan runtime"; exit 0
fi

start_cups
COMPLAINT_WINDOW=12h write_conf
echo "+0" > "$T/faketime"
LD_PRELOAD=$FT FAKETIME_TIMESTAMP_FILE=$T/faketime FAKETIME_NO_CACHE=1 \
FAKETIME_DONT_FAKE_MONOTONIC=1 COPEES_TEST_RECHECK=1 \
    "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
COPEESD_PID=$!
wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health || bail "copeesd did not come up"
"$MKPDF" --pages 1 "$T/a.pdf"
upload "$T/a.pdf" "order=ORD-CLOCK"
J=$(jq -r .id <<<"$BODY")
check "the job prints" wait_until 60 job_is "$J" .state printed
epoch() { date -d "$1" +%s; }
pr=$(epoch "$(job_field "$J" .printed_at)")
ru=$(epoch "$(job_field "$J" .retain_until)")
is "retain_until = printed_at + 12 h" "$((ru - pr))" 43200

# step_to OFFSET: move copeesd's clock, wait until its retention timer has
# looked at the documents at the new time (its debug line shows the time)
seen_after() {   # seen_after EPOCH: a retention pass ran at or after EPOCH (faked)
    local t
    t=$(grep -o 'looking for documents due at [0-9TZ:-]*' "$T/copeesd.log" | tail -1 | awk '{print $NF}')
    [ -n "$t" ] && [ "$(epoch "$t")" -ge "$1" ]
}
seen_before() {  # seen_before EPOCH: the last retention pass ran before EPOCH (faked)
    local t
    t=$(grep -o 'looking for documents due at [0-9TZ:-]*' "$T/copeesd.log" | tail -1 | awk '{print $NF}')
    [ -n "$t" ] && [ "$(epoch "$t")" -lt "$1" ]
}

echo "+660m" > "$T/faketime"           # 11 h later: inside the window
check "the daemon sees the clock 11 h ahead" wait_until 20 seen_after $((pr + 39000))
is "... the document is still present" "$(job_field "$J" .document)" present

echo "-1440m" > "$T/faketime"          # a step back, a day before the print
check "the daemon sees the clock a day back" wait_until 20 seen_before "$pr"
is "... the document is still present" "$(job_field "$J" .document)" present

echo "+725m" > "$T/faketime"           # 12 h 5 min after the print
check "a step past retain_until shreds the document at once" wait_until 20 job_is "$J" .document shredded
sa=$(epoch "$(job_field "$J" .shredded_at)")
check "shredded_at is on the moved clock, after retain_until" test "$sa" -ge "$ru"
like "no document is overdue" "$(api GET /metrics)" 'copees_oldest_overdue_document_seconds 0'
done_testing
