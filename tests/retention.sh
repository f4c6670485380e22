#!/bin/bash
# Retention rules through the API, against a real cupsd + ippeveprinter,
# with windows of seconds: delivery moves the window; an open complaint
# holds the document past it and closing releases it; complaint_max ends
# even an open complaint; a reprint prints again and starts a new window;
# max_retention ends a job that never printed (canceled, retention-expired);
# an erasure request shreds at once (a queued job, a printed one, one CUPS
# is printing: taken back first); the refusals; shred receipts in metrics.
. "$(dirname "$0")/lib.sh"

# The printer's command: first as many seconds as $T/slow says, cut short
# as soon as it says 0 (so that a job left printing slowly does not hold
# up the printer for the next one), then the recorder.
cat > "$T/print-cmd" <<CMD
#!/bin/sh
slow() { cat '$T/slow' 2>/dev/null || echo 0; }
n=\$(( \$(slow) * 10 ))
while [ "\$n" -gt 0 ] && [ "\$(slow)" != 0 ]; do sleep 0.1; n=\$((n - 1)); done
exec '$T/cups/ipp-record.sh' "\$@"
CMD
chmod 0755 "$T/print-cmd"
IPPEVE_CMD=$T/print-cmd start_cups
W=3     # complaint_window; complaint_max = W + 2, max_retention = W + 4
COMPLAINT_WINDOW=${W}s RETENTION_EXTRA="complaint_max = $((W + 2))s
max_retention = $((W + 4))s" write_conf
start_copeesd
"$MKPDF" --pages 1 "$T/a.pdf"

printed_job() {   # printed_job ORDER: upload, wait until printed; prints the id
    upload "$T/a.pdf" "order=$1&copies=1"
    local id
    id=$(jq -r .id <<<"$BODY")
    wait_until 60 job_is "$id" .state printed || { diag "job $id: $(job_field "$id" .state)"; }
    echo "$id"
}
present() { job_is "$1" .document present; }
shredded() { job_is "$1" .document shredded; }
epoch() { date -d "$1" +%s; }

# --- delivered
D1=$(printed_job ORD-DLV)
r1=$(job_field "$D1" .retain_until)
p1=$(job_field "$D1" .printed_at)
is "retain_until = printed_at + complaint_window" "$(( $(epoch "$r1") - $(epoch "$p1") ))" "$W"
out=$(api POST "/v1/jobs/$D1/delivered")
like "delivered: 200" "$out" 'HTTP 200$'
dl=$(job_field "$D1" .delivered_at)
is "retain_until = delivered_at + window" \
    "$(( $(epoch "$(job_field "$D1" .retain_until)") - $(epoch "$dl") ))" "$W"
check "the document is shredded after the window" wait_until 30 shredded "$D1"

upload "$T/a.pdf" "order=ORD-DLV-H&hold=true"
H=$(jq -r .id <<<"$BODY")
like "delivered of a job not printed: 409" "$(api POST "/v1/jobs/$H/delivered")" 'HTTP 409$'
like "delivered with a time in the future: 400 naming at" \
    "$(api POST "/v1/jobs/$D1/delivered?at=2999-01-01T00:00:00Z")" '"field":"at"'

# --- a complaint holds the document past the window; closing releases it
C1=$(printed_job ORD-CMP)
out=$(api POST "/v1/jobs/$C1/complaint")
like "complaint open: 200" "$out" 'HTTP 200$'
like "... complaint is open" "$out" '"complaint":"open"'
like "... and state_reasons say so" "$out" 'complaint-open'
ret=$(epoch "$(job_field "$C1" .retain_until)")
pr=$(epoch "$(job_field "$C1" .printed_at)")
check "the document outlives the complaint window" \
    wait_until 20 bash -c "[ \$(date +%s) -ge $((pr + W + 1)) ]"
check "... still present after it" present "$C1"
out=$(api DELETE "/v1/jobs/$C1/complaint")
like "complaint close: 200" "$out" 'HTTP 200$'
check "closing a complaint past the window shreds the document" wait_until 10 shredded "$C1"
like "complaint on a shredded document: 409" "$(api POST "/v1/jobs/$C1/complaint")" 'HTTP 409$'
like "close without an open complaint: 409" "$(api DELETE "/v1/jobs/$C1/complaint")" 'HTTP 409$'
is "retain_until while the complaint was open was opened + complaint_max" \
    "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM events WHERE job_id=$C1 AND type='complaint-opened'")" 1
diag "complaint hold: retain_until was printed_at + $((ret - pr)) s"

# --- reprint
R=$(printed_job ORD-RPR)
n0=$(grep -c "IPP_JOB_NAME=copees-[0-9a-f]*-$R\( \|$\)" "$CUPS_TEST_DIR/ipp-jobs.log")
old=$(job_field "$R" .retain_until)
out=$(api POST "/v1/jobs/$R/reprint")
like "reprint: 200" "$out" 'HTTP 200$'
like "... queued again" "$out" '"state":"queued"'
like "... reprints counts it" "$out" '"reprints":1'
check "the reprint prints" wait_until 60 job_is "$R" .state printed
is "the printer received it a second time" \
    "$(grep -c "IPP_JOB_NAME=copees-[0-9a-f]*-$R\( \|$\)" "$CUPS_TEST_DIR/ipp-jobs.log")" $((n0 + 1))
new=$(job_field "$R" .retain_until)
check "the reprint starts a new window" test "$(epoch "$new")" -gt "$(epoch "$old")"
check "... and the document is shredded after it" wait_until 30 shredded "$R"
like "reprint of a shredded document: 409" "$(api POST "/v1/jobs/$R/reprint")" 'HTTP 409$'

# --- complaint_max ends an open complaint; max_retention ends a job that
# never prints (both waited for at once)
C2=$(printed_job ORD-CMAX)
api POST "/v1/jobs/$C2/complaint" > /dev/null
api POST /v1/printers/atelier/disable > /dev/null
upload "$T/a.pdf" "order=ORD-MAXR"
M=$(jq -r .id <<<"$BODY")
check "an open complaint is ended at complaint_max: shredded" wait_until 30 shredded "$C2"
is "... the complaint is closed" "$(job_field "$C2" .complaint)" closed
like "... with an event saying why" "$(sqlite3 "$T/state/copees.db" \
    "SELECT detail FROM events WHERE job_id=$C2 AND type='complaint-closed'")" 'complaint_max'
is "... the job stays printed" "$(job_field "$C2" .state)" printed
check "a job that never printed is canceled at max_retention" wait_until 30 job_is "$M" .state canceled
like "... with reason retention-expired" "$(job_field "$M" '.state_reasons | join(",")')" retention-expired
is "... and its document shredded" "$(job_field "$M" .document)" shredded

# --- erasure requests
upload "$T/a.pdf" "order=ORD-ERQ"
E1=$(jq -r .id <<<"$BODY")
out=$(api POST "/v1/jobs/$E1/shred")
like "erasure of a queued job: 200" "$out" 'HTTP 200$'
like "... canceled" "$out" '"state":"canceled"'
like "... reason erased" "$out" 'erased'
like "... shredded when answered" "$out" '"document":"shredded"'
like "a second erasure: 200, no change" "$(api POST "/v1/jobs/$E1/shred")" 'HTTP 200$'
api POST /v1/printers/atelier/enable > /dev/null
E2=$(printed_job ORD-ERP)
out=$(api POST "/v1/jobs/$E2/shred")
like "erasure of a printed job: 200, still printed" "$out" '"state":"printed"'
like "... shredded" "$out" '"document":"shredded"'
like "the receipt names the erasure" "$(sqlite3 "$T/state/copees.db" \
    "SELECT detail FROM events WHERE job_id=$E2 AND type='shred'")" '^erased: [0-9]+ bytes, 1 pass'
like "like the metrics" "$(api GET /metrics)" 'copees_shreds_total\{result="done"\} [1-9]'
like "no shred failed" "$(api GET /metrics)" 'copees_shreds_total\{result="failed"\} 0'
echo 20 > "$T/slow"
upload "$T/a.pdf" "order=ORD-ERC"
E3=$(jq -r .id <<<"$BODY")
check "a job reaches CUPS" wait_until 30 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$E3 | jq -e '.state == \"sent\" or .state == \"printing\"'"
cid=$(job_field "$E3" .cups_job_id)
out=$(api POST "/v1/jobs/$E3/shred")
like "erasure of a job in CUPS: 200, canceled, shredded" "$out" '"state":"canceled".*"document":"shredded"|"document":"shredded".*"state":"canceled"'
check "CUPS holds no document file of it" bash -c "! ls '$T/cups/spool' | grep -q '^d0*$cid-'"
like "erasure of an unknown job: 404" "$(api POST /v1/jobs/99999/shred)" 'HTTP 404$'
echo 0 > "$T/slow"

# --- the same through copeesctl (longer windows: no race with the clock)
stop_copeesd
COMPLAINT_WINDOW=60s RETENTION_EXTRA="complaint_max = 120s
max_retention = 300s" write_conf
start_copeesd
ctl() { "$COPEESCTL" -S "$SOCK" "$@"; }
K=$(printed_job ORD-CTL)
is "a job prints for the copeesctl checks" "$(job_field "$K" .state)" printed
ctl reprint "$K" > /dev/null; is "copeesctl reprint: exit 0" "$?" 0
check "... it prints again" wait_until 90 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$K | jq -e '.state == \"printed\" and .reprints == 1'"
ctl delivered "$K" > /dev/null; is "copeesctl delivered: exit 0" "$?" 0
check "... delivered_at is set" bash -c "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/$K | jq -r .delivered_at)\" != null ]"
ctl complaint open "$K" > /dev/null; is "copeesctl complaint open: exit 0" "$?" 0
is "... the complaint is open" "$(job_field "$K" .complaint)" open
like "copeesctl -l shows the complaint" "$(ctl -l -W all -o)" 'omplaint.*open'
ctl complaint close "$K" > /dev/null; is "copeesctl complaint close: exit 0" "$?" 0
ctl complaint close "$K" 2> "$T/err"; is "closing it again: exit 6 (conflict)" "$?" 6
ctl shred "$K" > /dev/null; is "copeesctl shred: exit 0" "$?" 0
is "... the document is shredded" "$(job_field "$K" .document)" shredded
ctl reprint "$K" 2> "$T/err"; is "copeesctl reprint of a shredded document: exit 6" "$?" 6
like "... saying why on stderr" "$(cat "$T/err")" 'shredded'
ctl delivered 99999 2> /dev/null; is "copeesctl delivered of an unknown job: exit 3" "$?" 3

# --- history_retention: old finished rows lose their order reference
stop_copeesd
COMPLAINT_WINDOW=60s RETENTION_EXTRA="complaint_max = 120s
max_retention = 300s
history_retention = 2s" write_conf
start_copeesd
check "order references leave finished jobs past history_retention" \
    wait_until 20 bash -c "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/$D1 | jq -r .order)\" = null ]"
is "... the row stays (accounting)" "$(job_field "$D1" .state)" printed
is "... its Idempotency-Key too" "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM jobs WHERE idem_key IS NOT NULL AND document_present = 0")" 0
like "... an audit event counts them" "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE type='history'")" \
    'order references removed from [0-9]+ finished jobs'
check "no order reference of those jobs is left in the database's rows" bash -c \
    "! sqlite3 '$T/state/copees.db' 'SELECT order_ref FROM jobs' | grep -q 'ORD-CMP'"
check "... nor in its files' bytes (database and WAL: secure_delete, checkpoint)" bash -c \
    "! grep -qa 'ORD-CMP' '$T/state/'copees.db*"
like "copeesctl still lists them" "$(ctl -W completed -o)" "-$D1 "
done_testing
