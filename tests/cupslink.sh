#!/bin/bash
# tests/cupslink.sh - the CUPS link (daemon/cupslink.c) against a real
# private cupsd and ippeveprinter: starts tests/cups-env.sh in a private
# directory, writes a one-page PDF, runs tests/cupslink-check (TAP) and
# stops everything on every way out.
#
# CUPSLINK_CHECK names the compiled check (default ./tests/cupslink-check);
# KEEP_TEST_DIR=1 keeps the directory for a post-mortem.
set -u
here=$(cd "$(dirname "$0")" && pwd)
check=${CUPSLINK_CHECK:-./tests/cupslink-check}

bail() { echo "Bail out! $*"; exit 1; }

[ -x "$check" ] || bail "$check is not built (set CUPSLINK_CHECK)"

# A fresh directory lp can traverse (cupsd runs filters as lp as root).
T=$(mktemp -d /tmp/copees-cupslink.XXXXXXXX) || bail "mktemp failed"
chmod 0755 "$T"
cleanup() {
    local rc=$?
    if ! bash "$here/cups-env.sh" stop "$T/cups" >> "$T/cups-env.out" 2>&1; then
        echo "# cups-env.sh stop left processes behind:" >&2
        sed 's/^/# /' "$T/cups-env.out" >&2
        rc=1
    fi
    if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# write_pdf FILE: a one-page A4 PDF with a correct xref table; its content
# stream carries ~300 KB of comment lines, so the document goes to CUPS in
# several 64 KiB chunks.
write_pdf() {
    local LC_ALL=C out i xref content pad line
    local -a obj off
    printf -v pad '%%%079d\n' 0
    pad=${pad//0/x}
    content='2 w 72 72 451 698 re S 100 700 m 495 140 l S'$'\n'
    for i in $(seq 3800); do content+=$pad; done
    content+='72 100 m 523 100 l S'
    obj[1]='<< /Type /Catalog /Pages 2 0 R >>'
    obj[2]='<< /Type /Pages /Kids [3 0 R] /Count 1 >>'
    obj[3]='<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 4 0 R >>'
    obj[4]="<< /Length ${#content} >>"$'\nstream\n'"$content"$'\nendstream'
    out=$'%PDF-1.4\n'
    for i in 1 2 3 4; do
        off[i]=${#out}
        out+="$i 0 obj"$'\n'"${obj[i]}"$'\nendobj\n'
    done
    xref=${#out}
    out+=$'xref\n0 5\n0000000000 65535 f \n'
    for i in 1 2 3 4; do
        printf -v line '%010d 00000 n \n' "${off[i]}"
        out+=$line
    done
    out+=$'trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n'"$xref"$'\n%%EOF\n'
    printf '%s' "$out" > "$1"
}

write_pdf "$T/doc.pdf"
qpdf --check "$T/doc.pdf" > "$T/qpdf.out" 2>&1 || { sed 's/^/# /' "$T/qpdf.out"; bail "the test PDF is broken"; }
[ "$(pdfinfo "$T/doc.pdf" 2>/dev/null | awk '/^Pages:/ { print $2 }')" = 1 ] || bail "the test PDF is not one page"

# PreserveJobFiles Yes: CUPS keeps its copy after printing, so the check
# can see PURGE remove it.
CUPS_PRESERVE_JOB_FILES=Yes bash "$here/cups-env.sh" start "$T/cups" > "$T/cups-env.out" 2>&1 ||
    { sed 's/^/# /' "$T/cups-env.out"; bail "the private CUPS did not start"; }
# shellcheck disable=SC1091
. "$T/cups/env"

# The check stops and restarts cupsd through the harness.
CUPS_ENV="bash $here/cups-env.sh" "$check" "$CUPS_SERVER" "$T/doc.pdf" "$CUPS_SPOOL_DIR" "$CUPS_TEST_DIR"
