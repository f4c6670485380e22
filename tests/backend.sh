#!/bin/bash
# The copees CUPS backend and POST /v1/backend/events, against a real
# private cupsd, ippeveprinter and copeesd.
#
# Part 1 runs the built backend directly, with the argv and environment
# cupsd would give it, wrapping a stand-in real backend ("fake", in a
# private ServerBin) while copeesd has a job printing (ippeveprinter holds
# it): lines passed through, exit codes passed through, reports recorded,
# SIGTERM forwarded, a stopped or stuck copeesd never failing the print,
# a URI's user:password kept out of the real backend's argv[0].
# Part 2 checks the route's validation and roles.  Part 3 has cupsd itself
# run the backend (as lp) for a queue copees:ipp://... and checks the job
# printed at ippeveprinter and copeesd recorded the backend's reports.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || bail "this test runs programs as lp and other users: run it as root"
BACKEND=$top_builddir/backend/copees
[ -x "$BACKEND" ] || bail "no backend at $BACKEND"

# ------------------------------------------------------------ the man page
man_warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
    man --warnings -E UTF-8 -l -Tutf8 -Z "$top_srcdir/docs/copees.7" 2>&1 >/dev/null)
is "copees(7) formats without warnings" "$man_warnings" ""
check "copees(7) documents the socket and the event body" \
    bash -c "grep -q 'COPEES_SOCKET' '$top_srcdir/docs/copees.7' && grep -q 'exit_status' '$top_srcdir/docs/copees.7'"

# ------------------------------------------------------------ a ServerBin
# cupsd's ServerBin: links to everything of the real one, and a backend/
# directory with links to the real backends, the built copees (0755, so
# cupsd runs it as lp) and two stand-ins.
SB=$T/serverbin
mkdir -p "$SB/backend"
for f in /usr/lib/cups/*; do
    [ "$(basename "$f")" = backend ] || ln -s "$f" "$SB/"
done
for f in /usr/lib/cups/backend/*; do
    ln -s "$f" "$SB/backend/"
done
install -m 0755 "$BACKEND" "$SB/backend/copees"
cat > "$SB/backend/fake" <<'EOF'
#!/bin/bash
# A stand-in real backend: CUPS status lines on stderr, then exit FAKE_EXIT.
# FAKE_WAIT=1: wait for SIGTERM (at most 60 s).  FAKE_PAGES=N: N PAGE lines,
# FAKE_PAGE_DELAY seconds apart.  FAKE_LONG=1: one 10000-byte line.
echo "DEBUG: fake: DEVICE_URI=$DEVICE_URI args=$*" >&2
echo "STATE: +connecting-to-device" >&2
echo "PAGE: 1 1" >&2
echo "PAGE: 2 3" >&2
printf 'INFO: a line written ' >&2
printf 'in two pieces\n' >&2
echo "ATTR: job-impressions-completed=7 marker-levels=50" >&2
echo "PAGE: total 6" >&2
echo "STATE: -connecting-to-device" >&2
if [ -n "${FAKE_LONG:-}" ]; then
    printf 'DEBUG: long %s\n' "$(head -c 10000 /dev/zero | tr '\0' x)" >&2
fi
if [ -n "${FAKE_EDGE:-}" ]; then
    # once the lines above are read: in one write, a line that leaves 7
    # bytes of copees's 4 KiB buffer, then a PAGE line across its edge
    sleep 0.5
    printf 'DEBUG: %s\nPAGE: total %s\n' "$(head -c 4081 /dev/zero | tr '\0' y)" "$FAKE_EDGE" >&2
fi
for ((i = 1; i <= ${FAKE_PAGES:-0}; i++)); do
    echo "PAGE: $i 1" >&2
    [ -n "${FAKE_PAGE_DELAY:-}" ] && sleep "$FAKE_PAGE_DELAY"
done
if [ -n "${FAKE_WAIT:-}" ]; then
    trap 'echo "DEBUG: fake: got SIGTERM" >&2; echo term > "$FAKE_MARK"; exit 0' TERM
    echo waiting > "$FAKE_MARK"
    for ((i = 0; i < 600; i++)); do sleep 0.1; done
    exit 1
fi
exit "${FAKE_EXIT:-0}"
EOF
chmod 0755 "$SB/backend/fake"
install -m 0755 "$top_builddir/tests/argv0" "$SB/backend/argv0"
cp "$SB/backend/fake" "$SB/backend/rootonly"
chmod 0700 "$SB/backend/rootonly"     # like usb or lpd: CUPS runs it as root

# ippeveprinter holds each job while $T/hold exists, then tells it the
# impressions printed (as a printer would) and records the job.
cat > "$T/hold.sh" <<EOF
#!/bin/bash
for ((i = 0; i < 1200; i++)); do [ -e "$T/hold" ] || break; sleep 0.1; done
echo "ATTR: job-impressions-completed=\$(pdfinfo "\$1" 2>/dev/null | awk '/^Pages:/ { print \$2 }')" >&2
exec "$T/cups/ipp-record.sh" "\$1"
EOF
chmod 0755 "$T/hold.sh"

IPPEVE_CMD=$T/hold.sh CUPS_FILES_EXTRA=$'ServerBin '"$SB"$'\nSetEnv COPEES_SOCKET '"$SOCK" start_cups
DAEMON_EXTRA=$'socket_mode = 0666\nsubmit_group = daemon' write_conf
start_copeesd
DB=$T/state/copees.db
"$MKPDF" --pages 2 "$T/doc.pdf" || bail "mkpdf failed"
chmod 0644 "$T/doc.pdf"

# ------------------------------------------------------------ part 1: direct
out=$("$BACKEND"); rc=$?
is "no arguments: the discovery line" "$out" 'network copees "Unknown" "copees wrapper backend"'
is "... exit 0" "$rc" 0
out=$("$BACKEND" 1 2 3 2>&1); rc=$?
like "three arguments: usage" "$out" '^Usage: .* job-id user title copies options \[file\]'
is "... exit 1" "$rc" 1

# A job printing: ippeveprinter holds it.
touch "$T/hold"
upload "$T/doc.pdf" "order=ORD-BE-1"
is "upload answers 201" "$STATUS" 201
ID=$(jq -r .id <<<"$BODY")
check "the job is printing (held at the printer)" wait_until 90 job_is "$ID" .state printing
CUPS_ID=$(job_field "$ID" .cups_job_id)
INST=$(sqlite3 "$DB" "SELECT value FROM meta WHERE key='instance'")
JOB_NAME=copees-$INST-$ID
like "the job has a CUPS job id" "$CUPS_ID" '^[1-9][0-9]*$'

# run_backend [NAME=VALUE...]: run copees as cupsd would (cleared
# environment, CUPS_SERVERBIN, DEVICE_URI, argv) on the printing job;
# stderr in $T/be.err; sets RC.
run_backend() {
    env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:fake://printer.example:631/q" \
        COPEES_SOCKET="$SOCK" "$@" \
        "$BACKEND" "$CUPS_ID" copees "${TITLE:-$JOB_NAME}" 1 "" "$T/doc.pdf" > "$T/be.out" 2> "$T/be.err"
    RC=$?
}
events() {    # events TYPE: count of the job's events of that type
    sqlite3 "$DB" "SELECT count(*) FROM events WHERE job_id=$ID AND type='$1'"
}
last_detail() {   # last_detail TYPE
    sqlite3 "$DB" "SELECT detail FROM events WHERE job_id=$ID AND type='$1' ORDER BY id DESC LIMIT 1"
}
last_uid() {      # last_uid TYPE
    sqlite3 "$DB" "SELECT uid FROM events WHERE job_id=$ID AND type='$1' ORDER BY id DESC LIMIT 1"
}

run_backend FAKE_EXIT=0
is "wrapping fake: exit 0 passed through" "$RC" 0
expected="DEBUG: fake: DEVICE_URI=fake://printer.example:631/q args=$CUPS_ID copees $JOB_NAME 1  $T/doc.pdf
STATE: +connecting-to-device
PAGE: 1 1
PAGE: 2 3
INFO: a line written in two pieces
ATTR: job-impressions-completed=7 marker-levels=50
PAGE: total 6
STATE: -connecting-to-device"
is "the real backend's lines reach stderr unchanged and in order (inner URI, same argv)" \
   "$(grep -v '^DEBUG: copees:' "$T/be.err")" "$expected"
check "nothing but its own DEBUG lines added" bash -c "! grep -v -e '^DEBUG: copees:' -e '^DEBUG: fake:' \
    -e '^STATE:' -e '^PAGE:' -e '^INFO:' -e '^ATTR:' '$T/be.err'"
is "nothing on stdout" "$(cat "$T/be.out")" ""
is "pages_printed is the largest count reported (ATTR impressions 7)" "$(job_field "$ID" .pages_printed)" 7
like "a page report was recorded" "$(last_detail backend-page)" "^CUPS job $CUPS_ID: [0-9]+ pages printed$"
like "the exit report was recorded" "$(last_detail backend-exit)" \
     "^CUPS job $CUPS_ID: the backend exited with 0 \\(CUPS_BACKEND_OK: sent\\), 7 pages$"
is "the job is still printing (CUPS decides the state)" "$(job_field "$ID" .state)" printing

run_backend FAKE_EXIT=6
is "exit 6 (retry) passed through" "$RC" 6
like "the job gets the reason backend-failed" "$(job_field "$ID" '.state_reasons | join(",")')" 'backend-failed'
like "... and the event says what CUPS makes of 6" "$(last_detail backend-exit)" \
     'exited with 6 \(CUPS_BACKEND_RETRY: CUPS retries the job later\)'
run_backend FAKE_EXIT=0
is "a later exit 0 removes backend-failed" "$(job_field "$ID" '.state_reasons | map(select(. == "backend-failed")) | length')" 0
run_backend FAKE_EXIT=42
is "an exit code that is not CUPS's becomes 1 (failed)" "$RC" 1
like "... reported as 1 with the real code in the message" "$(last_detail backend-exit)" \
     'exited with 1 \(CUPS_BACKEND_FAILED.*: the fake backend exited with 42$'

# 60 more PAGE lines over about 3 s: a report each half second at most.
n=$(events backend-page)
t0=$(date +%s%N)
run_backend FAKE_PAGES=60 FAKE_PAGE_DELAY=0.05
t1=$(date +%s%N)
is "60 PAGE lines over 3 s: exit 0" "$RC" 0
is "pages_printed follows them (4 + 60 copies)" "$(job_field "$ID" .pages_printed)" 64
pages_reports=$(( $(events backend-page) - n ))
most=$(( (t1 - t0) / 500000000 + 2 ))    # one per 500 ms, and the first
check "... in $pages_reports page reports: more than one, at most $most (2/s), not 60" \
    test "$pages_reports" -ge 2 -a "$pages_reports" -le "$most" -a "$pages_reports" -lt 60
run_backend FAKE_EXIT=0
is "a smaller count later does not lower pages_printed" "$(job_field "$ID" .pages_printed)" 64

run_backend FAKE_LONG=1
is "a 10000-byte line passes through whole" "$(grep -c '^DEBUG: long x\{10000\}$' "$T/be.err")" 1

# SIGTERM (a cancel in cupsd) is forwarded to the real backend.
n=$(events backend-exit)
rm -f "$T/mark"
env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:fake://printer.example/q" \
    COPEES_SOCKET="$SOCK" FAKE_WAIT=1 FAKE_MARK="$T/mark" \
    "$BACKEND" "$CUPS_ID" copees "$JOB_NAME" 1 "" "$T/doc.pdf" 2> "$T/be.err" &
bpid=$!
check "the real backend is running" wait_until 20 grep -q waiting "$T/mark"
kill -TERM "$bpid"
wait "$bpid"; rc=$?
is "SIGTERM reached the real backend" "$(cat "$T/mark")" term
like "... which logged it" "$(cat "$T/be.err")" 'DEBUG: fake: got SIGTERM'
is "... and copees exits with its code" "$rc" 0
is "the cancel is reported" "$(( $(events backend-exit) - n ))" 1
like "... as canceled" "$(last_detail backend-exit)" 'exited with 0 .*: the job was canceled$'

# cupsd running as root gives a backend a process group of its own and
# signals the whole group: the real backend has the SIGTERM already, and
# copees must not send a second one (CUPS's ipp backend then exits at
# once without canceling the job at the printer).
rm -f "$T/mark"
setsid env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:fake://printer.example/q" \
    COPEES_SOCKET="$SOCK" FAKE_WAIT=1 FAKE_MARK="$T/mark" \
    "$BACKEND" "$CUPS_ID" copees "$JOB_NAME" 1 "" "$T/doc.pdf" 2> "$T/be.err" &
check "the real backend is running (copees leads its process group)" wait_until 20 grep -q waiting "$T/mark"
pg=$(pgrep -f "^$BACKEND $CUPS_ID copees" | head -1)
kill -TERM -- "-$pg"
check "... a SIGTERM to the group reaches the real backend" wait_until 20 grep -q term "$T/mark"
check "... and copees exits" wait_until 20 bash -c "! kill -0 $pg 2>/dev/null"
# (its own SIGTERM may still be pending when the real backend's end is
# seen: copees takes it then, and says so)
unlike "... without sending it a second one" "$(cat "$T/be.err")" 'stopping the real backend'
like "... and says why" "$(cat "$T/be.err")" 'in our process group, was told too'

# A device URI with a user and password: the real backend gets them in
# DEVICE_URI (the environment, which only its user and root can read),
# but not in argv[0], which anyone may read in ps: as cupsd runs one.
env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:argv0://shop:s3cret@printer.example:631/q" \
    COPEES_SOCKET="$SOCK" "$BACKEND" "$CUPS_ID" copees "$JOB_NAME" 1 "" "$T/doc.pdf" 2> "$T/be.err"
is "a URI with user:password: the real backend runs" "$?" 0
like "... with argv[0] the URI without them" "$(cat "$T/be.err")" \
    'argv\[0\]=argv0://printer\.example:631/q DEVICE_URI='
like "... and DEVICE_URI the whole inner URI" "$(cat "$T/be.err")" \
    'DEVICE_URI=argv0://shop:s3cret@printer\.example:631/q'
is "... which copees's own lines do not show" "$(grep -v '^DEBUG: argv0:' "$T/be.err" | grep -c s3cret)" 0

# A job that is not copeesd's: nothing is reported.
n=$(sqlite3 "$DB" "SELECT count(*) FROM events")
TITLE="Quarterly report.pdf" run_backend FAKE_EXIT=0
is "another job's title: exit 0" "$RC" 0
like "... says it reports nothing" "$(cat "$T/be.err")" 'not a copees-spool job'
is "... and copeesd recorded nothing" "$(sqlite3 "$DB" "SELECT count(*) FROM events")" "$n"

# Run as lp, as cupsd does: the backend role may post.
n=$(events backend-exit)
runuser -u lp -- env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:fake://p/q" \
    COPEES_SOCKET="$SOCK" FAKE_EXIT=0 "$BACKEND" "$CUPS_ID" copees "$JOB_NAME" 1 "" "$T/doc.pdf" 2> "$T/be.err"
is "as lp: exit 0" "$?" 0
is "as lp: the exit report was recorded" "$(( $(events backend-exit) - n ))" 1
is "... with lp's uid in the audit log" "$(last_uid backend-exit)" "$(id -u lp)"
runuser -u lp -- env -i PATH=/usr/bin:/bin CUPS_SERVERBIN="$SB" DEVICE_URI="copees:rootonly://p/q" \
    COPEES_SOCKET="$SOCK" "$BACKEND" "$CUPS_ID" copees "$JOB_NAME" 1 "" "$T/doc.pdf" 2> "$T/be.err"
is "as lp, a root-only (0700) backend cannot be wrapped: exit 4 (stop)" "$?" 4
like "... saying why" "$(cat "$T/be.err")" 'only root can run'
like "... and reported" "$(last_detail backend-exit)" 'exited with 4 .*cannot run the rootonly backend: Permission denied$'

# copeesd down: the print goes on, one WARNING line.
COPEES_SOCKET_SAVED=$SOCK
SOCK=$T/nowhere.sock run_backend FAKE_EXIT=3
is "copeesd unreachable: exit 3 still passed through" "$RC" 3
is "... one WARNING line" "$(grep -c '^WARNING: copees: .*cannot connect to copeesd' "$T/be.err")" 1
like "... the rest DEBUG" "$(cat "$T/be.err")" 'DEBUG: copees: exit report: cannot connect to copeesd'
SOCK=$COPEES_SOCKET_SAVED

# copeesd stuck (stopped): the backend waits for it at most briefly.
kill -STOP "$COPEESD_PID"
t0=$(date +%s%N)
run_backend FAKE_EXIT=0
t1=$(date +%s%N)
kill -CONT "$COPEESD_PID"
is "copeesd stopped: exit 0 still passed through" "$RC" 0
ms=$(( (t1 - t0) / 1000000 ))
check "... within a few seconds (took ${ms} ms)" test "$ms" -lt 8000
like "... saying copeesd did not answer" "$(cat "$T/be.err")" 'copeesd did not answer within'
check "copeesd serves again after SIGCONT" wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health

# ------------------------------------------------------------ part 2: the route
# post_as USER JSON [curl args]: POST /v1/backend/events; sets STATUS, BODY
post_as() {
    local u=$1 body=$2 out
    shift 2
    out=$(runuser -u "$u" -- curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' \
          --data-binary "$body" -w '\n%{http_code}' "$@" http://copees/v1/backend/events)
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
post() { post_as root "$@"; }   # post JSON [curl args]: as root (admin)
ev() {     # ev EXTRA-MEMBERS: a page event of the printing job
    printf '{"job_name": "%s", "cups_job_id": %s%s}' "$JOB_NAME" "$CUPS_ID" "$1"
}

post "$(ev ', "event": "page", "pages": 65')"
is "admin: a page event is 200" "$STATUS" 200
is "... answering ok" "$(jq -c . <<<"$BODY")" '{"ok":true}'
is "... pages_printed 65" "$(job_field "$ID" .pages_printed)" 65
n=$(events backend-page)
post "$(ev ', "event": "page", "pages": 65')"
is "the same count again: 200" "$STATUS" 200
is "... without another audit event" "$(events backend-page)" "$n"
post_as lp "$(ev ', "event": "page", "pages": 66')"
is "lp (backend role): 200" "$STATUS" 200
post_as daemon "$(ev ', "event": "page", "pages": 67')"
is "submit_group member: 403" "$STATUS" 403
post_as nobody "$(ev ', "event": "page", "pages": 67')"
is "anyone else: 403" "$STATUS" 403
is "pages_printed stayed 66" "$(job_field "$ID" .pages_printed)" 66
run_backend FAKE_EDGE=500
is "a PAGE line across the edge of copees's buffer is read whole" "$(grep -c '^PAGE: total 500$' "$T/be.err")" 1
is "... and counted (pages_printed 500)" "$(job_field "$ID" .pages_printed)" 500

bad() {    # bad DESCRIPTION BODY FIELD: 400 naming FIELD
    post "$2"
    is "$1: 400" "$STATUS" 400
    like "... naming $3" "$(jq -r '.error + " " + .message' <<<"$BODY")" "^bad-event $3 "
}
bad "job_name not ours in form" '{"job_name": "report.pdf", "cups_job_id": 1, "event": "page", "pages": 1}' job_name
bad "job_name missing" '{"cups_job_id": 1, "event": "page", "pages": 1}' job_name
bad "cups_job_id 0" "$(printf '{"job_name": "%s", "cups_job_id": 0, "event": "page", "pages": 1}' "$JOB_NAME")" cups_job_id
bad "cups_job_id a string" "$(printf '{"job_name": "%s", "cups_job_id": "7", "event": "page", "pages": 1}' "$JOB_NAME")" cups_job_id
bad "event unknown" "$(ev ', "event": "paper", "pages": 1')" event
bad "pages negative" "$(ev ', "event": "page", "pages": -1')" pages
bad "pages missing on page" "$(ev ', "event": "page"')" pages
bad "exit_status missing on exit" "$(ev ', "event": "exit"')" exit_status
bad "exit_status 256" "$(ev ', "event": "exit", "exit_status": 256')" exit_status
bad "exit_status on a page event" "$(ev ', "event": "page", "pages": 1, "exit_status": 0')" exit_status
bad "message with a newline" "$(ev ', "event": "exit", "exit_status": 0, "message": "a\nb"')" message
post '{"job_name": '
is "not JSON: 400" "$STATUS" 400
is "... bad-json" "$(jq -r .error <<<"$BODY")" bad-json
post '[1, 2]'
is "not an object: 400" "$STATUS" 400
post "$(ev ', "event": "page", "pages": 1')" -H 'Content-Type: text/plain'
is "not application/json: 415" "$STATUS" 415
big=$(ev ", \"event\": \"page\", \"pages\": 1, \"x\": \"$(head -c 5000 /dev/zero | tr '\0' a)\"")
post "$big"
is "a body over 4 KiB: 413" "$STATUS" 413
post "$big" -H 'Transfer-Encoding: chunked'
is "... chunked too: 413" "$STATUS" 413
post "$(ev ', "event": "page", "pages": 68, "future_member": true')" -H 'Transfer-Encoding: chunked'
is "a small chunked body with an unknown member: 200" "$STATUS" 200
other=00000000; [ "$INST" = $other ] && other=11111111
post "$(printf '{"job_name": "copees-%s-%s", "cups_job_id": %s, "event": "page", "pages": 1}' "$other" "$ID" "$CUPS_ID")"
is "another instance's job: 404" "$STATUS" 404
post "$(printf '{"job_name": "copees-%s-999999", "cups_job_id": %s, "event": "page", "pages": 1}' "$INST" "$CUPS_ID")"
is "an unknown job: 404" "$STATUS" 404
post "$(printf '{"job_name": "%s", "cups_job_id": %s, "event": "page", "pages": 99}' "$JOB_NAME" $((CUPS_ID + 1000)))"
is "another CUPS job id than the job's: 409" "$STATUS" 409
is "... cups-job-mismatch" "$(jq -r .error <<<"$BODY")" cups-job-mismatch
is "GET on the route: 405" "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://copees/v1/backend/events)" 405

# The printer lets the job go: CUPS completes it, copeesd marks it printed.
rm -f "$T/hold"
check "the held job reaches printed" wait_until 90 job_is "$ID" .state printed
post "$(ev ', "event": "page", "pages": 100')"
is "a report on a printed job: 409" "$STATUS" 409
is "... not-in-cups" "$(jq -r .error <<<"$BODY")" not-in-cups
check "no log line carries the order reference" bash -c "! grep -q ORD-BE '$T/copeesd.log'"

# ------------------------------------------------------------ part 3: cupsd runs it
# As copees(7) says: the queue is made with the real URI (IPP Everywhere
# asks the printer), then given the wrapped one.
lpadmin -p viacopees -E -v "$IPP_TEST_URI" -m everywhere > "$T/lpadmin.out" 2>&1 &&
    lpadmin -p viacopees -v "copees:$IPP_TEST_URI" >> "$T/lpadmin.out" 2>&1
is "lpadmin takes a copees: device URI" "$?" 0
check "the queue has its IPP Everywhere PPD" wait_until 30 test -s "$CUPS_TEST_DIR/ppd/viacopees.ppd"
like "the queue's device is the wrapped URI" "$(lpstat -v viacopees 2>&1)" "copees:ipp://localhost:$IPP_TEST_PORT/"
check "the queue is accepting" wait_until 30 bash -c "lpstat -a viacopees | grep -q accepting"
stop_copeesd
sed -i 's/^queue = test1$/queue = viacopees/' "$CONF"
start_copeesd
: > "$T/cups/ipp-jobs.log"
upload "$T/doc.pdf" "order=ORD-BE-2"
is "upload for the wrapped queue: 201" "$STATUS" 201
ID=$(jq -r .id <<<"$BODY")
check "the job reaches printed" wait_until 120 job_is "$ID" .state printed
CUPS_ID=$(job_field "$ID" .cups_job_id)
check "ippeveprinter received it, named copees-<instance>-<id>" \
    wait_until 30 grep -q "IPP_JOB_NAME=copees-$INST-$ID" "$T/cups/ipp-jobs.log"
like "... with its 2 pages" "$(grep "IPP_JOB_NAME=copees-$INST-$ID" "$T/cups/ipp-jobs.log")" '^pages=2 '
check "cupsd ran the copees backend, which ran ipp" \
    grep -q "\[Job $CUPS_ID\] copees: running the ipp backend" "$CUPS_TEST_DIR/log/error_log"
is "copeesd recorded the backend's exit report" "$(events backend-exit)" 1
check "the ipp backend passed on the printer's count (PAGE: total 2)" \
    grep -q "\[Job $CUPS_ID\] PAGE: total 2" "$CUPS_TEST_DIR/log/error_log"
like "... exit 0 with those 2 pages" "$(last_detail backend-exit)" \
     "^CUPS job $CUPS_ID: the backend exited with 0 \\(CUPS_BACKEND_OK: sent\\), 2 pages$"
is "... from lp (cupsd ran it as lp)" "$(last_uid backend-exit)" "$(id -u lp)"
is "the job has no backend-failed reason" "$(job_field "$ID" '.state_reasons | map(select(. == "backend-failed")) | length')" 0
check "no log line carries the order reference" bash -c "! grep -rq ORD-BE '$T/copeesd.log' '$CUPS_TEST_DIR/log'"
done_testing
