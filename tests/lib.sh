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
diag() { printf '# %s\n' "$*" | head -40; }
bail() { echo "Bail out! $*"; exit 1; }
done_testing() { echo "1..$_tap_n"; }

# ------------------------------------------------------------ waiting
wait_until() {    # wait_until SECONDS CMD...  (poll every 100 ms)
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# ------------------------------------------------------------ test directory
# A fresh directory under /tmp that lp can traverse (cupsd runs filters as
# lp): the copeesd spool/state inside it stay 0700.
T=$(mktemp -d /tmp/copees-test.XXXXXXXX) || bail "mktemp failed"
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
spool_dir = $T/spool
state_dir = $T/state
socket = $SOCK
${DAEMON_EXTRA:-}

[retention]
complaint_window = ${COMPLAINT_WINDOW:-3s}
${RETENTION_EXTRA:-}

[cups]
server = ${CUPS_SERVER:-$T/cups/run/cups.sock}
poll_interval = 200ms

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
    "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
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
# upload FILE QUERY: POST /v1/jobs?QUERY; sets BODY and STATUS
upload() {
    local out
    out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
          --data-binary @"$1" -w '\n%{http_code}' "http://copees/v1/jobs?$2")
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
job_field() {     # job_field ID JQ-FILTER
    curl -s --unix-socket "$SOCK" "http://copees/v1/jobs/$1" | jq -r "$2"
}
job_is() {        # job_is ID JQ-FILTER VALUE  (for wait_until)
    [ "$(job_field "$1" "$2")" = "$3" ]
}
