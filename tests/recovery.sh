#!/bin/bash
# Startup recovery when copeesd is killed inside the shred procedure (a
# test-build fault point makes it die at each step): after overwriting the
# file, after renaming it away, after unlinking it (before recording).  A
# restart finishes every shred: the job ends with its document shredded
# (never "document-lost"), a receipt in the audit log, no file left in the
# spool, nothing overdue.  Both ways in: an erasure request and the end of
# the complaint window.
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs (no fault points)"; exit 0; }

start_cups
COMPLAINT_WINDOW=2s write_conf
"$MKPDF" --pages 1 --text "recovery" "$T/a.pdf"
n=0

start_faulty() {   # start_faulty POINT: copeesd with the fault point armed
    COPEES_TEST_FAULT=$1 "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    COPEESD_PID=$!
    wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health || bail "copeesd did not come up"
}
died_at() {        # died_at POINT: the armed copeesd exits with 86
    local rc=0 pid=$COPEESD_PID
    COPEESD_PID=
    wait "$pid" || rc=$?
    is "copeesd died at $1" "$rc" 86
}
finished() {       # finished ID WHAT: after a restart the shred is complete
    local id=$1
    check "$2: the document is shredded after the restart" wait_until 30 job_is "$id" .document shredded
    unlike_lost=$(job_field "$id" '.state_reasons | join(",")')
    is "$2: not reported as document-lost" "$(grep -c document-lost <<<"$unlike_lost")" 0
    like "$2: a shred receipt is in the audit log" "$(sqlite3 "$T/state/copees.db" \
        "SELECT group_concat(type) FROM events WHERE job_id=$id")" 'shred'
    is "$2: no file is left in the spool" "$(ls -A "$T/spool/jobs" "$T/spool/incoming" | grep -vc ':$\|^$')" 0
    like "$2: nothing is overdue" "$(api GET /metrics)" 'copees_oldest_overdue_document_seconds 0'
}

for point in shred-after-overwrite shred-after-rename shred-after-unlink; do
    # an erasure request
    start_faulty "$point"
    n=$((n + 1))
    upload "$T/a.pdf" "order=ORD-RC-$n&hold=true"
    id=$(jq -r .id <<<"$BODY")
    curl -s -m 10 --unix-socket "$SOCK" -X POST "http://copees/v1/jobs/$id/shred" > /dev/null
    died_at "$point (erasure)"
    start_copeesd
    finished "$id" "$point, erasure"
    is "$point, erasure: the job is canceled, reason erased" \
        "$(job_field "$id" '.state + " " + (.state_reasons | join(","))')" "canceled erased"
    stop_copeesd

    # the end of the complaint window
    start_faulty "$point"
    n=$((n + 1))
    upload "$T/a.pdf" "order=ORD-RC-$n"
    id=$(jq -r .id <<<"$BODY")
    check "$point, window: the job prints" wait_until 60 bash -c \
        "sqlite3 '$T/state/copees.db' \"SELECT state FROM jobs WHERE id=$id\" | grep -q printed"
    died_at "$point (window)"
    start_copeesd
    finished "$id" "$point, window"
    is "$point, window: the job stays printed" "$(job_field "$id" .state)" printed
    stop_copeesd
done

# an erasure request for a printed job, far from the end of its window
COMPLAINT_WINDOW=1h write_conf
for point in shred-after-overwrite shred-after-rename; do
    start_faulty none
    n=$((n + 1))
    upload "$T/a.pdf" "order=ORD-RC-$n"
    id=$(jq -r .id <<<"$BODY")
    check "$point, printed: the job prints" wait_until 60 job_is "$id" .state printed
    stop_copeesd
    start_faulty "$point"
    curl -s -m 10 --unix-socket "$SOCK" -X POST "http://copees/v1/jobs/$id/shred" > /dev/null
    died_at "$point (erasure of a printed job)"
    start_copeesd
    finished "$id" "$point, erasure of a printed job"
    is "$point, erasure of a printed job: it stays printed" "$(job_field "$id" .state)" printed
    stop_copeesd
done
done_testing
