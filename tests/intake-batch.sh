#!/bin/bash
# Intake under concurrency: 16 clients, each on one keep-alive connection,
# upload at once (their rows and verdicts share batched commits); every
# upload is answered 201 and every job is kept and counted by /metrics.
# A large upload (staged: its chunks hashed and written by I/O workers
# while it arrives) lands byte for byte with the right SHA-256, also when
# it arrives slowly.  After a restart every acknowledged job is there.
. "$(dirname "$0")/lib.sh"

CLIENTS=16 PER=10
CUPS_SERVER=$T/no-cups.sock write_conf
start_copeesd
"$MKPDF" "$T/one.pdf" || bail "mkpdf failed"

metric() { curl -s --unix-socket "$SOCK" http://copees/metrics | awk -v k="$1" '$1 == k {print $2}'; }

for c in $(seq $CLIENTS); do
    curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
         --data-binary @"$T/one.pdf" "http://copees/v1/jobs?order=ORD-B-$c-[1-$PER]&hold=true" \
         > "$T/codes.$c" &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
N=$((CLIENTS * PER))
is "$N concurrent uploads are all answered 201" "$(cat "$T"/codes.* | grep -c '^201$')" "$N"
is "all $N jobs are held" \
   "$(curl -s --unix-socket "$SOCK" "http://copees/v1/jobs?state=held&limit=1000" | jq '.jobs | length')" "$N"
is "/metrics counts $N kept documents" "$(metric copees_documents_present)" "$N"
is "no store commit failed" "$(metric copees_store_commit_failures_total)" 0
writes=$(metric copees_store_writes_total) commits=$(metric copees_store_commits_total)
check "each job's row and verdict were written" test "$writes" -ge $((2 * N))
diag "$writes store writes in $commits commits"

# A valid PDF of 24 MiB: one page drawing a 16384 x 1536 grey image.
mkimagepdf "$T/big.pdf" 1536
size=$(stat -c %s "$T/big.pdf")
want=$(sha256sum < "$T/big.pdf" | cut -d' ' -f1)

# stored_copy SHA256: the one file in jobs/ with that content
stored_copy() { for f in "$T"/spool/jobs/*; do [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$1" ] && echo "$f"; done; }

for how in fast slow; do
    rate=()
    [ $how = slow ] && rate=(--limit-rate 8M)
    out=$(curl -s "${rate[@]}" --unix-socket "$SOCK" -H 'Content-Type: application/pdf' -X POST \
          -T "$T/big.pdf" -w '\n%{http_code}' "http://copees/v1/jobs?order=ORD-BIG-$how&hold=true")
    is "a $size-byte upload ($how) gets 201" "${out##*$'\n'}" 201
    body=${out%$'\n'*}
    is "... its SHA-256 is the document's ($how)" "$(jq -r .sha256 <<<"$body")" "$want"
    is "... its size is the document's ($how)" "$(jq -r .bytes <<<"$body")" "$size"
done
copies=$(stored_copy "$want")
is "both stored copies are byte for byte the document" "$(wc -l <<<"$copies")" 2
check "... and 0600" bash -c "[ \"\$(stat -c %a $(head -1 <<<"$copies"))\" = 600 ]"

stop_copeesd
start_copeesd
is "after a restart all $((N + 2)) jobs are there" \
   "$(curl -s --unix-socket "$SOCK" "http://copees/v1/jobs?state=held&limit=1000" | jq '.jobs | length')" \
   "$((N + 2))"
is "... with their documents" "$(metric copees_documents_present)" "$((N + 2))"
is "... and nothing is left in incoming/" "$(find "$T/spool/incoming" -type f | wc -l)" 0
done_testing
