#!/bin/bash
# Crash safety: copeesd is killed with SIGKILL at random moments during
# many concurrent uploads, several times, and restarted.  Afterwards every
# job that got a 201 (or 200) is there with its SHA-256 intact, every
# document on disk belongs to a job (no orphan, nothing in incoming/),
# every job claiming a document has it, and the database passes
# PRAGMA integrity_check.
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-6}
PER_ROUND=${CRASH_UPLOADS:-12}
CUPS_SERVER=$T/no-cups.sock write_conf
mkdir -p "$T/docs" "$T/out"
for i in $(seq 6); do
    "$MKPDF" --pages $((i * 20)) --text "crash test document $i" "$T/docs/$i.pdf"
done
# a few larger bodies, so that kills also land in the middle of uploads
for i in 7 8; do
    cp "$T/docs/1.pdf" "$T/docs/$i.pdf"
    head -c $((i * 1024 * 1024)) /dev/urandom >> "$T/docs/$i.pdf"   # trailing bytes after %%EOF
done

n=0
for r in $(seq "$ROUNDS"); do
    start_copeesd
    pids=()
    for k in $(seq "$PER_ROUND"); do
        n=$((n + 1))
        doc=$(( (n % 8) + 1 ))
        echo "$doc" > "$T/out/$n.doc"
        curl -s -m 60 --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
             -H "Idempotency-Key: crash-$n" --data-binary @"$T/docs/$doc.pdf" \
             -o "$T/out/$n.body" -w '%{http_code}' "http://copees/v1/jobs?order=ORD-CRASH-$n" \
             > "$T/out/$n.status" 2>/dev/null &
        pids+=($!)
    done
    # a random moment in the middle of the work; in every other round
    # only after one upload of the round was acknowledged (on a loaded
    # machine no upload may finish within the random moment, and the test
    # needs acknowledged jobs to check)
    if [ $((r % 2)) = 0 ]; then
        wait_until 30 bash -c "cat '$T'/out/{$((n - PER_ROUND + 1))..$n}.status 2>/dev/null | grep -qE '20[01]'"
        sleep "0.$(( RANDOM % 3 ))"
    else
        sleep "0.$(( RANDOM % 6 + 1 ))"
    fi
    kill -KILL "$COPEESD_PID"
    wait "$COPEESD_PID" 2>/dev/null
    COPEESD_PID=
    wait "${pids[@]}" 2>/dev/null
done
start_copeesd
check "jobs left in preflight get their verdict after the restart" wait_until 60 bash -c \
    "[ \"\$(curl -s --unix-socket '$SOCK' 'http://copees/v1/jobs?state=preflight' | jq '.jobs | length')\" = 0 ]"

acked=0 bad=0
for s in "$T"/out/*.status; do
    i=$(basename "$s" .status)
    code=$(cat "$s")
    case "$code" in 201|200) ;; *) continue ;; esac
    acked=$((acked + 1))
    id=$(jq -r .id "$T/out/$i.body")
    want=$(sha256sum < "$T/docs/$(cat "$T/out/$i.doc").pdf" | cut -d' ' -f1)
    got=$(job_field "$id" '.sha256 + " " + .state + " " + .document')
    [ "$got" = "$want queued present" ] || { bad=$((bad + 1)); diag "upload $i (job $id): $got"; }
done
diag "$acked acknowledged uploads out of $n, over $ROUNDS crashes"
check "some uploads were acknowledged" test "$acked" -gt 0
is "every acknowledged job is present, queued, with its SHA-256" "$bad" 0
is "nothing is left in incoming/" "$(ls -A "$T/spool/incoming" | wc -l)" 0
db=$T/state/copees.db
present=$(sqlite3 "$db" "SELECT count(*) FROM jobs WHERE document_present = 1")
is "every document on disk belongs to a job (no orphan)" "$(ls "$T/spool/jobs" | wc -l)" "$present"
lost=0
while read -r name sha; do
    [ "$(sha256sum < "$T/spool/jobs/$name" 2>/dev/null | cut -d' ' -f1)" = "$sha" ] || lost=$((lost + 1))
done < <(sqlite3 -separator ' ' "$db" "SELECT doc_name, sha256 FROM jobs WHERE document_present = 1")
is "every job's document is on disk and matches its SHA-256" "$lost" 0
is "no job is marked document-lost" "$(sqlite3 "$db" "SELECT count(*) FROM jobs WHERE reasons LIKE '%document-lost%'")" 0
is "PRAGMA integrity_check" "$(sqlite3 "$db" 'PRAGMA integrity_check')" ok
dups=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT order_ref FROM jobs GROUP BY order_ref HAVING count(*) > 1)")
is "no upload made two jobs" "$dups" 0
stop_copeesd
done_testing
