#!/bin/bash
# Logging to the journal: when JOURNAL_STREAM names copeesd's stderr,
# copeesd sends structured entries (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
# COPEES_JOB, COPEES_PRINTER) to /run/systemd/journal/socket, which
# libsystemd always uses.  So the test runs in a private mount namespace
# (unshare -m) with a tmpfs over /run/systemd and a listener of its own
# bound at /run/systemd/journal/socket there (python3: native protocol
# datagrams, large ones passed as a memfd with SCM_RIGHTS).
#
# A whole run with debug lines on (prints, a reprint, a complaint, a
# delivery, an erasure, a rejected document, a retry, a held and canceled
# job, bad requests): a job's entries carry COPEES_JOB= and, once routed,
# COPEES_PRINTER=; no entry, field or raw datagram carries any of the
# order references used.
if [ "${COPEES_JOURNAL_NS:-}" != 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "1..0 # SKIP needs root for a private mount namespace (unshare -m) with its own journal socket"
        exit 0
    fi
    COPEES_JOURNAL_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

if [ -d /run/systemd ]; then
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd || bail "cannot mount a tmpfs on /run/systemd"
else
    mount -t tmpfs -o mode=0755 tmpfs /run || bail "cannot mount a tmpfs on /run"
fi
mkdir -p /run/systemd/journal

python3 - /run/systemd/journal/socket "$T/journal.jsonl" "$T/journal.raw" <<'PY' &
# A stand-in for journald's native socket: one JSON object per entry in
# argv[2], the raw datagrams (and memfd contents) appended to argv[3].
import array, json, os, socket, struct, sys

def fields(data):
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:                       # KEY\n<le64 size><bytes>\n
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        out[k.decode()] = v.decode("utf-8", "replace")
    return out

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as js, open(sys.argv[3], "ab", buffering=0) as raw:
    while True:
        data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % 4])
                for fd in fds:
                    data += os.pread(fd, os.fstat(fd).st_size, 0)
                    os.close(fd)
        raw.write(data + b"\n\x1e\n")
        try:
            js.write(json.dumps(fields(data)) + "\n")
        except Exception as e:      # a malformed datagram is a finding
            js.write(json.dumps({"_MALFORMED": repr(e)}) + "\n")
PY
LISTENER=$!
trap 'rc=$?; kill $LISTENER 2>/dev/null; (exit $rc); _cleanup' EXIT
wait_until 10 test -S /run/systemd/journal/socket || bail "the journal listener did not start"

start_cups
write_conf
: > "$T/copeesd.log"
# stderr is "the journal stream": its device and inode in JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/copeesd.log")
export JOURNAL_STREAM
start_copeesd
unset JOURNAL_STREAM

"$MKPDF" --pages 2 "$T/a.pdf" || bail "mkpdf failed"
"$MKPDF" --pages 1 --text "second" "$T/b.pdf" || bail "mkpdf failed"
printf 'not a pdf\n' > "$T/c.pdf"
ORDERS=(ORD-JRNL-ALPHA ORD-JRNL-BRAVO ORD-JRNL-CHARLIE ORD-JRNL-DELTA 'ORD-JRNL-ECHO!')

upload "$T/a.pdf" "order=ORD-JRNL-ALPHA&copies=1"
is "a PDF is accepted" "$STATUS" 201
A=$(jq -r .id <<<"$BODY")
is "... and the API does carry its order reference (the check below is not vacuous)" \
    "$(jq -r .order <<<"$BODY")" ORD-JRNL-ALPHA
check "it prints" wait_until 90 job_is "$A" .state printed
upload "$T/c.pdf" "order=ORD-JRNL-BRAVO"
is "a non-PDF is rejected" "$STATUS" 422
B=$(jq -r .job.id <<<"$BODY")
upload "$T/c.pdf" "order=ORD-JRNL-BRAVO"
is "... and its retry gets the same answer" "$STATUS" 422
upload "$T/b.pdf" "order=ORD-JRNL-CHARLIE&hold=true"
C=$(jq -r .id <<<"$BODY")
is "a held job" "$(jq -r .state <<<"$BODY")" held
is "... canceled" "$(api DELETE "/v1/jobs/$C" | tail -1)" "HTTP 200"
upload "$T/b.pdf" "order=ORD-JRNL-DELTA&copies=abc"
is "a bad field: 400" "$STATUS" 400
upload "$T/b.pdf" "order=ORD-JRNL-ECHO!"
is "a bad order reference: 400" "$STATUS" 400
is "a complaint is opened" "$(api POST "/v1/jobs/$A/complaint" | tail -1)" "HTTP 200"
is "... closed" "$(api DELETE "/v1/jobs/$A/complaint" | tail -1)" "HTTP 200"
is "a reprint" "$(api POST "/v1/jobs/$A/reprint" | tail -1)" "HTTP 200"
check "... prints" wait_until 90 job_is "$A" .reprints 1
check "... to the end" wait_until 90 job_is "$A" .state printed
is "delivered" "$(api POST "/v1/jobs/$A/delivered" | tail -1)" "HTTP 200"
is "an erasure request" "$(api POST "/v1/jobs/$A/shred" | tail -1)" "HTTP 200"
check "... shreds the document" wait_until 30 job_is "$A" .document shredded
"$COPEESCTL" -S "$SOCK" -W all -l -o > /dev/null
kill -HUP "$COPEESD_PID"
wait_until 20 bash -c "grep -q 'reload: configuration re-read' '$T/journal.jsonl'"
stop_copeesd
kill "$LISTENER" 2>/dev/null

J=$T/journal.jsonl
n=$(wc -l < "$J")
like "copeesd sent its lines to the journal socket" "$n" '^[1-9][0-9]+$'
is "... none of them malformed" "$(grep -c _MALFORMED "$J")" 0
is "... and wrote none to stderr" "$(grep -c '^copeesd: ' "$T/copeesd.log")" 0
is "every entry has MESSAGE, PRIORITY and SYSLOG_IDENTIFIER=copeesd" \
    "$(jq -s 'map(select(.MESSAGE and (.PRIORITY | test("^[0-7]$")) and .SYSLOG_IDENTIFIER == "copeesd")) | length' "$J")" "$n"
is "... and no CODE_FILE= (it would always be log.c)" "$(grep -c CODE_FILE "$J")" 0
check "debug lines are sent with PRIORITY=7" jq -se 'map(select(.PRIORITY == "7")) | length > 0' "$J"
like "job $A's entries carry COPEES_JOB=$A" \
    "$(jq -s --arg j "$A" 'map(select(.COPEES_JOB == $j)) | length' "$J")" '^[1-9][0-9]*$'
like "... and once routed COPEES_PRINTER=atelier" \
    "$(jq -s --arg j "$A" 'map(select(.COPEES_JOB == $j and .COPEES_PRINTER == "atelier")) | length' "$J")" \
    '^[1-9][0-9]*$'
check "... among them the dispatch (sent as CUPS job N)" jq -se --arg j "$A" \
    'map(select(.COPEES_JOB == $j and .COPEES_PRINTER == "atelier" and (.MESSAGE | test("sent as CUPS job")))) | length > 0' "$J"
is "every entry that names a job in its message carries that job's field" \
    "$(jq -s '[.[] | select(.MESSAGE | test("^\\[job [0-9]+")) |
              select((.MESSAGE | capture("^\\[job (?<id>[0-9]+)").id) != .COPEES_JOB)] | length' "$J")" 0
is "every entry with COPEES_PRINTER names it in its message" \
    "$(jq -s '[.[] | select(.COPEES_PRINTER) | . as $e | select(.MESSAGE | contains("printer " + $e.COPEES_PRINTER) | not)] | length' "$J")" 0
check "the rejected job's entries carry its id" jq -se --arg j "$B" \
    'map(select(.COPEES_JOB == $j and (.MESSAGE | test("not-a-pdf")))) | length > 0' "$J"
for o in "${ORDERS[@]}"; do
    is "no journal entry carries the order reference $o" "$(grep -cF -- "$o" "$J")" 0
done
is "no raw datagram carries any order reference" "$(grep -acF -e ORD-JRNL "$T/journal.raw")" 0
done_testing
