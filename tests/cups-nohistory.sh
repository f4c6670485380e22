#!/bin/bash
# A cupsd that keeps no job history (PreserveJobHistory No): a job it has
# printed is forgotten at once.  copeesd polls slowly here (120 s), so the
# job is still "sent" when an admin moves it, or disables its printer, and
# the take-back finds no CUPS job.  CUPS may have printed it (it did):
# the job fails with cups-job-lost instead of being requeued and printed
# a second time on the other printer.  A move refused once its job was
# taken back from CUPS queues the job again.  And a crash right after the
# document went to CUPS fails the job at the restart (CUPS printed it and
# forgot it) instead of sending it again.
. "$(dirname "$0")/lib.sh"

export CUPS_CONF_EXTRA="PreserveJobHistory No"
start_cups
add_printer p1 --media=iso_a4_210x297mm -s 20
add_printer p2 --media=iso_a4_210x297mm -s 20
PRINTERS="$(printer_section p1 p1 iso_a4_210x297mm false false 20 'max_inflight = 2')
$(printer_section p2 p2 iso_a4_210x297mm false false 20 'max_inflight = 2')"
DEFAULT_PRINTER=no write_conf "$PRINTERS"
sed -i 's/^poll_interval = .*/poll_interval = 120s/' "$CONF"
"$MKPDF" --pages 1 --text "no history" "$T/a.pdf"
start_copeesd
ready() { curl -s --unix-socket "$SOCK" http://copees/v1/health | jq -e '.cups == "ok"' >/dev/null; }
check "copeesd has matched its jobs with CUPS" wait_until 30 ready
like "GET /v1/health warns that CUPS keeps no job history" \
    "$(curl -s --unix-socket "$SOCK" http://copees/v1/health | jq -r '.warnings[]')" \
    'CUPS keeps no job history \(PreserveJobHistory No\)'

# printed_forgotten ORDER: upload, wait until its printer received it and
# CUPS forgot it; sets ID, AT (its printer) and OTHER
printed_forgotten() {
    upload "$T/a.pdf" "order=$1"
    [ "$STATUS" = 201 ] || bail "upload: $STATUS $BODY"
    ID=$(jq -r .id <<<"$BODY")
    wait_until 20 job_is "$ID" .state sent || bail "job $ID was not sent"
    AT=$(job_field "$ID" .printer)
    OTHER=p1; [ "$AT" = p1 ] && OTHER=p2
    check "job $ID reached printer $AT" wait_until 30 got "$AT" "$ID"
    check "... and CUPS has forgotten it" wait_until 30 bash -c \
        "[ -z \"\$(lpstat -h '$CUPS_SERVER' -W all -o 2>/dev/null)\" ]"
    is "... while copeesd still has it sent" "$(job_field "$ID" .state)" sent
}
received_line() {
    [ -f "$(printer_log "$1")" ] || return 0
    grep -E "IPP_JOB_NAME=copees-[0-9a-f]+-$2( |\$)" "$(printer_log "$1")"
}
got() { [ -n "$(received_line "$1" "$2")" ]; }
once() { echo $(( $(received_line "$AT" "$1" | wc -l) + $(received_line "$OTHER" "$1" | wc -l) )); }

# 1. A move.
printed_forgotten ORD-NH-1
out=$(api POST "/v1/jobs/$ID/move?printer=$OTHER")
like "moving it: 409 cups-job-lost" "$out" '"error":"cups-job-lost".*HTTP 409$'
is "... the job failed with cups-job-lost" "$(job_field "$ID" '.state + " " + (.state_reasons | join(","))')" \
    "failed cups-job-lost"
check "... and is not sent again (2 s)" stays 2 job_is "$ID" .state failed
is "... printed once in all" "$(once "$ID")" 1

# 2. Disabling its printer (which takes back the jobs CUPS is not printing).
printed_forgotten ORD-NH-2
out=$(api POST "/v1/printers/$AT/disable")
like "disabling its printer: 200" "$out" 'HTTP 200$'
check "... the job failed with cups-job-lost" wait_until 20 job_is "$ID" .state failed
like "... saying why" "$(sqlite3 "$T/state/copees.db" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $ID AND type = 'state'")" \
    'found gone when taking it back'
check "... and is not sent again (2 s)" stays 2 job_is "$ID" .state failed
is "... printed once in all" "$(once "$ID")" 1
stop_copeesd

# 3. A move whose target begins rejecting while CUPS gives the job back (a
#    test-build pause before the take-back's read): CUPS no longer has it,
#    so it is queued again (it printed later where it may go), not left
#    "sent" with a CUPS job that is gone.
COPEES_TEST_FAULT=pause-before-take-back COPEES_TEST_PAUSE=$T/pause start_copeesd
api POST /v1/printers/p1/enable > /dev/null
api POST /v1/printers/p2/disable > /dev/null
printer_knobs p1 DELAY=4
printer_knobs p2
upload "$T/a.pdf" "order=ORD-NH-3"
J1=$(jq -r .id <<<"$BODY")
upload "$T/a.pdf" "order=ORD-NH-4"
J2=$(jq -r .id <<<"$BODY")
check "both jobs are sent to p1 (the second waits in CUPS)" wait_until 20 bash -c \
    "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/$J2 | jq -r '.state + .printer')\" = sentp1 ]"
api POST /v1/printers/p2/enable > /dev/null
( api POST "/v1/jobs/$J2/move?printer=p2" > "$T/move.out" ) &
MOVE=$!
check "the take-back waits before reading CUPS's job" wait_until 20 test -e "$T/pause"
api POST /v1/printers/p2/reject > /dev/null
rm -f "$T/pause"
wait "$MOVE"
like "the move is refused: 409 printer-not-accepting" "$(cat "$T/move.out")" \
    '"error":"printer-not-accepting".*HTTP 409$'
like "... the job was queued again" \
    "$(sqlite3 "$T/state/copees.db" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $J2 AND type = 'state'")" \
    'which was then refused \(printer-not-accepting\): queued again'
AT=p1 OTHER=p2
check "... and it prints at p1" wait_until 30 got p1 "$J2"
unlike "... never failed" "$(job_field "$J2" '.state + " " + (.state_reasons | join(","))')" 'failed|cups-job-lost'
is "... printed once in all" "$(once "$J2")" 1
printer_knobs p1
stop_copeesd

# 4. copeesd dies right after the document went to CUPS, before it
#    recorded the hand-over's end (a test-build fault).  CUPS prints the
#    job and forgets it.  The hand-over record, committed before the
#    document went, names the CUPS job; at the restart CUPS no longer
#    knows it, so the job may have printed: it fails with cups-job-lost,
#    never sent again.  The job is due soon: the start's deadline check
#    must not mark it (or anything else write to it) in a way that lets
#    it go out again.
"$MKPDF" --pages 1 --text "crash" "$T/doc.pdf"
crash_at crash-after-send "ORD-NH-5&due=$(rfc3339 '+10 minutes')"
ID=$(cat "$T/last.id")
AT=p1 OTHER=p2
printed() { [ "$(once "$ID")" -ge 1 ]; }
check "CUPS printed job $ID" wait_until 30 printed
check "... and forgot it" wait_until 30 bash -c \
    "[ -z \"\$(lpstat -h '$CUPS_SERVER' -W all -o 2>/dev/null)\" ]"
is "... while our row still says queued (the crash came before our commit)" \
    "$(sqlite3 "$T/state/copees.db" "SELECT state FROM jobs WHERE id = $ID")" queued
start_copeesd
check "after the restart the job fails" wait_until 30 job_is "$ID" .state failed
check "... with cups-job-lost" has_reason "$ID" cups-job-lost
like "... saying why" "$(sqlite3 "$T/state/copees.db" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $ID AND type = 'state'")" \
    'handed over when copeesd stopped, is gone: whether it printed is not known'
is "no hand-over record is left" "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM handovers")" 0
check "... and is not sent again (3 s)" stays 3 job_is "$ID" .state failed
is "... printed once in all" "$(once "$ID")" 1
stop_copeesd
done_testing
