#!/bin/bash
# tests/fuzz/make-preflight-seeds.sh BUILDDIR - write the seed corpus of the
# preflight fuzz target, tests/fuzz/preflight-seeds, from the project's own
# generators: tests/mkpdf (cairo) in BUILDDIR, qpdf, and hand-written bytes.
# The seeds are committed; run this again only to change them (keep them
# under 200 KB in all).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkpdf=${1:?usage: $0 BUILDDIR}/tests/mkpdf
out=$here/preflight-seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"

# raw OUT "CATALOG ENTRIES" "PAGE ENTRIES" [OBJECT 6 ...]: one A4 page, Helvetica
# not embedded, the xref written by qpdf
raw() {
    local o=$1 cat=$2 page=$3 content='BT /F1 24 Tf 72 700 Td (Hi) Tj ET 0 0 1 rg 72 72 50 50 re f' i=6
    shift 3
    {
        printf '%s\n' '%PDF-1.4' "1 0 obj << /Type /Catalog /Pages 2 0 R $cat >> endobj" \
            '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj' \
            "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R $page >> endobj" \
            '4 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj' \
            "5 0 obj << /Length ${#content} >> stream" "$content" 'endstream endobj'
        for obj in "$@"; do printf '%d 0 obj %s endobj\n' $i "$obj"; i=$((i + 1)); done
        printf '%s\n' 'trailer << /Root 1 0 R >>' '%%EOF'
    } > "$tmp/raw.pdf"
    qpdf "$tmp/raw.pdf" "$o" 2>/dev/null || [ $? = 3 ]
}

"$mkpdf" --text "seed" "$tmp/a4.pdf"
"$mkpdf" --pages 2 --color --size 300x200 "$out/color-2p.pdf"
"$mkpdf" --size 612x792 "$tmp/letter.pdf"
qpdf --empty --pages "$tmp/a4.pdf" "$out/color-2p.pdf" -- "$out/mixed.pdf"
qpdf --rotate=+90:1 "$out/color-2p.pdf" "$out/turned.pdf"
qpdf --object-streams=generate "$tmp/a4.pdf" "$out/objstm.pdf"
qpdf --encrypt user owner 256 -- "$out/color-2p.pdf" "$out/user-password.pdf"
qpdf --encrypt "" owner 256 --print=none -- "$out/color-2p.pdf" "$out/no-print.pdf"
raw "$out/font.pdf" "" ""
raw "$out/js.pdf" "/OpenAction 6 0 R" "" "<< /S /JavaScript /JS (app.alert(1);) >>"
raw "$out/launch.pdf" "" "/Annots [6 0 R]" \
    "<< /Type /Annot /Subtype /Link /Rect [0 0 99 99] /A << /S /Launch /F (a.exe) >> >>"
raw "$out/attach.pdf" "/Names << /EmbeddedFiles << /Names [(a.txt) 6 0 R] >> >>" "/Rotate 90" \
    "<< /Type /Filespec /F (a.txt) /EF << /F 7 0 R >> >>" \
    $'<< /Type /EmbeddedFile /Length 6 >> stream\nhello\nendstream'
size=$(stat -c %s "$out/mixed.pdf")
head -c $((size / 2)) "$out/mixed.pdf" > "$out/truncated.pdf"
printf 'Not a PDF at all.\n' > "$out/text.pdf"
printf '%%PDF-1.7\n%%\xe2\xe3\xcf\xd3\n' > "$out/header-only.pdf"
du -cb "$out"/* | tail -1
