#!/bin/bash
# Dispatch to several real printers: capability routing (colour, two-sided
# and A3 go only where the [printer] config says they can print; a job no
# printer can print waits with no-capable-printer), the order of printing
# (due, then priority, then id), max_inflight with a slow printer, moves,
# deadline-at-risk, the jobs of one order kept together, and a printer
# added by SIGHUP.  Two ippeveprinters behind one private cupsd:
#   big    A4 + A3, colour, two-sided, 40 ppm
#   small  A4 only, monochrome, one-sided, 20 ppm
# What a printer received is read from its recorder log (one line per
# job, IPP_JOB_NAME=copees-<instance>-<id>).
#
# Worth knowing when reading a failure: CUPS does not refuse a colour job
# on a monochrome IPP Everywhere queue, it prints it in grey; only a
# two-sided or A3 job is refused there (the job is canceled with "Printer
# cannot print with supplied options.").  So routing is copeesd's job alone.
. "$(dirname "$0")/lib.sh"

start_cups
add_printer big --media=iso_a4_210x297mm,iso_a3_297x420mm -2 -s 40,40
add_printer small --media=iso_a4_210x297mm -s 20
PRINTERS="$(printer_section big big 'iso_a4_210x297mm, iso_a3_297x420mm' true true 40 'max_inflight = 2')
$(printer_section small small iso_a4_210x297mm false false 20 'max_inflight = 2')"
DEFAULT_PRINTER=no DAEMON_EXTRA="delivery_lead = 30m" write_conf "$PRINTERS"
start_copeesd

"$MKPDF" --pages 1 "$T/a4.pdf" || bail "mkpdf failed"
"$MKPDF" --pages 2 "$T/a4-2.pdf"
"$MKPDF" --pages 1 --color "$T/a4-color.pdf"
"$MKPDF" --pages 1 --size 841.89x1190.55 "$T/a3.pdf"
"$MKPDF" --pages 1 --size 419.53x595.28 "$T/a5.pdf"

id_of() { jq -r .id <<<"$BODY"; }
all_printed() {   # all_printed ID...: every one of them is printed
    local i
    for i in "$@"; do job_is "$i" .state printed || return 1; done
}
on_printer() {    # on_printer NAME ID: NAME received job ID, and no other printer did
    local p
    [ -n "$(received_line "$1" "$2")" ] || return 1
    for p in big small a5; do
        [ "$p" = "$1" ] || [ -z "$(received_line "$p" "$2")" ] || return 1
    done
}

# ------------------------------------------------------------ capability routing
upload "$T/a4-color.pdf" "order=ORD-route-color&color=color"
is "a colour job is accepted" "$STATUS" 201
C=$(id_of)
upload "$T/a4-2.pdf" "order=ORD-route-duplex&sides=two-sided-long-edge"
D=$(id_of)
upload "$T/a3.pdf" "order=ORD-route-a3&media=iso_a3_297x420mm"
A=$(id_of)
upload "$T/a4.pdf" "order=ORD-route-mono"
M=$(id_of)
upload "$T/a5.pdf" "order=ORD-route-a5&media=iso_a5_148x210mm"
is "a job no printer can print is accepted all the same (201)" "$STATUS" 201
N=$(id_of)

check "the colour, two-sided, A3 and plain jobs print" wait_until 90 all_printed "$C" "$D" "$A" "$M"
is "the colour job went to big (the colour printer)" "$(job_field "$C" .printer)" big
check "... and big received it, small did not" on_printer big "$C"
like "... in colour" "$(received_line big "$C")" 'IPP_PRINT_COLOR_MODE=color'
is "the two-sided job went to big (the duplex printer)" "$(job_field "$D" .printer)" big
check "... and big received it, small did not" on_printer big "$D"
is "the A3 job went to big (the A3 printer)" "$(job_field "$A" .printer)" big
check "... and big received it, small did not" on_printer big "$A"
like "the plain A4 monochrome job went to one of them" "$(job_field "$M" .printer)" '^(big|small)$'
check "... which received it" on_printer "$(job_field "$M" .printer)" "$M"

is "the A5 job stays queued" "$(job_field "$N" .state)" queued
check "... with no-capable-printer in state_reasons" has_reason "$N" no-capable-printer
is "... and no printer" "$(job_field "$N" .printer)" null
check "... and it never reached CUPS" bash -c "! grep -qE 'copees-[0-9a-f]+-$N([^0-9]|\$)' '$T/cups/log/error_log'"
check "... nor any printer" bash -c "! cat '$T'/cups/ipp-jobs-*.log | grep -qE 'IPP_JOB_NAME=copees-[0-9a-f]+-$N( |\$)'"

# ------------------------------------------------------------ disable/enable, order
out=$(api POST /v1/printers/big/disable)
like "POST /v1/printers/big/disable: 200" "$out" 'HTTP 200$'
out=$(api POST /v1/printers/small/disable)
like "POST /v1/printers/small/disable: 200" "$out" 'HTTP 200$'
is "GET /v1/printers shows big disabled" "$(printer_field big .enabled)" false
out=$(api POST /v1/printers/nosuch/disable)
like "disable of an unknown printer: 404" "$out" 'HTTP 404$'
like "... naming the printer (not just an unknown route)" "$out" 'nosuch'

# Due first, then priority (100 most urgent), then id; no due = created +
# default_due (4h).  Uploaded in an order that is none of these.  The due
# times are taken once: "+1 hour" read at two uploads a second apart
# would be two different dues.
due1=$(rfc3339 '+1 hour') due2=$(rfc3339 '+2 hours') due3=$(rfc3339 '+3 hours')
upload "$T/a4.pdf" "order=ORD-o1&due=$due2";                O1=$(id_of)
upload "$T/a4.pdf" "order=ORD-o2";                          O2=$(id_of)
upload "$T/a4.pdf" "order=ORD-o3&due=$due1&priority=50";    O3=$(id_of)
upload "$T/a4.pdf" "order=ORD-o4&due=$due3&priority=100";   O4=$(id_of)
upload "$T/a4.pdf" "order=ORD-o5&due=$due1&priority=80";    O5=$(id_of)
upload "$T/a4.pdf" "order=ORD-o6&due=$due1&priority=80";    O6=$(id_of)
expected="$O5 $O6 $O3 $O1 $O4 $O2"
no_cups_job() { [ "$(lpstat -o 2>/dev/null | grep -c .)" = 0 ]; }
queued_all() { local i; for i in "$@"; do job_is "$i" .state queued || return 1; done; }
check "with both printers disabled, the jobs stay queued (2 s)" stays 2 queued_all $O1 $O2 $O3 $O4 $O5 $O6
check "... and nothing reaches CUPS" no_cups_job
before=$(printed_at big | wc -l)
out=$(api POST /v1/printers/big/enable)
like "POST /v1/printers/big/enable: 200" "$out" 'HTTP 200$'
is "GET /v1/printers shows big enabled" "$(printer_field big .enabled)" true
check "the six jobs print once big is enabled" wait_until 90 all_printed $O1 $O2 $O3 $O4 $O5 $O6
got=$(printed_at big | tail -n +$((before + 1)) | tr '\n' ' ')
is "big printed them by due, then priority, then id" "${got% }" "$expected"
is "small (still disabled) printed none of them" "$(printed_at small | grep -cxE "$O1|$O2|$O3|$O4|$O5|$O6")" 0
out=$(api POST /v1/printers/small/enable)
like "POST /v1/printers/small/enable: 200" "$out" 'HTTP 200$'

# ------------------------------------------------------------ max_inflight
# big takes a second more per job: six colour jobs (big only) drain
# through it while CUPS's view of big (lpstat -o) is sampled all the while.
printer_knobs big DELAY=1
ids=()
for i in 1 2 3 4 5 6; do
    upload "$T/a4-color.pdf" "order=ORD-inflight-$i&color=color"
    ids+=("$(id_of)")
done
maxseen=0
end=$(( $(date +%s) + 120 ))
until all_printed "${ids[@]}" || [ "$(date +%s)" -ge "$end" ]; do
    n=$(cups_active big)
    [ "$n" -gt "$maxseen" ] && maxseen=$n
    sleep 0.05
done
check "the six slow jobs print" all_printed "${ids[@]}"
diag "most of our jobs seen inside CUPS for big at once: $maxseen"
check "never more than max_inflight (2) of them inside CUPS at once" test "$maxseen" -le 2
check "... and two at a time (one printing, one waiting)" test "$maxseen" -eq 2
printer_knobs big

# ------------------------------------------------------------ move
api POST /v1/printers/big/disable > /dev/null
api POST /v1/printers/small/disable > /dev/null
upload "$T/a4.pdf" "order=ORD-move"
MV=$(id_of)
out=$(api POST "/v1/jobs/$MV/move?printer=small")
like "move of a queued job to small: 200" "$out" 'HTTP 200$'
like "... the answer is the job on small" "$(sed '$d' <<<"$out" | jq -r .printer)" '^small$'
out=$(api POST "/v1/jobs/$MV/move?printer=nosuch")
like "move to an unknown printer: 404" "$out" 'HTTP 404$'
like "... naming the printer (not just an unknown route)" "$out" 'nosuch'
upload "$T/a4-color.pdf" "order=ORD-move-color&color=color"
MC=$(id_of)
out=$(api POST "/v1/jobs/$MC/move?printer=small")
like "move of a colour job to the monochrome printer: 409" "$out" 'HTTP 409$'
out=$(api POST "/v1/jobs/$C/move?printer=big")
like "move of a printed job: 409" "$out" 'HTTP 409$'
api POST /v1/printers/big/enable > /dev/null
check "the colour job prints on big" wait_until 60 job_is "$MC" .state printed
check "the moved job does not print on big meanwhile" stays 2 bash -c "[ -z \"\$(grep -E 'IPP_JOB_NAME=copees-[0-9a-f]+-$MV( |\$)' '$(printer_log big)')\" ]"
api POST /v1/printers/small/enable > /dev/null
check "the moved job prints once small is enabled" wait_until 60 job_is "$MV" .state printed
is "... on small" "$(job_field "$MV" .printer)" small
check "... which received it (big did not)" on_printer small "$MV"

# ------------------------------------------------------------ deadline-at-risk
curl -sN --unix-socket "$SOCK" http://copees/v1/events > "$T/events" 2>/dev/null &
EV=$!
check "the event stream connects" wait_until 10 grep -q '^retry:' "$T/events"
api POST /v1/printers/big/disable > /dev/null
api POST /v1/printers/small/disable > /dev/null
upload "$T/a4.pdf" "order=ORD-risk&due=$(rfc3339 '+5 minutes')"
R=$(id_of)
check "due in 5 min with delivery_lead 30m: deadline-at-risk" wait_until 10 has_reason "$R" deadline-at-risk
job_events() {    # job_events ID: the job's frames on the stream, one JSON a line
    grep '^data: ' "$T/events" | sed 's/^data: //' | jq -c --argjson id "$1" 'select(.id? == $id)'
}
risk_event() { job_events "$1" | jq -e 'select(.state_reasons | index("deadline-at-risk"))' >/dev/null; }
check "... announced as a job event on GET /v1/events" wait_until 10 risk_event "$R"
api POST /v1/printers/big/enable > /dev/null
api POST /v1/printers/small/enable > /dev/null
upload "$T/a4.pdf" "order=ORD-norisk&due=$(rfc3339 '+3 hours')"
NR=$(id_of)
check "a job due in 3 h prints" wait_until 60 job_is "$NR" .state printed
check "... its events reached the stream" test -n "$(job_events "$NR")"
if risk_event "$NR"; then not_ok "... none of them says deadline-at-risk"
else ok "... none of them says deadline-at-risk"; fi
check "... and it is not in its state_reasons" bash -c "! curl -s --unix-socket '$SOCK' http://x/v1/jobs/$NR | jq -e '.state_reasons | index(\"deadline-at-risk\")'"
kill "$EV" 2>/dev/null; wait "$EV" 2>/dev/null
api POST /v1/printers/big/disable > /dev/null
api POST /v1/printers/small/disable > /dev/null

# ------------------------------------------------------------ one order together
# Printers disabled; the jobs of ORD-GROUP are uploaded between jobs of
# other orders (same default due, so id order would interleave them).
grp=() oth=()
for what in other group other other group other group other; do
    if [ "$what" = group ]; then
        upload "$T/a4.pdf" "order=ORD-GROUP" -H "Idempotency-Key: group-${#grp[@]}"
        is "group job ${#grp[@]} is a new job (201)" "$STATUS" 201
        grp+=("$(id_of)")
    else
        upload "$T/a4.pdf" "order=ORD-other-${#oth[@]}"
        oth+=("$(id_of)")
    fi
done
api POST /v1/printers/big/enable > /dev/null
api POST /v1/printers/small/enable > /dev/null
check "the group and the other jobs print" wait_until 90 all_printed "${grp[@]}" "${oth[@]}" "$R"
gp=$(for i in "${grp[@]}"; do job_field "$i" .printer; done | sort -u)
is "the three jobs of one order went to one printer" "$(wc -l <<<"$gp")" 1
seq_at=$(printed_at "$gp" | tr '\n' ' ')
pat="(^| )${grp[0]} ${grp[1]} ${grp[2]}( |$)"
like "... and printed there one after the other" "$seq_at" "$pat"

# ------------------------------------------------------------ SIGHUP
add_printer a5 --media=iso_a5_148x210mm -s 20
printer_section a5 a5 iso_a5_148x210mm false false 20 >> "$CONF"
njobs_before=$(curl -s --unix-socket "$SOCK" 'http://x/v1/jobs?which=all&limit=1000' | jq '.jobs | length')
kill -HUP "$COPEESD_PID"
check "after SIGHUP the new printer is in GET /v1/printers" wait_until 10 printer_is a5 .name a5
check "the waiting A5 job prints on it" wait_until 60 job_is "$N" .state printed
is "... on a5" "$(job_field "$N" .printer)" a5
check "... which received it" on_printer a5 "$N"
check "... and no-capable-printer is gone" bash -c "! curl -s --unix-socket '$SOCK' http://x/v1/jobs/$N | jq -e '.state_reasons | index(\"no-capable-printer\")'"
njobs_after=$(curl -s --unix-socket "$SOCK" 'http://x/v1/jobs?which=all&limit=1000' | jq '.jobs | length')
is "no job lost over the reload" "$njobs_after" "$njobs_before"
is "copeesd is still the same process" "$(kill -0 "$COPEESD_PID" && echo alive)" alive
notprinted=$(curl -s --unix-socket "$SOCK" 'http://x/v1/jobs?which=all&limit=1000' |
             jq -r '.jobs[] | select(.state != "printed") | "\(.id):\(.state)"' | tr '\n' ' ')
is "every job uploaded here ended printed" "$notprinted" ""
dups=$(cat "$T"/cups/ipp-jobs-*.log | sed -n 's/.*IPP_JOB_NAME=\(copees-[0-9a-f]*-[0-9]*\).*/\1/p' | sort | uniq -d | tr '\n' ' ')
is "no job was printed twice" "$dups" ""
done_testing
