#!/bin/bash
# One PDF travels the whole path against a real private cupsd and a real
# ippeveprinter: upload (201) -> preflight -> CUPS -> printed -> shredded,
# with what arrived at the printer checked, and copeesctl's view of it.
. "$(dirname "$0")/lib.sh"

start_cups
COMPLAINT_WINDOW=3s write_conf
start_copeesd

"$MKPDF" --pages 3 "$T/doc.pdf" || bail "mkpdf failed"
upload "$T/doc.pdf" "order=ORD-e2e-0001&copies=2&media=iso_a4_210x297mm"
is "upload answers 201" "$STATUS" 201
ID=$(jq -r .id <<<"$BODY")
like "the job has an integer id" "$ID" '^[0-9]+$'
is "the 201 carries the preflight page count" "$(jq -r .preflight.pages <<<"$BODY")" 3
is "the 201 carries the job's sha256" "$(jq -r .sha256 <<<"$BODY")" "$(sha256sum < "$T/doc.pdf" | cut -d' ' -f1)"
is "the 201 carries the byte count" "$(jq -r .bytes <<<"$BODY")" "$(stat -c %s "$T/doc.pdf")"
like "the job is accepted (queued or already further)" "$(jq -r .state <<<"$BODY")" '^(queued|sent|printing|printed)$'
is "page sizes are reported in points" "$(jq -c '.preflight.page_sizes[0] | map(round)' <<<"$BODY")" "[595,842]"
is "the spool holds the document under a random name" \
   "$(ls "$T/spool/jobs" | grep -c -E '^[0-9a-f]{32}$')" 1
is "the spool file is private (0600)" "$(stat -c %a "$T/spool/jobs"/*)" 600

check "the job reaches printed" wait_until 90 job_is "$ID" .state printed
is "it went to the configured printer" "$(job_field "$ID" .printer)" atelier
like "it has a CUPS job id" "$(job_field "$ID" .cups_job_id)" '^[0-9]+$'
like "pages_printed is recorded" "$(job_field "$ID" .pages_printed)" '^[1-9][0-9]*$'
like "retain_until is set" "$(job_field "$ID" .retain_until)" '^20[0-9-]+T'

events=$(sqlite3 "$T/state/copees.db" "SELECT type || ':' || coalesce(detail,'') FROM events WHERE job_id=$ID ORDER BY id")
like "the audit log has preflight -> queued" "$events" 'state:preflight -> queued'
like "the audit log has queued -> sent" "$events" 'state:queued -> sent'
like "the audit log ends the print with -> printed" "$events" 'state:(sent|printing) -> printed'

# What arrived at the printer: one document, 3 pages, 2 copies asked.
check "the virtual printer received a document" wait_until 30 test -s "$T/cups/ipp-jobs.log"
recv=$(ls "$T/cups/ipp-spool"/*.pdf 2>/dev/null | head -1)
check "the received file is a PDF" test -n "$recv"
is "the received document has 3 pages" "$(pdfinfo "$recv" 2>/dev/null | awk '/^Pages:/{print $2}')" 3
like "copies=2 reached the printer" "$(cat "$T/cups/ipp-jobs.log")" 'COPIES=2'
job_name=$(grep -o 'copees-[0-9a-f]\{8\}-'"$ID" "$T/cups/log/"*_log 2>/dev/null | head -1)
like "CUPS knew the job only as copees-<instance>-<id>" "$job_name" "copees-[0-9a-f]{8}-$ID"
check "the order reference never reached CUPS" bash -c "! grep -rq ORD-e2e-0001 '$T/cups/spool' '$T/cups/log' '$T/cups/ipp-spool'"

# The complaint window (3 s here) passes: the document is shredded.
check "the document is shredded after the complaint window" wait_until 30 job_is "$ID" .document shredded
like "shredded_at is set" "$(job_field "$ID" .shredded_at)" '^20[0-9-]+T'
is "our spool holds no document" "$(ls -A "$T/spool/jobs" "$T/spool/incoming" | grep -c -E '^[0-9a-f]')" 0
check "CUPS holds no copy of the document (no d-file)" \
    wait_until 20 bash -c "! ls '$T/cups/spool' | grep -q '^d'"
check "the job is gone from CUPS's job list after the purge" \
    wait_until 20 bash -c "! lpstat -W all -o test1 | grep -q ."
is "state stays printed" "$(job_field "$ID" .state)" printed
like "the shred receipt is in the audit log" \
    "$(sqlite3 "$T/state/copees.db" "SELECT detail FROM events WHERE job_id=$ID AND type='shred'")" \
    '^complaint window over: [0-9]+ bytes, 1 pass, [0-9]+ ms$'

m=$(curl -s --unix-socket "$SOCK" http://copees/metrics)
like "/metrics: the dispatch latency was observed" "$m" 'copees_dispatch_latency_seconds_count 1'
like "/metrics: no document is kept" "$m" 'copees_documents_present 0'
like "/metrics: no document is overdue" "$m" 'copees_oldest_overdue_document_seconds 0'
like "/metrics: cups is up" "$m" 'copees_cups_up 1'

# copeesctl's lpstat-shaped view over the same socket
line=$("$COPEESCTL" -S "$SOCK" -W completed -o)
like "copeesctl -W completed -o shows printer-id and order" "$line" "^atelier-$ID +ORD-e2e-0001 +[0-9]+ +"
is "copeesctl -o shows no pending job" "$("$COPEESCTL" -S "$SOCK" -o)" ""
like "copeesctl -p shows the printer line" "$("$COPEESCTL" -S "$SOCK" -p)" '^printer atelier (is idle|now printing).*enabled since'
like "COPEES_SOCKET is honoured" "$(COPEES_SOCKET=$SOCK "$COPEESCTL" -W all -o)" "atelier-$ID"
check "the job list API pages" bash -c "curl -s --unix-socket '$SOCK' 'http://x/v1/jobs?which=all&limit=1' | jq -e '.jobs | length == 1'"

stop_copeesd; rc=$?
is "copeesd exits 0 on SIGTERM" "$rc" 0
check "copeesd removed its socket" test ! -e "$SOCK"
check "no log line carries the order reference" bash -c "! grep -q ORD-e2e-0001 '$T/copeesd.log'"
done_testing
