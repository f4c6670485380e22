#!/bin/bash
# Startup recovery when copeesd dies at each step of an upload's commit (a
# test-build fault point makes it exit there): after the file's fdatasync,
# after its rename into jobs/, after the fsync of jobs/, after the job row
# was written (before its batch commit and preflight), and after the
# commit but before the 201.  None of these uploads was acknowledged.
# After a restart: nothing unacknowledged lingers (no file in incoming/,
# every file in jobs/ belongs to a job row, no job left in preflight), the
# client's retry (same Idempotency-Key) ends with exactly one job for the
# order, its SHA-256 intact, and the database passes integrity_check.
# Last, a committed document also named in incoming/ (a rename cut short)
# keeps its data.
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs (no fault points)"; exit 0; }

CUPS_SERVER=$T/no-cups.sock write_conf     # no printing needed
"$MKPDF" --pages 2 --text "commit steps" "$T/a.pdf"
want=$(sha256sum < "$T/a.pdf" | cut -d' ' -f1)
db=$T/state/copees.db

for point in upload-after-fdatasync upload-after-rename upload-after-dirsync \
             upload-after-insert upload-before-answer; do
    COPEES_TEST_FAULT=$point "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    pid=$!
    wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health || bail "copeesd did not come up"
    code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
           -H 'Content-Type: application/pdf' -H "Idempotency-Key: rc-$point" \
           --data-binary @"$T/a.pdf" "http://copees/v1/jobs?order=ORD-$point")
    rc=0; wait "$pid" || rc=$?
    is "$point: copeesd died there" "$rc" 86
    is "$point: the client got no acknowledgment" "$code" 000
    start_copeesd
    check "$point: no job is left in preflight" wait_until 30 bash -c \
        "[ \"\$(curl -s --unix-socket '$SOCK' 'http://x/v1/jobs?state=preflight' | jq '.jobs | length')\" = 0 ]"
    is "$point: incoming/ is empty" "$(ls -A "$T/spool/incoming" | wc -l)" 0
    rows=$(sqlite3 "$db" "SELECT doc_name FROM jobs WHERE document_present = 1" | sort)
    files=$(ls -A "$T/spool/jobs" | sort)
    is "$point: every file in jobs/ belongs to a job with its document, and back" "$files" "$rows"
    upload "$T/a.pdf" "order=ORD-$point" -H "Idempotency-Key: rc-$point"
    like "$point: the retry is answered 201 or 200" "$STATUS" '^20[01]$'
    is "$point: one job for the order" "$(sqlite3 "$db" "SELECT count(*) FROM jobs WHERE order_ref = 'ORD-$point'")" 1
    is "$point: its SHA-256 is the document's" "$(jq -r .sha256 <<<"$BODY")" "$want"
    stop_copeesd
done
# A rename into jobs/ that a crash cut short on a filesystem that does
# not journal renames whole can leave the committed document under both
# names.  Start-up removes the name in incoming/ and keeps the data.
start_copeesd
upload "$T/a.pdf" "order=ORD-LINKED"
is "a committed document: 201" "$STATUS" 201
lid=$(jq -r .id <<<"$BODY")
stop_copeesd
doc=$(sqlite3 "$db" "SELECT doc_name FROM jobs WHERE id = $lid")
ln "$T/spool/jobs/$doc" "$T/spool/incoming/leftover"
start_copeesd
is "its second name in incoming/ is gone after a restart" "$(ls -A "$T/spool/incoming" | wc -l)" 0
is "... and the document keeps its data (SHA-256)" \
    "$(sha256sum < "$T/spool/jobs/$doc" | cut -d' ' -f1)" "$want"
like "... the log says so" "$(cat "$T/copeesd.log")" 'has another name; its name is removed, its data kept'
stop_copeesd
is "the database passes integrity_check" "$(sqlite3 "$db" 'PRAGMA integrity_check')" ok
done_testing
