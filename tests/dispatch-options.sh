#!/bin/bash
# What reaches the printer: copies, sides, media and colour mode of the
# ticket arrive at a real ippeveprinter; pages_printed = pages x copies;
# the order reference reaches no file of CUPS or of the printer; and a
# printer with cover_sheet=true gets a cover page (job id, never the order
# reference) just before the document: its own one-page CUPS job named
# copees-<instance>-<id>-cover, queued right before the job (a second
# document in the same CUPS job reaches an IPP printer concatenated with
# the first, and a PDF printer sees only the last PDF).
#
# What ippeveprinter really passes to its per-job command (measured with
# CUPS 2.4.2): CUPS's ipp backend sends the size as media-col, never as
# media, so the command sees IPP_MEDIA_COL={media-size={x-dimension=21000
# y-dimension=29700} media-bottom-margin=... } (hundredths of mm) and no
# IPP_MEDIA; IPP_COPIES only when copies > 1; IPP_SIDES only when the
# printer is two-sided capable (a one-sided queue sends no sides);
# IPP_PRINT_COLOR_MODE always.
. "$(dirname "$0")/lib.sh"

start_cups
add_printer big --media=iso_a4_210x297mm,iso_a3_297x420mm -2 -s 40,40
add_printer small --media=iso_a4_210x297mm -s 20
add_printer cover --media=iso_a5_148x210mm -s 20
PRINTERS="$(printer_section big big 'iso_a4_210x297mm, iso_a3_297x420mm' true true 40)
$(printer_section small small iso_a4_210x297mm false false 20)
$(printer_section cover cover iso_a5_148x210mm false false 20 'cover_sheet = true')"
DEFAULT_PRINTER=no write_conf "$PRINTERS"
start_copeesd

"$MKPDF" --pages 2 --size 841.89x1190.55 "$T/a3-2.pdf" || bail "mkpdf failed"
"$MKPDF" --pages 2 "$T/a4-2.pdf"
"$MKPDF" --pages 3 "$T/a4-3.pdf"
"$MKPDF" --pages 2 --size 419.53x595.28 "$T/a5-2.pdf"

id_of() { jq -r .id <<<"$BODY"; }
recv() {          # recv ID: every recorder line for job ID, whichever printer
    local p
    for p in big small cover; do received_line "$p" "$1"; done
}
attr_of() {       # attr_of ID NAME: the value of IPP_NAME in the job's line(s)
    recv "$1" | tr ' ' '\n' | sed -n "s/^IPP_$2=//p" | sort -u
}
media_col_of() {  # media_col_of ID: "XxY" of the media-size the printer got
    recv "$1" | grep -o 'media-size={x-dimension=[0-9]* y-dimension=[0-9]*}' |
        sed 's/.*x-dimension=\([0-9]*\) y-dimension=\([0-9]*\).*/\1x\2/' | sort -u
}

REF=ORD-PRIV-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')

# ------------------------------------------------------------ tickets
upload "$T/a3-2.pdf" "order=$REF&copies=2&sides=two-sided-long-edge&media=iso_a3_297x420mm&color=color" \
    -H "Idempotency-Key: priv-1"
is "ticket 1 (A3, colour, two-sided long edge, 2 copies) accepted" "$STATUS" 201
J1=$(id_of)
upload "$T/a4-2.pdf" "order=$REF&copies=1&sides=two-sided-short-edge&media=iso_a4_210x297mm&color=monochrome" \
    -H "Idempotency-Key: priv-2"
is "ticket 2 (A4, monochrome, two-sided short edge, 1 copy) accepted" "$STATUS" 201
J2=$(id_of)
upload "$T/a4-3.pdf" "order=$REF&copies=3&media=iso_a4_210x297mm" -H "Idempotency-Key: priv-3"
is "ticket 3 (A4, monochrome, one-sided, 3 copies) accepted" "$STATUS" 201
J3=$(id_of)

for j in "$J1" "$J2" "$J3"; do
    check "job $j reaches printed" wait_until 90 job_is "$j" .state printed
done
diag "ticket 1 at the printer: $(recv "$J1")"
is "ticket 1 arrived at one printer, once" "$(recv "$J1" | wc -l)" 1
is "ticket 1: IPP_COPIES=2" "$(attr_of "$J1" COPIES)" 2
is "ticket 1: IPP_SIDES=two-sided-long-edge" "$(attr_of "$J1" SIDES)" two-sided-long-edge
is "ticket 1: IPP_PRINT_COLOR_MODE=color" "$(attr_of "$J1" PRINT_COLOR_MODE)" color
is "ticket 1: media-col media-size 29700x42000 (A3)" "$(media_col_of "$J1")" 29700x42000
like "ticket 1: no IPP_MEDIA, or A3" "$(attr_of "$J1" MEDIA)" '^(iso_a3_297x420mm)?$'
like "ticket 1: the printer got the document's 2 pages" "$(recv "$J1")" '^pages=2 '

c=$(attr_of "$J2" COPIES)
is "ticket 2: copies 1 (IPP_COPIES absent or 1)" "${c:-1}" 1
is "ticket 2: IPP_SIDES=two-sided-short-edge" "$(attr_of "$J2" SIDES)" two-sided-short-edge
is "ticket 2: IPP_PRINT_COLOR_MODE=monochrome" "$(attr_of "$J2" PRINT_COLOR_MODE)" monochrome
is "ticket 2: media-col media-size 21000x29700 (A4)" "$(media_col_of "$J2")" 21000x29700

is "ticket 3: IPP_COPIES=3" "$(attr_of "$J3" COPIES)" 3
like "ticket 3: one-sided (IPP_SIDES absent or one-sided)" "$(attr_of "$J3" SIDES)" '^(one-sided)?$'
is "ticket 3: IPP_PRINT_COLOR_MODE=monochrome" "$(attr_of "$J3" PRINT_COLOR_MODE)" monochrome
is "ticket 3: media-col media-size 21000x29700 (A4)" "$(media_col_of "$J3")" 21000x29700

is "pages_printed of ticket 1 = 2 pages x 2 copies" "$(job_field "$J1" .pages_printed)" 4
is "pages_printed of ticket 2 = 2 pages x 1 copy" "$(job_field "$J2" .pages_printed)" 2
is "pages_printed of ticket 3 = 3 pages x 3 copies" "$(job_field "$J3" .pages_printed)" 9

# ------------------------------------------------------------ cover sheet
upload "$T/a5-2.pdf" "order=$REF&media=iso_a5_148x210mm" -H "Idempotency-Key: priv-cover"
is "a job for the cover-sheet printer is accepted" "$STATUS" 201
CV=$(id_of)
check "it reaches printed" wait_until 90 job_is "$CV" .state printed
is "... on the cover-sheet printer" "$(job_field "$CV" .printer)" cover
cid=$(job_field "$CV" .cups_job_id)
cover_line=$(received_line cover "$CV-cover")
job_line=$(received_line cover "$CV")
check "the printer received a cover sheet job for it" test -n "$cover_line"
diag "cover sheet at the printer: $(cut -c1-160 <<<"$cover_line")"
is "the cover sheet is one page" "$(sed -n 's/^pages=\([0-9]*\) .*/\1/p' <<<"$cover_line")" 1
is "the document's own pages arrive as ever (2)" "$(sed -n 's/^pages=\([0-9]*\) .*/\1/p' <<<"$job_line")" 2
log=$(printer_log cover)
cl=$(grep -nE "IPP_JOB_NAME=copees-[0-9a-f]+-$CV-cover( |\$)" "$log" | cut -d: -f1)
jl=$(grep -nE "IPP_JOB_NAME=copees-[0-9a-f]+-$CV( |\$)" "$log" | cut -d: -f1)
check "the cover sheet reached the printer right before the job" test "${cl:-0}" -gt 0 -a "$((cl + 1))" = "${jl:-0}"
files=$(printf '%s\n%s\n' "$cover_line" "$job_line" | sed -n 's/^pages=[^ ]* file=\([^ ]*\) .*/\1/p')
check "the printer kept what it received" test -n "$files"
: > "$T/cover.txt"
for f in $files; do
    pdftotext "$T/cups/ipp-spool-cover/$f" - >> "$T/cover.txt" 2>/dev/null
done
cf=$(sed -n 's/^pages=[^ ]* file=\([^ ]*\) .*/\1/p' <<<"$cover_line")
first=$(pdftotext -f 1 -l 1 "$T/cups/ipp-spool-cover/$cf" - 2>/dev/null)
diag "text of the cover sheet: $(tr '\n' ' ' <<<"$first" | cut -c1-200)"
like "the cover sheet carries the job id" "$first" "copees job $CV([^0-9]|\$)"
like "... the copies and page count" "$first" 'Copies: 1 +Pages: 2'
if [[ -n $first && $first != *"page 1 of 2"* ]]; then ok "... and is not the document's first page"
else not_ok "... and is not the document's first page"; fi
check "CUPS is left with nothing of the cover sheet once printed" wait_until 30 bash -c \
    "! lpstat -W all -o cover 2>/dev/null | grep -q ."
check "no page received carries the order reference" bash -c "! grep -qF '$REF' '$T/cover.txt'"

# ------------------------------------------------------------ privacy
check "our own DB holds the order reference (so grep -r finds it where it is)" \
    grep -rqF "$REF" "$T/state"
leaks=$(grep -rlF "$REF" "$T/cups" 2>/dev/null | tr '\n' ' ')
is "the order reference is in no file of CUPS or of the printers (logs, spool, cache, state, received files)" \
   "$leaks" ""
check "nor in copeesd's log" bash -c "! grep -qF '$REF' '$T/copeesd.log'"
done_testing
