#!/bin/bash
# CUPS's own copies of our documents.  CUPS set to keep job files
# (PreserveJobFiles Yes): copeesd says so in its log and /v1/health, and
# still leaves no d-file of its jobs in CUPS's spool once they printed.
# A crash after a job printed but before its CUPS copy was purged: at the
# next start copeesd finds the finished job still in CUPS, purges it, and
# says so in /v1/health.
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs (no fault points)"; exit 0; }

CUPS_PRESERVE_JOB_FILES=Yes start_cups
write_conf
start_copeesd
"$MKPDF" --pages 1 "$T/a.pdf"
health() { curl -s --unix-socket "$SOCK" http://copees/v1/health; }
check "health warns that CUPS keeps job files" wait_until 20 bash -c \
    "curl -s --unix-socket '$SOCK' http://x/v1/health | grep -q 'PreserveJobFiles Yes'"
check "... and so does the log" grep -q 'CUPS keeps the files of finished jobs' "$T/copeesd.log"
upload "$T/a.pdf" "order=ORD-CF-1"
A=$(jq -r .id <<<"$BODY")
check "a job prints" wait_until 60 job_is "$A" .state printed
cid=$(job_field "$A" .cups_job_id)
check "CUPS keeps no d-file of it even so (purged)" wait_until 20 bash -c \
    "! ls '$T/cups/spool' | grep -q '^d0*$cid-'"
stop_copeesd

COPEES_TEST_FAULT=printed-before-purge "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
pid=$!
wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health || bail "copeesd did not come up"
upload "$T/a.pdf" "order=ORD-CF-2"
B=$(jq -r .id <<<"$BODY")
rc=0; wait "$pid" || rc=$?
is "copeesd died after recording the print, before the purge" "$rc" 86
is "the job is recorded printed" "$(sqlite3 "$T/state/copees.db" "SELECT state FROM jobs WHERE id=$B")" printed
bid=$(sqlite3 "$T/state/copees.db" "SELECT cups_job_id FROM jobs WHERE id=$B")
check "CUPS keeps its d-file meanwhile (PreserveJobFiles)" bash -c "ls '$T/cups/spool' | grep -q '^d0*$bid-'"
start_copeesd
check "after the restart, CUPS's copy is purged" wait_until 30 bash -c \
    "! ls '$T/cups/spool' | grep -q '^d0*$bid-'"
like "health says CUPS still held a finished job of ours" "$(health)" 'still held 1 finished job'
like "the log names the job" "$(grep 'still had finished job' "$T/copeesd.log")" "job $B"
done_testing
