# tests/lib.sh - the integration tests' harness: TAP output, a private
# directory per test, a private CUPS (tests/cups-env.sh), and copeesd on
# its own socket.  Source it from a test script; it cleans up on exit.
#
# Everything waits by polling with generous deadlines, never by fixed
# sleeps.  KEEP_TEST_DIR=1 keeps the test directory for a post-mortem.

set -u
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
COPEESD=${COPEESD:-$top_builddir/copeesd}
COPEESCTL=${COPEESCTL:-$top_builddir/copeesctl}
MKPDF=${MKPDF:-$top_builddir/tests/mkpdf}
export COPEES_PREFLIGHT_HELPER=${COPEES_PREFLIGHT_HELPER:-$top_builddir/daemon/preflight}

# ------------------------------------------------------------ TAP
_tap_n=0
_tap_failed=0
ok() {        # ok DESCRIPTION  (pass)
    _tap_n=$((_tap_n + 1))
    case "$*" in "# SKIP"*) echo "ok $_tap_n $*" ;; *) echo "ok $_tap_n - $*" ;; esac
}
not_ok() {    # not_ok DESCRIPTION  (fail)
    _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"
}
check() {     # check DESCRIPTION CMD...  (pass when CMD succeeds)
    local d=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; diag "command failed: $*"; fi
}
is() {        # is DESCRIPTION GOT EXPECTED
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "got '$2', expected '$3'"; fi
}
like() {      # like DESCRIPTION GOT REGEX
    if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1"; diag "got '$2', expected to match /$3/"; fi
}
unlike() {    # unlike DESCRIPTION GOT REGEX
    if [[ $2 =~ $3 ]]; then not_ok "$1"; diag "matched /$3/: '${BASH_REMATCH[0]}'"; else ok "$1"; fi
}
diag() { printf '# %s\n' "$*" | head -40; }
bail() { echo "Bail out! $*"; exit 1; }
done_testing() {  # one more check: no GLib assertion or sanitizer report in the logs
    local bad
    bad=$(grep -h -E 'GLib[-A-Za-z]*-(CRITICAL|WARNING)|AddressSanitizer|runtime error:' \
          "$T"/*.log 2>/dev/null | head -3)
    if [ -n "$bad" ]; then
        not_ok "the logs hold no GLib assertion or sanitizer report"; diag "$bad"
    else
        ok "the logs hold no GLib assertion or sanitizer report"
    fi
    echo "1..$_tap_n"
}

# ------------------------------------------------------------ waiting
wait_until() {    # wait_until SECONDS CMD...  (poll every 100 ms)
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# mkimagepdf FILE HEIGHT: a valid one-page A4 PDF whose page draws one
# 16384 x HEIGHT DeviceGray image of random samples (no filter), with an
# exact cross-reference table: a document as large as asked (16 KiB a
# row) that poppler must read whole.
mkimagepdf() {
    local f=$1 w=16384 h=$2 off=() o content='q 595 0 0 842 0 0 cm /Im1 Do Q'
    printf '%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n' > "$f"
    off+=("$(stat -c %s "$f")")
    printf '1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n' >> "$f"
    off+=("$(stat -c %s "$f")")
    printf '2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n' >> "$f"
    off+=("$(stat -c %s "$f")")
    printf '3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 5 0 R >> >> /Contents 4 0 R >>\nendobj\n' >> "$f"
    off+=("$(stat -c %s "$f")")
    printf '4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n' ${#content} "$content" >> "$f"
    off+=("$(stat -c %s "$f")")
    printf '5 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n' \
        $w "$h" $((w * h)) >> "$f"
    head -c $((w * h)) /dev/urandom >> "$f"
    printf '\nendstream\nendobj\n' >> "$f"
    o=$(stat -c %s "$f")
    { printf 'xref\n0 6\n0000000000 65535 f \n'
      printf '%010d 00000 n \n' "${off[@]}"
      printf 'trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' "$o"; } >> "$f"
}

# ------------------------------------------------------------ test directory
# A fresh directory under /tmp (or $COPEES_TEST_TMPDIR) that lp can
# traverse (cupsd runs filters as lp): the copeesd spool/state inside it
# stay 0700.
T=$(mktemp -d "${COPEES_TEST_TMPDIR:-/tmp}/copees-test.XXXXXXXX") || bail "mktemp failed"
chmod 0755 "$T"
_cleanup() {
    local rc=$?
    stop_copeesd
    [ -d "$T/cups" ] && bash "$top_srcdir/tests/cups-env.sh" stop "$T/cups" >/dev/null 2>&1
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
    [ "$_tap_failed" -gt 0 ] && rc=1
    exit $rc
}
trap _cleanup EXIT

# ------------------------------------------------------------ CUPS
start_cups() {    # a private cupsd + ippeveprinter + queue test1 in $T/cups
    bash "$top_srcdir/tests/cups-env.sh" start "$T/cups" > "$T/cups-env.out" 2>&1 \
        || { cat "$T/cups-env.out" >&2; bail "private CUPS did not start"; }
    # shellcheck disable=SC1091
    . "$T/cups/env"
}

# ------------------------------------------------------------ copeesd
SOCK=$T/copeesd.sock
CONF=$T/copeesd.conf
write_conf() {    # write_conf [EXTRA-INI-TEXT]: the base config + extra text;
                  # $DAEMON_EXTRA: more lines for the [daemon] section,
                  # $RETENTION_EXTRA for [retention]
    cat > "$CONF" <<CONF
[daemon]
spool_dir = ${COPEES_SPOOL_DIR:-$T/spool}
state_dir = ${COPEES_STATE_DIR:-$T/state}
socket = $SOCK
${DAEMON_EXTRA:-}

[retention]
complaint_window = ${COMPLAINT_WINDOW:-3s}
${RETENTION_EXTRA:-}

[cups]
server = ${CUPS_SERVER:-$T/cups/run/cups.sock}
poll_interval = 200ms

CONF
    # DEFAULT_PRINTER=no leaves out [printer atelier] (queue test1), for
    # tests that bring their own printers (printer_section).
    [ "${DEFAULT_PRINTER:-yes}" = no ] || cat >> "$CONF" <<CONF
[printer atelier]
queue = test1
media = iso_a4_210x297mm, iso_a3_297x420mm
color = true
duplex = true
ppm = 30
CONF
    [ $# -gt 0 ] && printf '%s\n' "$1" >> "$CONF"
    return 0
}

COPEESD_PID=
start_copeesd() { # start copeesd on $CONF, wait until /v1/health answers
    "$COPEESD" -f ${COPEESD_DEBUG--d} -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    COPEESD_PID=$!
    wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health \
        || { tail -20 "$T/copeesd.log" >&2; bail "copeesd did not come up"; }
}
stop_copeesd() {  # SIGTERM, wait for the exit; returns copeesd's status
    [ -n "$COPEESD_PID" ] || return 0
    local pid=$COPEESD_PID rc=0
    COPEESD_PID=
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" || rc=$?
    return $rc
}

# api METHOD PATH [curl args...]: prints the body, then a last line "HTTP NNN"
api() {
    local m=$1 p=$2; shift 2
    curl -s --unix-socket "$SOCK" -X "$m" -w '\nHTTP %{http_code}\n' "$@" "http://copees$p"
}
# upload FILE QUERY [CURL-ARG...]: POST /v1/jobs?QUERY; sets BODY and STATUS
# (e.g. upload doc.pdf "order=X" -H "Idempotency-Key: k1")
upload() {
    local out f=$1 q=$2
    shift 2
    out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' "$@" \
          --data-binary @"$f" -w '\n%{http_code}' "http://copees/v1/jobs?$q")
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
job_field() {     # job_field ID JQ-FILTER
    curl -s --unix-socket "$SOCK" "http://copees/v1/jobs/$1" | jq -r "$2"
}
job_is() {        # job_is ID JQ-FILTER VALUE  (for wait_until)
    [ "$(job_field "$1" "$2")" = "$3" ]
}

# ------------------------------------------------------------ several printers
# More virtual printers in the same private cupsd (tests/cups-env.sh
# add-printer): each its own ippeveprinter, port, queue NAME and recorder
# log $T/cups/ipp-jobs-NAME.log.
cups_env() {      # cups_env CMD [ARG...]: tests/cups-env.sh CMD $T/cups ARG...
    local cmd=$1; shift
    bash "$top_srcdir/tests/cups-env.sh" "$cmd" "$T/cups" "$@"
}
add_printer() {   # add_printer NAME [OPTION...] (e.g. --media=iso_a4_210x297mm -s 20)
    cups_env add-printer "$@" >> "$T/cups-env.out" 2>&1 ||
        { tail -20 "$T/cups-env.out" >&2; bail "printer $1 did not start"; }
}
printer_log() {   # printer_log NAME: the recorder's log of printer NAME
    echo "$T/cups/ipp-jobs-$1.log"
}
printer_knobs() { # printer_knobs NAME [DELAY=S] [EXIT=N] [STATE=R]: its recorder's
                  # behaviour from the next job on (no argument: plain again)
    local f=$T/cups/ipp-record-$1.conf
    shift
    : > "$f.new"
    [ $# -eq 0 ] || printf '%s\n' "$@" > "$f.new"
    mv "$f.new" "$f"
}
# printer_section NAME QUEUE MEDIA COLOR DUPLEX PPM [EXTRA-LINE...]: the INI
# text of one [printer NAME] section, for write_conf.
printer_section() {
    printf '\n[printer %s]\nqueue = %s\nmedia = %s\ncolor = %s\nduplex = %s\nppm = %s\n' \
        "$1" "$2" "$3" "$4" "$5" "$6"
    shift 6
    [ $# -eq 0 ] || printf '%s\n' "$@"
}
# printed_at NAME: the ids of our jobs that printer NAME received, in the
# order it received them (from IPP_JOB_NAME=copees-<instance>-<id>).
printed_at() {
    [ -f "$(printer_log "$1")" ] || return 0
    sed -n 's/.*IPP_JOB_NAME=copees-[0-9a-f]*-\([0-9]*\).*/\1/p' "$(printer_log "$1")"
}
# received_line NAME ID: the recorder's line(s) for our job ID at NAME
received_line() {
    [ -f "$(printer_log "$1")" ] || return 0
    grep -E "IPP_JOB_NAME=copees-[0-9a-f]+-$2( |\$)" "$(printer_log "$1")"
}
printer_field() { # printer_field NAME JQ-FILTER: from GET /v1/printers
    curl -s --unix-socket "$SOCK" http://copees/v1/printers |
        jq -r --arg n "$1" ".printers[] | select(.name == \$n) | $2"
}
printer_is() {    # printer_is NAME JQ-FILTER VALUE  (for wait_until)
    [ "$(printer_field "$1" "$2")" = "$3" ]
}
has_reason() {    # has_reason ID KEYWORD: the job's state_reasons hold KEYWORD
    job_field "$1" '.state_reasons | join(" ")' | tr ' ' '\n' | grep -qx "$2"
}
cups_active() {   # cups_active QUEUE: how many jobs CUPS holds not completed
    lpstat -o "$1" 2>/dev/null | grep -c "^$1-"
}
# stays SECONDS CMD...: CMD holds at every check (every 100 ms) for that
# long; fails at the first check where it does not.  For "nothing happens"
# checks, which have to watch for a while.
# ------------------------------------------------------------ exactly once
printed_count() {   # printed_count JOBID: lines at the printer for that job
    grep -c "IPP_JOB_NAME=copees-[0-9a-f]*-$1\( \|$\)" "$CUPS_TEST_DIR/ipp-jobs.log" 2>/dev/null
}
cups_idle() {       # no job of ours waits or prints in CUPS
    [ -z "$(lpstat -h "$CUPS_SERVER" -o 2>/dev/null)" ]
}

# crash_at POINT ORDER: run copeesd with the fault point, upload a held
# job, release it, wait for the crash; the job id in $T/last.id.  (Held
# first: a job sent at once may reach the fault point before its 201 is
# written, and the test needs its id.  The answer to the release may be
# lost to the crash, as may any answer.)
crash_at() {
    COPEES_TEST_FAULT=$1 "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    local pid=$!
    wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health \
        || bail "copeesd did not come up"
    upload "$T/doc.pdf" "order=$2&copies=1&hold=true"
    [ "$STATUS" = 201 ] || bail "upload: $STATUS $BODY"
    echo "$BODY" | jq -r .id > "$T/last.id"
    api POST "/v1/jobs/$(cat "$T/last.id")/release" >/dev/null
    local rc=0
    wait "$pid" || rc=$?
    is "copeesd died at the fault point $1" "$rc" 86
}

stays() {
    local end=$(( $(date +%s) + $1 )); shift
    while [ "$(date +%s)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 || return 1
        sleep 0.1
    done
}
rfc3339() {       # rfc3339 OFFSET: a UTC time as the API takes it, e.g. rfc3339 '+1 hour'
    date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ
}
