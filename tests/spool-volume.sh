#!/bin/bash
# A spool that is not this database's is left alone.  spool_dir/.instance
# holds the database's instance id; copeesd refuses to start (exit 1,
# nothing shredded, no job marked lost, no false shred receipt) on the
# empty mount point of a volume that is not mounted and on a spool marked
# for another database (a new one, as when state_dir was lost).  With the
# volume back it starts and shreds what is due, for real.  A spool without
# the mark that holds the documents (from before the mark) is claimed.
# Once a database has marked a spool, a missing mark stops the start even
# when it keeps no document; -C claims a new spool on purpose.  A
# document missing from the right spool is reported "lost", not
# "shredded".  No CUPS: the jobs are held.
. "$(dirname "$0")/lib.sh"

DB=$T/state/copees.db
write_conf
"$MKPDF" --pages 1 --text "volume A" "$T/a.pdf"
"$MKPDF" --pages 1 --text "volume B" "$T/b.pdf"
start_copeesd
upload "$T/a.pdf" "order=ORD-VOL-1&hold=true"
A=$(jq -r .id <<<"$BODY")
upload "$T/b.pdf" "order=ORD-VOL-2&hold=true"
B=$(jq -r .id <<<"$BODY")
is "two held jobs" "$(job_field "$A" .state) $(job_field "$B" .state)" "held held"
INST=$(sqlite3 "$DB" "SELECT value FROM meta WHERE key = 'instance'")
is "the spool carries the database's instance id" "$(cat "$T/spool/.instance" 2>&1)" "$INST"
stop_copeesd

# B's retention ended while the daemon was stopped (created 4 days ago,
# past max_retention): the next start is due to shred it.
past=$(( $(date +%s) - 4 * 86400 ))
sqlite3 "$DB" "UPDATE jobs SET created_at = $past, retain_until = $(( past + 3 * 86400 )) WHERE id = $B"
files() { (cd "$1/jobs" && sha256sum -- * 2>/dev/null | sort); }
rows() { sqlite3 "$DB" "SELECT id, state, reasons, document_present, ifnull(shredded_at, '-') FROM jobs ORDER BY id"; }
events() { sqlite3 "$DB" "SELECT count(*) FROM events"; }
FILES=$(files "$T/spool")
ROWS=$(rows)
EVENTS=$(events)
is "two documents in the spool" "$(wc -l <<<"$FILES")" 2

# refused() WHAT REGEX: copeesd exits 1 at once, saying REGEX; it did not
# serve, and the database is as it was
refused() {
    local rc=0 before
    before=$(wc -l < "$T/copeesd.log")
    timeout 20 "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 || rc=$?
    is "$1: copeesd refuses to start (exit 1)" "$rc" 1
    like "$1: it says why" "$(tail -n +"$((before + 1))" "$T/copeesd.log")" "$2"
    is "$1: no job row changed" "$(rows)" "$ROWS"
    is "$1: no event was recorded (no receipt, no document-lost)" "$(events)" "$EVENTS"
}

# 1. The spool's volume is not mounted: spool_dir is an empty directory.
#    The database has marked a spool, so the missing mark is enough.
is "the database records that it marked its spool" \
    "$(sqlite3 "$DB" "SELECT value FROM meta WHERE key = 'spool_marked'")" 1
mv "$T/spool" "$T/volume"
mkdir -m 700 "$T/spool"
refused "an unmounted volume" "has lost its instance mark .*is its volume mounted.* -C"
# ... and for a database from before that record: none of the documents
# still kept (A; B is due) is there
sqlite3 "$DB" "DELETE FROM meta WHERE key = 'spool_marked'"
refused "an unmounted volume, older database" "none of the 1 document the database still keeps.*is its volume mounted"
is "... the volume's documents are untouched" "$(files "$T/volume")" "$FILES"
is "... no file (no mark) was written to the empty mount point" "$(find "$T/spool" -type f)" ""
rm -rf "$T/spool"
mv "$T/volume" "$T/spool"

# 2. The database is another one (state_dir lost): a new database.
mv "$T/state" "$T/state.kept"
refused_other() {
    local rc=0 before
    before=$(wc -l < "$T/copeesd.log")
    timeout 20 "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 || rc=$?
    is "a new database: copeesd refuses to start (exit 1)" "$rc" 1
    like "... it says whose the spool is" "$(tail -n +"$((before + 1))" "$T/copeesd.log")" \
        "spool_dir .* belongs to instance $INST but the database .* is instance [0-9a-f]{8}"
}
refused_other
is "... the spool's documents are untouched" "$(files "$T/spool")" "$FILES"
is "... and its mark too" "$(cat "$T/spool/.instance")" "$INST"
rm -rf "$T/state"
mv "$T/state.kept" "$T/state"

# 3. The right volume and database: B is shredded (due), A kept.
start_copeesd
check "the due document is shredded at the start" wait_until 20 job_is "$B" .document shredded
like "... with a real shred receipt" "$(sqlite3 "$DB" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $B AND type = 'shred'")" 'pass'
unlike "... not a recorded-at-startup one" "$(sqlite3 "$DB" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $B")" 'completed at startup'
is "the other job is held, its document present" "$(job_field "$A" '.state + " " + .document')" "held present"
is "... and intact" "$(files "$T/spool")" "$(grep -F "$(job_field "$A" .sha256)" <<<"$FILES")"
stop_copeesd

is "a start on the marked spool records it in an older database" \
    "$(sqlite3 "$DB" "SELECT value FROM meta WHERE key = 'spool_marked'")" 1

# 4. A spool from before the mark: claimed, as it holds A's document.
rm "$T/spool/.instance"
sqlite3 "$DB" "DELETE FROM meta WHERE key = 'spool_marked'"
start_copeesd
is "a spool without a mark that holds the documents is claimed" "$(cat "$T/spool/.instance" 2>&1)" "$INST"
like "... and the start says so" "$(cat "$T/copeesd.log")" "spool_dir .* marked as instance $INST \\(1 of 1 documents found\\)"
is "... the job is untouched" "$(job_field "$A" '.state + " " + .document')" "held present"
stop_copeesd

# 5. A document missing from the right spool is lost, not shredded.
rm -f "$T/spool/jobs/$(sqlite3 "$DB" "SELECT doc_name FROM jobs WHERE id = $A")"
start_copeesd
is "a missing document is reported lost" "$(job_field "$A" '.document + " " + (.shredded_at | tostring)')" "lost null"
like "... with the reason document-lost" "$(job_field "$A" '.state_reasons | join(",")')" 'document-lost'
like "copeesctl -l -o says so" "$("$COPEESCTL" -S "$SOCK" -l -o 2>&1)" $'\tDocument: lost \\(missing from the spool\\)'
stop_copeesd

# 6. The database keeps no document now (A is lost), and the volume is
#    not mounted: refused all the same, as the mark is missing.  -C, the
#    admin's decision, hands copeesd the new spool.
ROWS=$(rows)
EVENTS=$(events)
mv "$T/spool" "$T/volume"
mkdir -m 700 "$T/spool"
refused "no document kept, unmounted volume" "has lost its instance mark"
is "... no file (no mark) was written to the empty mount point" "$(find "$T/spool" -type f)" ""
COPEESD_DEBUG="-d -C" start_copeesd
is "-C claims the new spool" "$(cat "$T/spool/.instance" 2>&1)" "$INST"
like "... and the start says so" "$(cat "$T/copeesd.log")" "marked as instance $INST on request \\(-C\\)"
stop_copeesd
rm -rf "$T/volume"

# 7. A database from before the mark whose only kept document was due:
#    its shred was cut short after the rename (the file is gone).  That
#    absence proves nothing, so the spool is claimed and the shred is
#    recorded as done.
start_copeesd
upload "$T/a.pdf" "order=ORD-VOL-3&hold=true"
C=$(jq -r .id <<<"$BODY")
is "a third held job" "$(job_field "$C" '.state + " " + .document')" "held present"
stop_copeesd
sqlite3 "$DB" "UPDATE jobs SET retain_until = $(( $(date +%s) - 60 )) WHERE id = $C;
               DELETE FROM meta WHERE key = 'spool_marked'"
rm -f "$T/spool/.instance" "$T/spool/jobs/$(sqlite3 "$DB" "SELECT doc_name FROM jobs WHERE id = $C")"
start_copeesd
is "an older database whose documents are all due claims its spool" "$(cat "$T/spool/.instance" 2>&1)" "$INST"
is "... the interrupted shred is recorded as done" "$(job_field "$C" .document)" shredded
like "... saying so" "$(sqlite3 "$DB" "SELECT group_concat(detail, '|') FROM events WHERE job_id = $C AND type = 'shred'")" 'completed at startup'
stop_copeesd

# 8. A first start on an empty spool and a new database is fine.
rm -rf "$T/spool" "$T/state"
start_copeesd
is "a first start marks the new spool" "$(cat "$T/spool/.instance" 2>&1)" \
    "$(sqlite3 "$DB" "SELECT value FROM meta WHERE key = 'instance'")"
stop_copeesd

done_testing
