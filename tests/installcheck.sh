#!/bin/bash
# Run by "make installcheck" (and so by distcheck): the installed tree
# works on its own.  The installed copeesd finds its installed preflight
# helper (no COPEES_PREFLIGHT_HELPER), the backend, units, sysusers.d and
# tmpfiles.d entries, config and man pages are where configure said, the
# installed units pass systemd-analyze, and (as root) a private cupsd runs
# the installed backend as lp for a job the installed daemon sends, the
# socket opened to lp the way copeesd.socket does it.
# Usage: installcheck.sh SBINDIR BINDIR PKGLIBEXECDIR BACKENDDIR UNITDIR CONFDIR MANDIR
#                        SYSUSERSDIR TMPFILESDIR
set -u
SBIN=$1 BIN=$2 LIBEXEC=$3 BACKEND=$4 UNITDIR=$5 CONFDIR=$6 MANDIR=$7 SYSUSERS=$8 TMPFILES=$9
COPEESD=$SBIN/copeesd COPEESCTL=$BIN/copeesctl COPEES_PREFLIGHT_HELPER=
. "$(dirname "$0")/lib.sh"
unset COPEES_PREFLIGHT_HELPER

check "copeesd is installed" test -x "$COPEESD"
check "copeesctl is installed" test -x "$COPEESCTL"
check "the preflight helper is installed in libexec" test -x "$LIBEXEC/preflight"
is "the backend is installed 0755 (cupsd runs it as lp)" "$(stat -c %a "$BACKEND/copees")" 755
check "the backend prints its discovery line" bash -c "'$BACKEND/copees' | grep -q '^network copees '"
check "the example config is installed" test -f "$CONFDIR/copees/copeesd.conf"
for m in man8/copeesd.8 man1/copeesctl.1 man5/copeesd.conf.5 man7/copees.7; do
    check "man page $m is installed" test -f "$MANDIR/$m"
done

# ------------------------------------------------------------ units
SVC=$UNITDIR/copeesd.service SOCKU=$UNITDIR/copeesd.socket
check "the service unit is installed" test -f "$SVC"
check "the socket unit is installed" test -f "$SOCKU"
is "the service runs the installed daemon on the installed config" "$(sed -n 's/^ExecStart=//p' "$SVC")" \
    "$COPEESD -f -c $CONFDIR/copees/copeesd.conf"
listen=$(sed -n 's/^ListenStream=//p' "$SOCKU")
like "the socket unit listens on an absolute path" "$listen" '^/.+\.sock$'
like "... and sets the ACL for lp on that very path" "$(sed -n 's/^ExecStartPost=//p' "$SOCKU")" \
    "^-/usr/bin/setfacl -m u:lp:rw $listen\$"
is "no @placeholder@ is left in the installed units" "$(cat "$SVC" "$SOCKU" | grep -c '@[a-z_]*@')" 0
if command -v systemd-analyze >/dev/null; then
    err=$(systemd-analyze verify --man=no "$SVC" "$SOCKU" 2>&1 >/dev/null); rc=$?
    is "systemd-analyze verify passes the installed units (exit 0)" "$rc" 0
    is "... with nothing on stderr" "$err" ""
    e=$(systemd-analyze security --offline=yes "$SVC" 2>&1 |
        sed -n 's/.*Overall exposure level for copeesd.service: \([0-9.]*\).*/\1/p')
    check "the installed service's exposure is 2.0 or lower (it is ${e:-?})" \
        awk -v e="$e" 'BEGIN { exit !(e != "" && e <= 2.0) }'
else
    ok "# SKIP systemd-analyze not installed"
fi
check "sysusers.d: user copees" grep -q '^u copees ' "$SYSUSERS/copees.conf"
check "sysusers.d: copees is a member of lpadmin" grep -q '^m copees lpadmin$' "$SYSUSERS/copees.conf"
check "tmpfiles.d: the spool, 0700 copees" grep -q '^d /var/spool/copees 0700 copees copees' "$TMPFILES/copees.conf"

# The installed example config must be accepted by the installed daemon.
out=$("$COPEESD" -c "$CONFDIR/copees/copeesd.conf" -V 2>&1)
like "the installed daemon runs" "$out" '^copeesd [0-9]'

# ------------------------------------------------------------ a job through CUPS
"$top_builddir/tests/mkpdf" --pages 2 "$T/a.pdf" 2>/dev/null || printf '%%PDF-1.4\n' > "$T/a.pdf"
chmod 0644 "$T/a.pdf"
printf 'not a pdf\n' > "$T/b.pdf"
if [ "$(id -u)" = 0 ] && [ -x "$top_builddir/tests/mkpdf" ] && command -v cupsd >/dev/null; then
    # cupsd's ServerBin: the system's, with the installed backend added
    SB=$T/serverbin
    mkdir -p "$SB/backend"
    for f in /usr/lib/cups/*; do [ "$(basename "$f")" = backend ] || ln -s "$f" "$SB/"; done
    for f in /usr/lib/cups/backend/*; do ln -s "$f" "$SB/backend/"; done
    ln -s "$BACKEND/copees" "$SB/backend/copees"
    CUPS_FILES_EXTRA=$'ServerBin '"$SB"$'\nSetEnv COPEES_SOCKET '"$SOCK" start_cups
    lpadmin -p viacopees -E -v "$IPP_TEST_URI" -m everywhere > "$T/lpadmin.out" 2>&1 &&
        lpadmin -p viacopees -v "copees:$IPP_TEST_URI" >> "$T/lpadmin.out" 2>&1
    is "a queue takes the installed backend's copees: URI" "$?" 0
    wait_until 30 bash -c "lpstat -a viacopees | grep -q accepting"
    write_conf
    sed -i 's/^queue = test1$/queue = viacopees/' "$CONF"
    start_copeesd
    if command -v setfacl >/dev/null; then
        setfacl -m u:lp:rw "$SOCK"
        like "the socket stays 0660, with an ACL entry for lp (as copeesd.socket sets it)" \
            "$(stat -c %a "$SOCK") $(getfacl -cp "$SOCK" 2>/dev/null | tr '\n' ' ')" '^660 .*user:lp:rw-'
    else
        chmod 0666 "$SOCK"
        ok "# SKIP setfacl not installed: the socket is opened to all instead"
    fi
else
    ok "# SKIP not root, or no cupsd/mkpdf: the installed tree runs without CUPS"
    CUPS_SERVER=$T/no-cups.sock write_conf
    start_copeesd
fi
upload "$T/b.pdf" "order=INST-1"
is "the installed daemon's helper judges a non-PDF: 422" "$STATUS" 422
is "... with not-a-pdf" "$(jq -r '.reasons[0].code' <<<"$BODY")" not-a-pdf
if [ -x "$top_builddir/tests/mkpdf" ]; then
    upload "$T/a.pdf" "order=INST-2"
    is "the installed daemon accepts a good PDF: 201" "$STATUS" 201
    is "... with its page count" "$(jq -r .preflight.pages <<<"$BODY")" 2
    ID=$(jq -r .id <<<"$BODY")
fi
like "the installed copeesctl talks to it" "$("$COPEESCTL" -S "$SOCK" -r)" 'scheduler is running'
if [ -n "${CUPS_TEST_DIR:-}" ]; then
    check "the job prints through the installed backend" wait_until 120 job_is "$ID" .state printed
    cid=$(job_field "$ID" .cups_job_id)
    check "cupsd ran the installed backend, which ran ipp" \
        grep -q "\[Job $cid\] copees: running the ipp backend" "$CUPS_TEST_DIR/log/error_log"
    is "the backend reported to copeesd as lp" "$(sqlite3 "$T/state/copees.db" \
        "SELECT uid FROM events WHERE job_id=$ID AND type='backend-exit'")" "$(id -u lp)"
fi
stop_copeesd
check "no log line carries an order reference" bash -c "! grep -q INST- '$T/copeesd.log'"
done_testing
