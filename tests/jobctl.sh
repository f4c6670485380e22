#!/bin/bash
# Job actions through the API: hold and release, cancel of a held job, of
# a job CUPS is printing (taken back from CUPS, nothing left there), and
# the refusals (a printed job, an unknown job), each one audited.
. "$(dirname "$0")/lib.sh"

# The virtual printer takes 8 s per job, so a job stays "printing" a while.
printf '#!/bin/sh\nsleep 8\n' > "$T/slow-print"
chmod 0755 "$T/slow-print"
IPPEVE_CMD=$T/slow-print start_cups
write_conf
start_copeesd
"$MKPDF" --pages 1 "$T/a.pdf"
"$MKPDF" --pages 2 "$T/b.pdf"

# hold=true in the ticket, then release
upload "$T/a.pdf" "order=ORD-H&hold=true"
is "a hold=true ticket is accepted as held" "$(jq -r .state <<<"$BODY")" held
H=$(jq -r .id <<<"$BODY")
out=$(api POST "/v1/jobs/$H/hold")
like "holding a held job is a no-op 200" "$out" 'HTTP 200$'
out=$(api DELETE "/v1/jobs/$H")
like "cancel of a held job: 200" "$out" 'HTTP 200$'
like "... it is canceled" "$out" '"state":"canceled"'
like "... and its document is already shredded" "$out" '"document":"shredded"'
out=$(api DELETE "/v1/jobs/$H")
like "a second cancel: 409" "$out" 'HTTP 409$'

# a job that CUPS is printing
upload "$T/b.pdf" "order=ORD-P"
P=$(jq -r .id <<<"$BODY")
check "the job reaches printing (the printer is slow)" wait_until 60 job_is "$P" .state printing
cid=$(job_field "$P" .cups_job_id)
out=$(api POST "/v1/jobs/$P/hold")
like "holding a printing job: 409" "$out" 'HTTP 409$'
# The cancel comes while a routine poll of the job is in flight: cupsd is
# frozen for a moment (a poll every 200 ms is then surely waiting on it),
# and the cancel must wait for the poll, not answer 409 busy.
kill -STOP "$(cat "$T/cups/run/cupsd.pid")"
sleep 0.5                   # (not a wait for a state: lets a poll start)
api DELETE "/v1/jobs/$P" > "$T/cancel-p.out" &
cp=$!
sleep 0.3
kill -CONT "$(cat "$T/cups/run/cupsd.pid")"
wait "$cp"
out=$(cat "$T/cancel-p.out")
like "cancel of a printing job, during a poll of it: 200" "$out" 'HTTP 200$'
like "... canceled" "$out" '"state":"canceled"'
like "... document shredded" "$out" '"document":"shredded"'
check "CUPS holds no document file of it" bash -c "! ls '$T/cups/spool' | grep -q '^d0*$cid-'"
check "CUPS logged the purge" grep -q "\[Job $cid\] Purged by" "$T/cups/log/error_log"
# An active job keeps a "canceled" history entry (job-name only) once its
# backend has stopped; it must no longer be pending or printing.
check "CUPS no longer prints the job once its backend stopped" \
    wait_until 40 bash -c "! lpstat -o test1 | grep -q 'test1-$cid '"
is "our spool is empty" "$(ls -A "$T/spool/jobs" | wc -l)" 0

# a queued job goes on to print after a release
upload "$T/a.pdf" "order=ORD-R&hold=true&copies=1"
R=$(jq -r .id <<<"$BODY")
out=$(api POST "/v1/jobs/$R/release")
like "release of a held job: 200" "$out" 'HTTP 200$'
check "the released job goes to the printer" wait_until 60 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$R | jq -e '.state == \"sent\" or .state == \"printing\"'"
out=$(api POST "/v1/jobs/$R/release")
like "release of a job that is not held: 409" "$out" 'HTTP 409$'

# a client that goes away while its cancel waits for CUPS: the daemon
# finishes the cancel and answers into the void (no use of a freed request)
upload "$T/b.pdf" "order=ORD-GONE"
G=$(jq -r .id <<<"$BODY")
check "a job reaches CUPS" wait_until 60 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$G | jq -e '.state == \"sent\" or .state == \"printing\"'"
curl -s -m 0.02 --unix-socket "$SOCK" -X DELETE "http://copees/v1/jobs/$G" > /dev/null 2>&1
check "the cancel of the vanished client still completes" wait_until 30 job_is "$G" .state canceled
check "copeesd still answers" curl -sf --unix-socket "$SOCK" http://copees/v1/health
check "copeesd is still running" kill -0 "$COPEESD_PID"

# the same through copeesctl, with its exit codes
upload "$T/a.pdf" "order=ORD-CLI&hold=true"
C=$(jq -r .id <<<"$BODY")
"$COPEESCTL" -S "$SOCK" hold "$C"; is "copeesctl hold: exit 0" "$?" 0
is "... the job is held" "$(job_field "$C" .state)" held
"$COPEESCTL" -S "$SOCK" release "$C"; is "copeesctl release: exit 0" "$?" 0
# (a name with a printer acts only once the job is at that printer: a
# loaded machine may not have routed it yet)
wait_until 30 job_is "$C" .printer atelier
"$COPEESCTL" -S "$SOCK" cancel "atelier-$C"; is "copeesctl cancel PRINTER-ID: exit 0" "$?" 0
is "... the job is canceled" "$(job_field "$C" .state)" canceled
err=$("$COPEESCTL" -S "$SOCK" cancel 424242 2>&1); rc=$?
is "copeesctl cancel of an unknown job: exit 3 (not found)" "$rc" 3
like "... with the daemon's message on stderr" "$err" '^copeesctl: .*424242'
"$COPEESCTL" -S "$SOCK" cancel "$C" 2>/dev/null; is "copeesctl cancel of a canceled job: exit 6 (conflict)" "$?" 6
"$COPEESCTL" -S "$T/nowhere.sock" -o 2>/dev/null; is "copeesctl without a daemon: exit 5 (unreachable)" "$?" 5

out=$(api DELETE /v1/jobs/424242)
like "cancel of an unknown job: 404" "$out" 'HTTP 404$'
out=$(api POST "/v1/jobs/$R/frobnicate")
like "an unknown action: 404" "$out" 'HTTP 404$'
out=$(api GET "/v1/jobs/$R/hold")
like "GET on an action: 405" "$out" 'HTTP 405$'

audit=$(sqlite3 "$T/state/copees.db" "SELECT detail || ' uid=' || uid FROM events WHERE job_id=$P AND type='state' ORDER BY id")
like "the cancel is audited with the caller's uid" "$audit" "printing -> canceled: canceled through the API uid=$(id -u)"

# A cancel while the job is being handed to CUPS: cupsd is frozen, so the
# hand-over (Create-Job) hangs.  The cancel must not shred the document
# CUPS is about to read: 409 busy.  Once cupsd answers, it cancels.
CUPSD_PID=$(cat "$T/cups/run/cupsd.pid")
upload "$T/a.pdf" "order=ORD-BUSY&hold=true"
BZ=$(jq -r .id <<<"$BODY")
kill -STOP "$CUPSD_PID"
api POST "/v1/jobs/$BZ/release" > /dev/null
dispatching() { [ "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM events WHERE job_id=$BZ AND type='dispatch'")" -ge 1 ]; }
check "the released job is being handed to a frozen cupsd" wait_until 30 dispatching
# (both at once: each is retried for 2 s before its 409, and cupsd must
# not stay frozen long enough for the hand-over to give up)
api DELETE "/v1/jobs/$BZ" > "$T/cancel.out" &
c1=$!
api POST "/v1/jobs/$BZ/hold" > "$T/hold.out" &
c2=$!
wait "$c1" "$c2"
out=$(cat "$T/cancel.out") hold_out=$(cat "$T/hold.out")
kill -CONT "$CUPSD_PID"
like "cancel during the hand-over: 409 busy" "$out" '"error":"busy".*HTTP 409$'
like "hold during the hand-over: 409 busy" "$hold_out" '"error":"busy".*HTTP 409$'
is "... the document is still there" "$(job_field "$BZ" .document)" present
cancel_ok() { api DELETE "/v1/jobs/$BZ" | tail -1 | grep -q 'HTTP 200'; }
check "once cupsd answers, the cancel goes through" wait_until 60 cancel_ok
is "... the job is canceled, its document shredded" "$(job_field "$BZ" '.state + " " + .document')" "canceled shredded"
check "... and CUPS holds nothing of it" wait_until 30 bash -c "[ \"\$(lpstat -h '$CUPS_SERVER' -o 2>/dev/null | wc -l)\" = 0 ]"
done_testing
