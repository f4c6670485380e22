#!/bin/bash
# Idempotent intake: a retry gets the first attempt's answer (200 with the
# same job, or the same 422), concurrent attempts make one job, a key
# reused for another ticket or body is a 409, and a client that goes away
# after sending its document still gets its job, found on retry.
. "$(dirname "$0")/lib.sh"

CUPS_SERVER=$T/no-cups.sock write_conf     # no CUPS: jobs wait queued
start_copeesd
"$MKPDF" --pages 2 "$T/a.pdf"
"$MKPDF" --pages 3 "$T/b.pdf"
printf 'not a pdf at all\n' > "$T/bad.pdf"

post() {   # post FILE QUERY [KEY]: sets STATUS and BODY
    local key=() out
    [ -n "${3:-}" ] && key=(-H "Idempotency-Key: $3")
    out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' "${key[@]}" \
          --data-binary @"$1" -w '\n%{http_code}' "http://copees/v1/jobs?$2")
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
count_order() {
    curl -s --unix-socket "$SOCK" "http://copees/v1/jobs?which=all&order=$1" | jq '.jobs | length'
}

# --- by Idempotency-Key
post "$T/a.pdf" "order=ORD-K&copies=2" key-0001
is "first attempt with a key: 201" "$STATUS" 201
ID1=$(jq -r .id <<<"$BODY")
post "$T/a.pdf" "order=ORD-K&copies=2" key-0001
is "the retry: 200" "$STATUS" 200
is "... with the same job" "$(jq -r .id <<<"$BODY")" "$ID1"
is "one job for the order" "$(count_order ORD-K)" 1
post "$T/a.pdf" "order=ORD-K&copies=3" key-0001
is "same key, another ticket: 409" "$STATUS" 409
is "... error idempotency-conflict" "$(jq -r .error <<<"$BODY")" idempotency-conflict
post "$T/b.pdf" "order=ORD-K&copies=2" key-0001
is "same key, another document: 409" "$STATUS" 409
is "still one job for the order" "$(count_order ORD-K)" 1
post "$T/a.pdf" "order=ORD-K&copies=2" key-0002
is "the same document under another key: a second job (201)" "$STATUS" 201
post "$T/a.pdf" "order=ORD-K" "bad key with spaces"
is "a malformed key: 400" "$STATUS" 400

# --- by (order, sha256)
post "$T/b.pdf" "order=ORD-S"
is "no key: 201" "$STATUS" 201
ID2=$(jq -r .id <<<"$BODY")
post "$T/b.pdf" "order=ORD-S"
is "same order and document: 200" "$STATUS" 200
is "... the same job" "$(jq -r .id <<<"$BODY")" "$ID2"
post "$T/b.pdf" "order=ORD-S&copies=5"
is "same order and document, other ticket: 409" "$STATUS" 409
post "$T/b.pdf" "order=ORD-S2"
is "same document, other order: a new job (201)" "$STATUS" 201

# --- a rejected document: the retry gets the same 422
post "$T/bad.pdf" "order=ORD-R" key-rej
is "a bad document: 422" "$STATUS" 422
R1=$(jq -c '[.job.id, .reasons]' <<<"$BODY")
post "$T/bad.pdf" "order=ORD-R" key-rej
is "its retry: 422 again" "$STATUS" 422
is "... with the same job and reasons" "$(jq -c '[.job.id, .reasons]' <<<"$BODY")" "$R1"

# --- concurrent attempts make one job, none answered before the verdict
"$MKPDF" --pages 300 "$T/big.pdf"
pids=()
for i in $(seq 8); do
    curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' -H 'Idempotency-Key: conc-1' \
         --data-binary @"$T/big.pdf" -o "$T/conc.$i" -w '%{http_code}\n' \
         'http://copees/v1/jobs?order=ORD-C' > "$T/conc.$i.status" &
    pids+=($!)
done
wait "${pids[@]}"     # not a bare wait: copeesd is a background job too
codes=$(cat "$T"/conc.*.status | sort | uniq -c | awk '{print $2 "x" $1}' | xargs)
like "8 concurrent attempts: one 201, the rest 200" "$codes" '^201x1 200x7$|^200x7 201x1$'
is "they all name one job" "$(jq -r .id "$T"/conc.? | sort -u | wc -l)" 1
is "no answer came before the verdict" "$(jq -r .state "$T"/conc.? | sort -u)" queued
is "one job for the order" "$(count_order ORD-C)" 1

# --- a client that goes away after sending its document
python3 - "$SOCK" "$T/b.pdf" <<'PY'
import socket, sys
data = open(sys.argv[2], "rb").read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"POST /v1/jobs?order=ORD-GONE HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n"
          b"Idempotency-Key: gone-1\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
s.close()
PY
check "the job of a vanished client is finished anyway" \
    wait_until 20 bash -c "curl -s --unix-socket '$SOCK' 'http://copees/v1/jobs?order=ORD-GONE' | jq -e '.jobs[0].state == \"queued\"'"
post "$T/b.pdf" "order=ORD-GONE" gone-1
is "its retry finds it: 200" "$STATUS" 200
is "one job for that order" "$(count_order ORD-GONE)" 1

# --- the defaults change between two attempts (a reload): a retry that
# gave neither media nor due is still the same print
post "$T/b.pdf" "order=ORD-DEF" def-1
is "an upload without media or due: 201" "$STATUS" 201
def_id=$(jq -r .id <<<"$BODY") def_media=$(jq -r .media <<<"$BODY")
is "... it got the default media" "$def_media" iso_a4_210x297mm
post "$T/b.pdf" "order=ORD-DEFK"
is "the same without a key: 201" "$STATUS" 201
defk_id=$(jq -r .id <<<"$BODY")
reloads=$(grep -c 'configuration re-read' "$T/copeesd.log")
DAEMON_EXTRA="default_media = na_letter_8.5x11in" CUPS_SERVER=$T/no-cups.sock write_conf
kill -HUP "$COPEESD_PID"
check "default_media changed by a reload" wait_until 10 bash -c \
    "[ \$(grep -c 'configuration re-read' '$T/copeesd.log') -gt $reloads ]"
post "$T/b.pdf" "order=ORD-DEF" def-1
is "its retry after the reload: 200, not a conflict" "$STATUS" 200
is "... the same job, with the media it was given" "$(jq -r '"\(.id) \(.media)"' <<<"$BODY")" \
    "$def_id iso_a4_210x297mm"
post "$T/b.pdf" "order=ORD-DEF&media=na_letter_8.5x11in" def-1
is "a retry that names another media is still a conflict: 409" "$STATUS" 409
post "$T/b.pdf" "order=ORD-DEFK"
is "its retry by (order, SHA-256) after the reload: 200" "$STATUS" 200
is "... the same job" "$(jq -r .id <<<"$BODY")" "$defk_id"
post "$T/b.pdf" "order=ORD-DEF2"
is "a new upload without media now gets the new default" "$STATUS $(jq -r .media <<<"$BODY")" \
    "201 na_letter_8.5x11in"

check "no stray file in the spool" bash -c "[ -z \"\$(ls -A '$T/spool/incoming')\" ]"
is "documents on disk = jobs with a document" "$(ls "$T/spool/jobs" | wc -l)" \
   "$(curl -s --unix-socket "$SOCK" 'http://copees/v1/jobs?which=all&limit=1000' | jq '[.jobs[] | select(.document == "present")] | length')"

# A retry's own copy whose shred fails (a test-build fault: once, as an
# I/O error would) is not left in the spool until the next start: it is
# tried again and goes.
if grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null; then
    stop_copeesd
    COPEES_TEST_FAULT=leftover-shred-fails start_copeesd
    ondisk=$(ls "$T/spool/jobs" | wc -l)
    post "$T/a.pdf" "order=ORD-LEFT" left-1
    is "a first attempt: 201" "$STATUS" 201
    post "$T/a.pdf" "order=ORD-LEFT" left-1
    is "its retry: 200, though its own copy could not be shredded" "$STATUS" 200
    like "... the failure is logged" "$(cat "$T/copeesd.log")" 'shredding a copy that no job names failed, will retry in 2 s'
    check "the copy is shredded on a later try" wait_until 30 grep -q 'leftover copy that no job names is shredded at last' "$T/copeesd.log"
    is "... one file more in the spool than before: the job's" "$(ls "$T/spool/jobs" | wc -l)" "$((ondisk + 1))"
    like "... counted as one failed and one done shred" "$(api GET /metrics)" 'copees_shreds_total\{result="failed"\} 1'

    # A retry waiting for the verdict of an attempt whose stored document
    # cannot be opened for its preflight (a test-build fault: the open
    # fails 3 s late) is answered then, not left waiting.
    stop_copeesd
    COPEES_TEST_FAULT=preflight-open-fails start_copeesd
    attempt() {   # attempt N: the upload with key open-1, answer in $T/open.N
        curl -s -m 30 --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
             -H 'Idempotency-Key: open-1' --data-binary @"$T/a.pdf" -o "$T/open.$1" \
             -w '%{http_code}' 'http://copees/v1/jobs?order=ORD-OPEN' > "$T/open.$1.status"
    }
    attempt 1 &
    first=$!
    check "the first attempt's job is in preflight" wait_until 10 bash -c \
        "curl -s --unix-socket '$SOCK' 'http://copees/v1/jobs?order=ORD-OPEN' | jq -e '.jobs[0].state == \"preflight\"'"
    attempt 2 &
    second=$!
    wait "$first" "$second"
    is "the first attempt: 500 (its document was lost)" "$(cat "$T/open.1.status")" 500
    is "the retry that waited for its verdict is answered: 422" "$(cat "$T/open.2.status")" 422
    is "... with the job, rejected for document-lost" \
        "$(jq -r '.job.state + " " + (.job.state_reasons | join(","))' "$T/open.2")" "rejected document-lost"
    check "... whose file is shredded as a rejected document's" \
        wait_until 10 job_is "$(jq -r .job.id "$T/open.2")" .document shredded
    same_count() {
        [ "$(ls "$T/spool/jobs" | wc -l)" = "$(curl -s --unix-socket "$SOCK" 'http://copees/v1/jobs?which=all&limit=1000' | jq '[.jobs[] | select(.document == "present")] | length')" ]
    }
    check "... leaving no file in the spool that no job keeps" wait_until 10 same_count
else
    ok "# SKIP built with --disable-test-knobs (no faults)"
fi
done_testing
