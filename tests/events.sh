#!/bin/bash
# GET /v1/events: Server-Sent Events of job and printer changes.  An upload
# shows up as `event: job` frames for its states (preflight ... printed ...
# document shredded); ids increase; Last-Event-ID replays only what came
# later, an unknown id gets `event: reset`; a subscriber that never reads
# is dropped while the daemon keeps serving the others with bounded
# memory; keep-alive comments flow; SIGTERM closes the streams.
. "$(dirname "$0")/lib.sh"

start_cups
COMPLAINT_WINDOW=2s write_conf
start_copeesd

URL=http://copees/v1/events
subscribe() {     # subscribe OUTFILE [curl args...]: stream in the background; sets SUB_PID
    local out=$1; shift
    curl -sN --unix-socket "$SOCK" -D "$out.head" "$@" "$URL" > "$out" 2>/dev/null &
    SUB_PID=$!
    wait_until 10 grep -q '^retry:' "$out"
}
# frames FILE: one line per event, "ID TYPE DATA"
frames() {
    awk '/^id: /{id=$2} /^event: /{ev=$2} /^data: /{sub(/^data: /, ""); print id, ev, $0}' "$1"
}
# job_states FILE JOBID: the job's states and document, one line per event
job_states() {
    frames "$1" | awk '$2 == "job"' | cut -d' ' -f3- |
        jq -r --argjson id "$2" 'select(.id == $id) | .state + " " + .document'
}
shredded_in() { job_states "$1" "$2" | grep -q ' shredded$'; }

subscribe "$T/ev1" || bail "the first subscriber did not connect"
SUB1=$SUB_PID
head1=$(tr -d '\r' < "$T/ev1.head")
like "the stream answers 200" "$head1" '^HTTP/1.1 200 '
like "... as text/event-stream" "$head1" $'\nContent-Type: text/event-stream'
like "... with Cache-Control: no-store" "$head1" $'\nCache-Control: no-store'
check "... and without Content-Length" bash -c "! grep -qi '^Content-Length' '$T/ev1.head'"

"$MKPDF" --pages 2 "$T/doc.pdf" || bail "mkpdf failed"
upload "$T/doc.pdf" "order=ORD-ev-1"
is "the upload answers 201" "$STATUS" 201
ID=$(jq -r .id <<<"$BODY")

check "the stream shows the document shredded after printing" wait_until 90 shredded_in "$T/ev1" "$ID"
states=$(job_states "$T/ev1" "$ID" | tr '\n' ',')
diag "job events seen: $states"
like "the first job event is its creation in preflight" "$states" '^preflight present,'
like "it shows queued, then sent, then printed" "$states" 'queued present,(.*,)?sent present,(.*,)?printed present,'
like "the last one shows the document shredded" "$states" 'printed shredded,$'
is "every job frame carries the whole job JSON" \
   "$(frames "$T/ev1" | awk '$2 == "job"' | cut -d' ' -f3- | jq -r 'has("sha256") and has("state_reasons") and has("retain_until")' | sort -u)" true
# A printer change: stopping the CUPS queue is published once, as the
# printer's JSON; starting it again is published too.
printer_state_is() {
    frames "$T/ev1" | awk '$2 == "printer"' | cut -d' ' -f3- |
        jq -r 'select(.name == "atelier") | .state' | tail -1 | grep -qx "$1"
}
cupsdisable test1 2>/dev/null || diag "cupsdisable failed"
check "stopping the CUPS queue publishes event: printer (stopped)" wait_until 10 printer_state_is stopped
cupsenable test1 2>/dev/null || diag "cupsenable failed"
check "starting it again publishes it idle" wait_until 10 printer_state_is idle
pj=$(frames "$T/ev1" | awk '$2 == "printer"' | tail -1 | cut -d' ' -f3-)
is "the printer frame is GET /v1/printers' element" "$(jq -c 'keys' <<<"$pj")" \
   "$(curl -s --unix-socket "$SOCK" http://copees/v1/printers | jq -c '.printers[0] | keys')"
nstop=$(frames "$T/ev1" | awk '$2 == "printer"' | cut -d' ' -f3- | jq -r .state | grep -c stopped)
is "a printer is published only on change (one stopped frame)" "$nstop" 1
ids=$(frames "$T/ev1" | cut -d' ' -f1)
n=$(wc -l <<<"$ids")
check "ids increase strictly ($n events)" bash -c "sort -n -c -u <<<'$ids'"

# Resume: reconnect with the id of the "queued" event; exactly the later
# events come again.
K=$(frames "$T/ev1" | awk '$2 == "job"' | while read -r id ev data; do
        s=$(jq -r --argjson id "$ID" 'select(.id == $id) | .state' <<<"$data")
        [ "$s" = queued ] && { echo "$id"; break; }
    done)
like "the queued event has an id" "$K" '^[0-9]+$'
subscribe "$T/ev2" -H "Last-Event-ID: $K" || bail "the resuming subscriber did not connect"
SUB2=$SUB_PID
check "the resumed stream reaches the shred" wait_until 10 shredded_in "$T/ev2" "$ID"
after=$(frames "$T/ev1" | awk -v k="$K" '$1 > k' | cut -d' ' -f1 | tr '\n' ' ')
got=$(frames "$T/ev2" | cut -d' ' -f1 | tr '\n' ' ')
is "the resumed stream replays exactly the events after Last-Event-ID" "$got" "$after"
kill "$SUB2" 2>/dev/null; wait "$SUB2" 2>/dev/null

subscribe "$T/ev3" -H "Last-Event-ID: 1" || bail "the third subscriber did not connect"
SUB3=$SUB_PID
check "an id older than the ring gets event: reset" wait_until 10 grep -q '^event: reset' "$T/ev3"
like "... telling why" "$(frames "$T/ev3" | awk '$2 == "reset"' | cut -d' ' -f3- | jq -r .reason)" 'too-old'
check "... and replays nothing" bash -c "! grep -q '^event: job' '$T/ev3'"
kill "$SUB3" 2>/dev/null; wait "$SUB3" 2>/dev/null
out=$(api POST /v1/events)
like "POST /v1/events gets 405" "$out" 'HTTP 405$'

# A subscriber that never reads, while many events are generated.
cat > "$T/stuck.py" <<'PY'
import os, socket, sys, time
sock, go = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sock)
s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: copees\r\n\r\n")
print("connected", flush=True)
end = time.time() + 180
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.1)
s.settimeout(10)
n = 0
try:
    while True:
        b = s.recv(65536)
        if not b:
            print("eof", n, flush=True)
            break
        n += len(b)
except socket.timeout:
    print("open", n, flush=True)
except OSError as e:
    print("eof", n, e, flush=True)
PY
python3 "$T/stuck.py" "$SOCK" "$T/go" > "$T/stuck.out" 2>&1 &
STUCK=$!
check "the stuck subscriber connects" wait_until 10 grep -q connected "$T/stuck.out"
upload "$T/doc.pdf" "order=ORD-ev-2&media=iso_a5_148x210mm"
is "an unroutable job is accepted (201)" "$STATUS" 201
JID=$(jq -r .id <<<"$BODY")
urls=()
for i in $(seq 1 1200); do
    urls+=("http://copees/v1/jobs/$JID/hold" "http://copees/v1/jobs/$JID/release")
done
start=$(date +%s)
curl -s --unix-socket "$SOCK" -X POST "${urls[@]}" > /dev/null
diag "2400 hold/release requests took $(( $(date +%s) - start )) s"
check "the stuck subscriber is dropped (logged)" wait_until 20 grep -q 'does not keep up' "$T/copeesd.log"
touch "$T/go"
check "the stuck subscriber's connection is closed" wait_until 30 grep -q '^eof' "$T/stuck.out"
wait "$STUCK" 2>/dev/null
diag "stuck subscriber: $(cat "$T/stuck.out" | tr '\n' ' ')"
last=$(frames "$T/ev1" | tail -1 | cut -d' ' -f3- | jq -r '.id')
check "the reading subscriber still gets every change" \
    wait_until 20 bash -c "tail -c 20000 '$T/ev1' | grep '^data: ' | tail -1 | grep -q '\"id\":$JID,.*\"state\":\"queued\"'"
diag "last event on the reading subscriber: job $last"
out=$(api GET /v1/health)
like "health still answers" "$out" 'HTTP 200$'
hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$COPEESD_PID/status")
diag "copeesd peak RSS: ${hwm} kB"
if [ "${COPEES_ASAN:-no}" = yes ]; then
    ok "# SKIP peak memory: ASan's quarantine keeps freed buffers (measured in normal builds)"
else
    check "copeesd's peak memory stayed under 64 MB" test "$hwm" -lt 65536
fi

check "a keep-alive comment arrives within 15 s" wait_until 20 grep -q '^: keep-alive' "$T/ev1"

stop_copeesd
is "copeesd exits cleanly on SIGTERM with a subscriber" "$?" 0
check "SIGTERM closes the stream (the subscriber's curl ends)" wait_until 10 bash -c "! kill -0 $SUB1"
done_testing
