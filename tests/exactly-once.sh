#!/bin/bash
# Exactly-once hand-over to CUPS: copeesd dies (a test-build fault point)
# right after CUPS created the job but before its document went (before
# and after the hand-over record), and right after the document went but
# before copeesd recorded it.  After a restart, the CUPS job is found by
# the hand-over record's CUPS job id, or, without a record, by its
# job-name in the start-up listing: the orphan waiting for its document is
# purged and the job sent once; the job CUPS already has is adopted, never
# sent again.  The same two windows
# without a crash (a Send-Document that gets no answer, before or after the
# document went): the CUPS job is settled before ours goes out again; a
# settle that CUPS refuses is tried again after a growing pause.  Each
# job reaches the printer exactly once, and nothing of ours is left in CUPS.
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs (no fault points)"; exit 0; }

start_cups
# A printer of its own for the cases where copeesd purges a CUPS job that
# CUPS may be sending on: when CUPS's ipp backend is stopped between its
# Create-Job at the printer and the document, ippeveprinter keeps that
# job for ever and prints nothing else ("Currently printing another
# job"), which would stall every case after it on one printer.
add_printer sub --media=iso_a4_210x297mm -s 20
SUB_CONF=$(printer_section sub sub iso_a4_210x297mm false false 20)
write_conf
"$MKPDF" --pages 2 --text "exactly once" "$T/doc.pdf"

# prints_once ID WHEN: job ID prints (WHEN: how it came to), CUPS is left
# with nothing of ours, and the printer received it exactly once
prints_once() {
    check "$2: the job prints" wait_until 60 job_is "$1" .state printed
    check "CUPS is left with nothing of ours" wait_until 30 cups_idle
    is "the printer received it exactly once" "$(printed_count "$1")" 1
}

crash_at crash-after-create-job ORD-EO-1
id1=$(cat "$T/last.id")
like "CUPS holds a job of ours waiting for its document" \
    "$(lpstat -h "$CUPS_SERVER" -o 2>/dev/null | wc -l)" '^[1-9]'
is "our job is still queued (the crash came before our commit)" "$(sqlite3 "$T/state/copees.db" \
    "SELECT state FROM jobs WHERE id=$id1")" queued

start_copeesd
prints_once "$id1" "after the restart"
like "the orphan waiting for its document was purged" \
    "$(grep 'left waiting for its document' "$T/copeesd.log")" "job $id1"
stop_copeesd

# Dying after the hand-over record (committed between Create-Job and
# Send-Document), before the document went: at the restart the CUPS job
# the record names is read first, found waiting for its document, purged,
# and the job goes out once (the record alone fails nothing).
crash_at crash-after-handover ORD-EO-H
idh=$(cat "$T/last.id")
is "our job is queued, with a hand-over record" "$(sqlite3 "$T/state/copees.db" \
    "SELECT state || ' ' || (SELECT count(*) FROM handovers WHERE job_id=$idh) FROM jobs WHERE id=$idh")" \
    "queued 1"
start_copeesd
prints_once "$idh" "after the restart"
like "the CUPS job the record names was settled first" \
    "$(grep "job $idh" "$T/copeesd.log")" 'handed to CUPS \(job [0-9]+\) when copeesd stopped; settling'
is "no hand-over record is left" "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM handovers")" 0
stop_copeesd

crash_at crash-after-send ORD-EO-2
id2=$(cat "$T/last.id")
is "our job is still queued (CUPS has it, we did not record it)" "$(sqlite3 "$T/state/copees.db" \
    "SELECT state FROM jobs WHERE id=$id2")" queued
start_copeesd
prints_once "$id2" "after the restart"
like "it was adopted from CUPS, not sent again" \
    "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$id2 AND type='state'")" \
    'CUPS job [0-9]+ on printer atelier, handed over when copeesd stopped, has its document \(not sent again\)'
is "job $id1 still printed once" "$(printed_count "$id1")" 1
is "the first job's id and the second's differ" "$([ "$id1" != "$id2" ] && echo yes)" yes
stop_copeesd

# Without a crash: Send-Document fails as if cupsd had stopped answering
# (a test-build fault, once), so copeesd does not wait to cancel the CUPS
# job it created.  That job is settled before ours goes out again: purged
# when it never got the document, adopted when only the answer was lost.
# settled POINT ORDER: run copeesd with the fault, upload; the job id in
# SETTLED_ID (not echoed: in a $(...) subshell COPEESD_PID would be lost,
# and that daemon would never be stopped)
settled() {
    COPEES_TEST_FAULT=$1 start_copeesd
    upload "$T/doc.pdf" "order=$2&copies=1"
    [ "$STATUS" = 201 ] || bail "upload: $STATUS $BODY"
    SETTLED_ID=$(jq -r .id <<<"$BODY")
}
settled send-timeout-before ORD-EO-3
id3=$SETTLED_ID
prints_once "$id3" "no answer before the document"
like "the CUPS job left without its document was purged first" \
    "$(grep -E "job $id3[] ]" "$T/copeesd.log")" 'left without its document, purged; the job goes out again'
is "the failed try is in the audit log" "$(sqlite3 "$T/state/copees.db" \
    "SELECT count(*) FROM events WHERE job_id=$id3 AND type='dispatch-failed'")" 1
stop_copeesd

# The same, with every purge refused (test-build fault): the settle is
# tried again after 2, 4, 8 ... s (a refusal is an answer; only a cupsd
# that does not answer is tried again at every poll, here 200 ms), and
# after a restart without the fault the job prints once.
settled send-timeout-before,purge-refused ORD-EO-B
idb=$SETTLED_ID
# refusals N: when each of the first N "cannot settle" lines for job idb
# was seen (seconds, one a line, in REFUSED_AT), polled every 0.1 s
refusals() {
    local n=0 c deadline=$((SECONDS + 60))
    REFUSED_AT=()
    while [ $n -lt "$1" ] && [ $SECONDS -lt $deadline ]; do
        c=$(grep -E "job $idb[] ]" "$T/copeesd.log" | grep -c 'cannot settle CUPS job .* (tried again later)')
        while [ $n -lt "$c" ] && [ $n -lt "$1" ]; do
            REFUSED_AT+=("$EPOCHREALTIME")
            n=$((n + 1))
        done
        [ $n -lt "$1" ] && sleep 0.1
    done
    [ $n -ge "$1" ]
}
check "a settle whose purge is refused is tried again (3 tries)" refusals 3
gap() { echo "${REFUSED_AT[$2]:-0} - ${REFUSED_AT[$1]:-0} >= $3" | bc -l; }
is "... the second 2 s or more after the first" "$(gap 0 1 1.5)" 1
is "... the third 4 s or more after the second" "$(gap 1 2 3.5)" 1
is "... the job waits meanwhile" "$(job_field "$idb" .state)" queued
stop_copeesd
start_copeesd
prints_once "$idb" "after a restart without the fault"
stop_copeesd

# adopted_once POINT ORDER WHAT: with the fault POINT the document went in
# and its answer was lost (WHAT): the job prints once, adopted
adopted_once() {
    settled "$1" "$2"
    local id=$SETTLED_ID
    prints_once "$id" "$3"
    like "CUPS's job was adopted, not sent again" \
        "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$id AND type='state'")" \
        'whose answer was lost, has its document \(not sent again\)'
    stop_copeesd
}
adopted_once send-timeout-after ORD-EO-4 "answer lost after the document"

# Send-Document fails at once, before the document went (a reset, not a
# stall; test-build fault): that CUPS job cannot print.  A hand-over
# record names it, so the CUPS thread does not purge it: the settle
# deletes the record first, then purges it, and the job prints once.
settled send-error-before ORD-EO-U
idu=$SETTLED_ID
prints_once "$idu" "a reset before the document"
unlike "the CUPS thread did not purge the CUPS job the record names" \
    "$(grep -E "job $idu[] ]" "$T/copeesd.log")" 'cupslink: CUPS job [0-9]+ canceled and purged'
like "... the settle did, after deleting the record" \
    "$(grep -E "job $idu[] ]" "$T/copeesd.log")" 'never got the document.*|left without its document, purged'
stop_copeesd
# The answer fails at once after the whole document went (a connection
# reset, not a stall; test-build fault): the CUPS job is not canceled --
# it may be printing, or printed and forgotten -- but settled: adopted.
adopted_once send-error-after ORD-EO-4B "answer failed after the document"

# The same, but Create-Job's answer had said CUPS changed the job's media
# (test-build fault: a real cupsd leaves media to its filters): as at a
# plain hand-over, the job fails with option-not-supported, never adopted.
DEFAULT_PRINTER=no write_conf "$SUB_CONF"
settled send-timeout-after-substituted ORD-EO-5
id5=$SETTLED_ID
check "answer lost, media substituted: the job fails" wait_until 60 job_is "$id5" .state failed
like "... with the reason option-not-supported" "$(job_field "$id5" '.state_reasons | join(",")')" \
    'option-not-supported'
like "... saying why" \
    "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$id5 AND type='state'")" \
    'does not support the job.s media \(CUPS would substitute it'
unlike "... it was not adopted" \
    "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$id5 AND type='state'")" \
    'not sent again'
check "CUPS is left with nothing of ours" wait_until 30 cups_idle
is "the printer received it at most once" \
    "$(( $(grep -c "IPP_JOB_NAME=copees-[0-9a-f]*-$id5\( \|$\)" "$(printer_log sub)" 2>/dev/null) <= 1 ))" 1
stop_copeesd
write_conf

# The same, but cupsd has forgotten the CUPS job by the time it is read
# (test-build fault: purged for real, as PreserveJobHistory No would once
# it printed).  Whether it printed is not known: the job fails with
# cups-job-lost rather than being sent a second time.
settled send-timeout-gone ORD-EO-6
id6=$SETTLED_ID
check "answer lost, CUPS job gone: the job fails" wait_until 60 job_is "$id6" .state failed
like "... with the reason cups-job-lost" "$(job_field "$id6" '.state_reasons | join(",")')" \
    'cups-job-lost'
like "... saying why" \
    "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$id6 AND type='state'")" \
    'is gone: whether it printed is not known, so it is not sent again'
check "CUPS is left with nothing of ours" wait_until 30 cups_idle
check "... and stays failed" stays 3 job_is "$id6" .state failed
is "... it is not sent again" "$(printed_count "$id6")" 0
stop_copeesd

# reprint_after_restart ID WHAT OLD: job ID printed once and CUPS still
# holds that print's CUPS job (the command OLD succeeds while it does).
# With the printer disabled, ID is reprinted and copeesd restarted: the
# reprint waits (it is not WHAT the old CUPS job), the old CUPS job is
# purged, and once the printer is enabled the reprint prints.
reprint_after_restart() {
    local id=$1 what=$2 old=$3
    api POST /v1/printers/atelier/disable > /dev/null
    like "a reprint while the printer is disabled: 200" "$(api POST "/v1/jobs/$id/reprint")" 'HTTP 200$'
    stop_copeesd
    start_copeesd
    check "after a restart the reprint still waits (2 s), not $what the old CUPS job" \
        stays 2 job_is "$id" .state queued
    check "... and the old CUPS job is purged" wait_until 30 bash -c "! $old"
    api POST /v1/printers/atelier/enable > /dev/null
    check "once the printer is enabled, the reprint prints" wait_until 60 job_is "$id" .state printed
    is "the printer ran it twice in all: the first print and the reprint" "$(printed_count "$id")" 2
    stop_copeesd
}

# A reprint waiting (its printer disabled) when copeesd restarts, while
# CUPS still holds the completed CUPS job of the first print (every purge
# refused: a test-build fault): that job has the reprint's name, but it is
# the earlier print's.  It is purged, not taken for the reprint, and the
# reprint prints once the printer is enabled.
COPEES_TEST_FAULT=purge-refused start_copeesd
upload "$T/doc.pdf" "order=ORD-EO-R&copies=1"
idr=$(jq -r .id <<<"$BODY")
check "a first print" wait_until 60 job_is "$idr" .state printed
check "... whose CUPS job stays (purges refused)" bash -c \
    "lpstat -h '$CUPS_SERVER' -W completed -o test1 | grep -q ."
reprint_after_restart "$idr" "taken for" "lpstat -h '$CUPS_SERVER' -W completed -o test1 | grep -q ."

# The same with a failed first print: its CUPS job had started and was
# then canceled at the printer (the printer's command fails after 5 s:
# sooner, CUPS's ipp backend may take the vanished job for completed, and
# then the case is tried again with a new job).  That CUPS job has the
# reprint's name and had started, which for a job never reprinted means
# "part of it may be printed: fail it"; for a reprint it is the earlier
# print's.  It is purged, and the reprint prints.
COPEES_TEST_FAULT=purge-refused start_copeesd
printf 'DELAY=5\nEXIT=1\n' > "$T/cups/ipp-record.conf"
ended() { case $(job_field "$1" .state) in failed|printed) return 0 ;; esac; return 1; }
for attempt in 1 2 3; do
    upload "$T/doc.pdf" "order=ORD-EO-F$attempt&copies=1"
    idf=$(jq -r .id <<<"$BODY")
    wait_until 60 ended "$idf"
    [ "$(job_field "$idf" .state)" = printed ] || break
    diag "attempt $attempt: CUPS's ipp backend took the canceled job for completed; again"
done
check "a first print fails at the printer" wait_until 30 job_is "$idf" .state failed
cidf=$(job_field "$idf" .cups_job_id)
check "... and its CUPS job, started then canceled, stays (purges refused)" bash -c \
    "lpstat -h '$CUPS_SERVER' -W completed -o | grep -q -- '-$cidf '"
rm -f "$T/cups/ipp-record.conf"
reprint_after_restart "$idf" "failed for" "lpstat -h '$CUPS_SERVER' -W completed -o | grep -q -- '-$cidf '"

# The hand-over record keeps what a settle at the restart needs besides
# the CUPS job.  Create-Job's answer said CUPS would change the job's media
# (test-build fault), then copeesd died after the document went: at the
# restart the job fails with option-not-supported, as it would have
# without the crash, instead of being adopted.
DEFAULT_PRINTER=no write_conf "$SUB_CONF"     # (see the top)
crash_at create-substituted,crash-after-send ORD-EO-S
ids=$(cat "$T/last.id")
is "the record keeps the substitution" "$(sqlite3 "$T/state/copees.db" \
    "SELECT substituted FROM handovers WHERE job_id=$ids")" media
start_copeesd
check "after the restart the job fails, not adopted" wait_until 60 job_is "$ids" .state failed
like "... with option-not-supported" "$(job_field "$ids" '.state_reasons | join(",")')" \
    'option-not-supported'
check "CUPS is left with nothing of ours" wait_until 30 cups_idle
stop_copeesd
write_conf

# ... and the cover sheet's CUPS job: copeesd died after the job's
# document went, its cover sheet (a job of its own, sent first) in CUPS
# too.  At the restart the job is adopted with its cover sheet, which the
# listing leaves to the settle: each reaches the printer once.
write_conf 'cover_sheet = true'
crash_at crash-after-send ORD-EO-C
idc=$(cat "$T/last.id")
like "the record names the cover sheet's CUPS job" "$(sqlite3 "$T/state/copees.db" \
    "SELECT cover_id FROM handovers WHERE job_id=$idc")" '^[1-9][0-9]*$'
start_copeesd
check "after the restart the job prints" wait_until 60 job_is "$idc" .state printed
check "CUPS is left with nothing of ours" wait_until 30 cups_idle
check "... finished jobs included" wait_until 30 bash -c \
    "[ \"\$(lpstat -h '$CUPS_SERVER' -W all -o test1 2>/dev/null | grep -c .)\" = 0 ]"
is "the printer received the job once" "$(printed_count "$idc")" 1
is "... and its cover sheet once" "$(printed_count "$idc-cover")" 1
stop_copeesd

# A stop while a sent job's cover sheet prints (the printer takes 4 s a
# job): after the restart the job is tracked again, and so is its cover
# sheet, which the listing finds.  Both print once, and both are purged
# from CUPS's history once done.
none_in_cups() {   # no CUPS job of ours, finished ones included
    [ "$(lpstat -h "$CUPS_SERVER" -W all -o test1 2>/dev/null | grep -c .)" = 0 ]
}
printf 'DELAY=4\n' > "$T/cups/ipp-record.conf"
start_copeesd
upload "$T/doc.pdf" "order=ORD-EO-CS&copies=1"
idcs=$(jq -r .id <<<"$BODY")
check "a job with a cover sheet is sent" wait_until 30 job_is "$idcs" .state sent
stop_copeesd
start_copeesd
check "after the restart the job prints" wait_until 60 job_is "$idcs" .state printed
is "the printer received the job once" "$(printed_count "$idcs")" 1
is "... and its cover sheet once" "$(printed_count "$idcs-cover")" 1
check "nothing of ours is left in CUPS, finished jobs included" wait_until 30 none_in_cups
rm -f "$T/cups/ipp-record.conf"
stop_copeesd
done_testing
