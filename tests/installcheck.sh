#!/bin/bash
# Run by "make installcheck" (and so by distcheck): the installed tree
# works on its own.  The installed copeesd finds its installed preflight
# helper (no COPEES_PREFLIGHT_HELPER), the backend, units, config and man
# pages are where configure said.
# Usage: installcheck.sh SBINDIR BINDIR PKGLIBEXECDIR BACKENDDIR UNITDIR CONFDIR MANDIR
set -u
SBIN=$1 BIN=$2 LIBEXEC=$3 BACKEND=$4 UNITDIR=$5 CONFDIR=$6 MANDIR=$7
COPEESD=$SBIN/copeesd COPEESCTL=$BIN/copeesctl COPEES_PREFLIGHT_HELPER=
. "$(dirname "$0")/lib.sh"
unset COPEES_PREFLIGHT_HELPER

check "copeesd is installed" test -x "$COPEESD"
check "copeesctl is installed" test -x "$COPEESCTL"
check "the preflight helper is installed in libexec" test -x "$LIBEXEC/preflight"
is "the backend is installed 0755 (cupsd runs it as lp)" "$(stat -c %a "$BACKEND/copees")" 755
check "the backend prints its discovery line" bash -c "'$BACKEND/copees' | grep -q '^network copees '"
check "the service unit names the installed daemon" grep -q "^ExecStart=$COPEESD " "$UNITDIR/copeesd.service"
check "the socket unit is installed" test -f "$UNITDIR/copeesd.socket"
check "the example config is installed" test -f "$CONFDIR/copees/copeesd.conf"
for m in man8/copeesd.8 man1/copeesctl.1 man5/copeesd.conf.5; do
    check "man page $m is installed" test -f "$MANDIR/$m"
done

# The installed example config must be accepted by the installed daemon.
out=$("$COPEESD" -c "$CONFDIR/copees/copeesd.conf" -V 2>&1)
like "the installed daemon runs" "$out" '^copeesd [0-9]'

CUPS_SERVER=$T/no-cups.sock write_conf
start_copeesd
"$top_builddir/tests/mkpdf" --pages 2 "$T/a.pdf" 2>/dev/null || printf '%%PDF-1.4\n' > "$T/a.pdf"
printf 'not a pdf\n' > "$T/b.pdf"
upload "$T/b.pdf" "order=INST-1"
is "the installed daemon's helper judges a non-PDF: 422" "$STATUS" 422
is "... with not-a-pdf" "$(jq -r '.reasons[0].code' <<<"$BODY")" not-a-pdf
if [ -x "$top_builddir/tests/mkpdf" ]; then
    upload "$T/a.pdf" "order=INST-2"
    is "the installed daemon accepts a good PDF: 201" "$STATUS" 201
    is "... with its page count" "$(jq -r .preflight.pages <<<"$BODY")" 2
fi
like "the installed copeesctl talks to it" "$("$COPEESCTL" -S "$SOCK" -r)" 'scheduler is running'
stop_copeesd
done_testing
