#!/bin/bash
# bench/retention.sh - retention figures (not a test: it prints, it asserts
# nothing).  Run from a built tree:  bash bench/retention.sh [N_DOCS]
#
#  1. shred throughput of copeesd's procedure vs `shred -n1 -u` on the same
#     files in the same run, 1 MB / 100 MB / 1 GB (bench/shredcost, built
#     by `make check`), in a directory on the disk the spool uses;
#  2. startup with N (default 100,000) printed documents kept, each with
#     its retain_until: the time from exec to READY (GET /v1/health
#     answering "ready": true), which includes the spool check of every
#     file and arming the retention timer on the nearest deadline.  The
#     rows are copies of one real job made by the daemon (sqlite3), the
#     files hard links of its document.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir=$here top_builddir=${top_builddir:-$here}
N=${1:-100000}
# shellcheck source=../tests/lib.sh
. "$here/tests/lib.sh" >/dev/null
trap '_cleanup >/dev/null 2>&1' EXIT

echo "== 1. shred throughput (median of 3; 1 GB: of 2)"
mkdir -p "$T/shred"
"$top_builddir/bench/shredcost" "$T/shred" 3

echo "== 2. startup with $N documents kept"
start_cups
COMPLAINT_WINDOW=12h write_conf
start_copeesd
"$MKPDF" --pages 1 "$T/a.pdf"
upload "$T/a.pdf" "order=BENCH-RET"
id=$(jq -r .id <<<"$BODY")
wait_until 60 job_is "$id" .state printed || { echo "the template job did not print"; exit 1; }
stop_copeesd
doc=$(sqlite3 "$T/state/copees.db" "SELECT doc_name FROM jobs WHERE id=$id")
t0=$(date +%s.%N)
sqlite3 "$T/state/copees.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N - 1)
INSERT INTO jobs (order_ref, idem_key, state, reasons, pages, pages_printed, copies, sides, color,
                  media, due, priority, hold, printer, cups_job_id, reprints, bytes, sha256,
                  preflight, created_at, printed_at, delivered_at, retain_until, shredded_at,
                  complaint, complaint_opened_at, document_present, doc_name)
SELECT 'BENCH-' || i, NULL, state, reasons, pages, pages_printed, copies, sides, color, media, due,
       priority, hold, printer, cups_job_id, reprints, bytes, sha256, preflight, created_at,
       printed_at, delivered_at, retain_until + (i % 43200), shredded_at, complaint,
       complaint_opened_at, 1, printf('%s%07d', substr(doc_name, 1, 25), i)
FROM jobs, n WHERE jobs.id = $id;
SQL
python3 - "$T/spool/jobs" "$doc" "$N" <<'PY'
import os, sys
d, doc, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import shutil
src = os.path.join(d, doc)
for i in range(1, n):
    if i % 60000 == 0:          # ext4 allows 65,000 links per inode
        fresh = os.path.join(d, "%s%07d" % (doc[:25], i))
        shutil.copyfile(src, fresh)
        src = fresh
        continue
    os.link(src, os.path.join(d, "%s%07d" % (doc[:25], i)))
PY
t1=$(date +%s.%N)
echo "setup: $(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM jobs WHERE document_present=1") documents kept, $(ls "$T/spool/jobs" | wc -l) files ($(echo "$t1 - $t0" | bc) s to make)"
for round in 1 2 3; do
    t0=$(date +%s.%N)
    "$COPEESD" -f -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    COPEESD_PID=$!
    until curl -s --unix-socket "$SOCK" http://copees/v1/health 2>/dev/null | grep -q '"ready":true'; do
        sleep 0.01
    done
    t1=$(date +%s.%N)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$COPEESD_PID/status")
    echo "round $round: READY after $(echo "($t1 - $t0) * 1000 / 1" | bc) ms with $N deadlines; peak RSS $((rss / 1024)) MB"
    stop_copeesd
done
left=$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM jobs WHERE document_present=1")
echo "documents still kept after the restarts: $left (none was due: all retain_until are ahead)"
