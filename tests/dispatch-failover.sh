#!/bin/bash
# Failover between two equal printers (p1, p2: A4, monochrome, one-sided)
# behind one private cupsd, each a real ippeveprinter:
#   1. p1 stopped in CUPS (cupsdisable): its jobs not yet printing go back
#      to queued and print on p2; the one CUPS had started there stays at
#      p1 (printer-stopped, an "interrupted" event), never reaches p2, and
#      prints on p1 once it is enabled again; GET /v1/printers shows p1
#      stopped, paused;
#   2. p1 out of paper (media-empty, set through ippeveprinter's own
#      /media form): the job that reached it waits there (media-needed),
#      the one behind it goes to p2; GET /v1/printers shows the reason;
#   3. p1's ippeveprinter killed mid-queue: the job waiting behind the one
#      it was printing moves to p2 and prints;
#   4. cupsd stopped: uploads still get 201, /v1/health answers at once
#      with "cups": "unreachable", jobs wait queued and print by themselves
#      once cupsd is back.
#
# What CUPS 2.4.2 shows in each case (measured; the daemon only sees the
# queue): cupsdisable -> printer-state stopped, reason paused, the job it
# was printing back to pending with printer-stopped; media-empty ->
# printer-state processing, reasons media-empty-warning and
# media-needed-warning while a job waits at the printer (nothing while the
# queue is idle: CUPS learns the printer's reasons from the job's
# backend); killed printer -> printer-state processing, no lasting reason
# (the ipp backend sets connecting-to-device and clears it at once, then
# retries with printer-state-message "The printer may not exist or is
# unavailable at this time."), and when the printer was killed after it
# took the document, only cups-waiting-for-job-completed while the backend
# polls it forever.
. "$(dirname "$0")/lib.sh"

start_cups
add_printer p1 --media=iso_a4_210x297mm -s 20
add_printer p2 --media=iso_a4_210x297mm -s 20
PRINTERS="$(printer_section p1 p1 iso_a4_210x297mm false false 20 'max_inflight = 2')
$(printer_section p2 p2 iso_a4_210x297mm false false 20 'max_inflight = 2')"
DEFAULT_PRINTER=no write_conf "$PRINTERS"     # [cups] poll_interval = 200ms
start_copeesd
"$MKPDF" --pages 1 "$T/a4.pdf" || bail "mkpdf failed"

id_of() { jq -r .id <<<"$BODY"; }
all_printed() { local i; for i in "$@"; do job_is "$i" .state printed || return 1; done; }
got() { [ -n "$(received_line "$1" "$2")" ]; }     # got PRINTER ID
# jobs_where JQ-COND: ids of our not-completed jobs matching the condition
jobs_where() {
    curl -s --unix-socket "$SOCK" 'http://x/v1/jobs?limit=1000' | jq -r ".jobs[] | select($1) | .id"
}
upload_n() {      # upload_n N TAG: N one-page jobs; their ids in IDS
    local i
    IDS=()
    for i in $(seq "$1"); do
        upload "$T/a4.pdf" "order=ORD-$2-$i"
        [ "$STATUS" = 201 ] || diag "upload $2-$i: $STATUS $BODY"
        IDS+=("$(id_of)")
    done
}
waiting_on() {    # waiting_on PRINTER: a job of ours is sent to PRINTER, not printing
    [ -n "$(jobs_where ".printer == \"$1\" and .state == \"sent\"")" ]
}

# ------------------------------------------------------------ 1. stopped in CUPS
printer_knobs p1 DELAY=4
printer_knobs p2 DELAY=1
upload_n 6 stop
printing_on() { [ -n "$(jobs_where ".printer == \"$1\" and .state == \"printing\"")" ]; }
busy_p1() { printing_on p1 && waiting_on p1; }
# Stop p1 while it prints one job (4 s) with another waiting behind it, as
# soon as both show: copeesd's states lag CUPS's by up to a poll (200 ms
# here), and stopping it when only the waiting one showed could catch the
# first job finishing, CUPS starting the second and the printer taking it
# while copeesd still read "sent" (CI saw that once: that job then printed
# on both printers, which is what stopping a printer mid-job may do).
check "p1 has a job waiting behind the one it prints" wait_until 30 busy_p1
# one snapshot, just before the stop: once stopped, CUPS puts the printing
# job back to pending and copeesd soon reads it "sent" too
snap=$(curl -s --unix-socket "$SOCK" 'http://x/v1/jobs?limit=1000')
cupsdisable p1 || diag "cupsdisable p1 failed"
# Nothing from here on needs p2 slow: the rest drain through it at its pace.
printer_knobs p2
moved=$(jq -r '.jobs[] | select(.printer == "p1" and .state != "printing") | .id' <<<"$snap" | tr '\n' ' ')
stopped_at=$(jq -r '.jobs[] | select(.printer == "p1" and .state == "printing") | .id' <<<"$snap" | tr '\n' ' ')
diag "on p1 and not printing when it stopped: $moved"
check "GET /v1/printers shows p1 stopped" wait_until 10 printer_is p1 .state stopped
like "... with the reason paused" "$(printer_field p1 '.state_reasons | join(",")')" 'paused'
# CUPS sets the job p1 was printing back to pending: part of it may be on
# p1's tray, so it stays there, marked, and never goes to p2; every other
# job must print while p1 stays stopped.
check "there was a job printing at p1 when it stopped" test -n "$stopped_at"
interrupted() {   # interrupted ID: at p1, sent, printer-stopped, one event
    job_is "$1" .printer p1 && job_is "$1" .state sent &&
        [ "$(job_field "$1" '.state_reasons | index("printer-stopped") != null')" = true ] &&
        [ "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM events WHERE job_id = $1 AND type = 'interrupted'")" = 1 ]
}
for j in $stopped_at; do
    check "job $j (printing at p1 when it stopped) stays there: sent, printer-stopped, an interrupted event" \
        wait_until 20 interrupted "$j"
done
rest=()
for j in "${IDS[@]}"; do [[ " $stopped_at " == *" $j "* ]] || rest+=("$j"); done
check "the other jobs print while p1 stays stopped" wait_until 90 all_printed "${rest[@]}"
for j in $moved; do
    is "job $j (on p1, not printing) ended on p2" "$(job_field "$j" .printer)" p2
    check "... p2 received it" got p2 "$j"
    check "... p1 never did" bash -c "! grep -qE 'IPP_JOB_NAME=copees-[0-9a-f]+-$j( |\$)' '$(printer_log p1)'"
done
check "there was such a job to move" test -n "$moved"
for j in $stopped_at; do
    check "job $j is still at p1 once the others printed (one interrupted event)" interrupted "$j"
    check "... and p2 never received it" bash -c "! grep -qE 'IPP_JOB_NAME=copees-[0-9a-f]+-$j( |\$)' '$(printer_log p2)'"
done
printer_knobs p1     # its job printing again once enabled needs no 4 s
cupsenable p1
check "all six print once p1 is enabled again" wait_until 60 all_printed "${IDS[@]}"
for j in $stopped_at; do
    is "job $j printed at p1" "$(job_field "$j" .printer)" p1
    is "... without the printer-stopped reason" "$(job_field "$j" '.state_reasons | index("printer-stopped")')" null
done
check "p1 is idle again in GET /v1/printers" wait_until 20 printer_is p1 .state idle

# An admin moves a job interrupted at a stopped printer: it prints on the
# other printer, its event says where it had started, and once the first
# queue is enabled again CUPS has nothing of it left to print there.
# interrupt_one TAG: one job, printing at p1 (p2 disabled meanwhile),
# interrupted by stopping p1 (slow again for this: 4 s a job); its id in J
printer_knobs p1 DELAY=4
interrupt_one() {
    api POST /v1/printers/p2/disable > "$T/disable.out"
    like "p2 disabled (our switch), so the next job goes to p1" "$(tail -1 "$T/disable.out")" 'HTTP 200'
    upload_n 1 "$1"
    J=${IDS[0]}
    check "job $J prints at p1" wait_until 30 bash -c "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/$J | jq -r '.printer + \" \" + .state')\" = 'p1 printing' ]"
    cupsdisable p1 || diag "cupsdisable p1 failed"
    check "... and is interrupted there when p1 stops" wait_until 20 interrupted "$J"
    api POST /v1/printers/p2/enable > "$T/enable.out"
}
interrupt_one interrupt
M=$J
for _ in $(seq 20); do      # 409 busy while a poll asks CUPS about it: retry
    api POST "/v1/jobs/$M/move?printer=p2" > "$T/move.out"
    grep -q '"busy"' "$T/move.out" || break
    sleep 0.1
done
like "an admin moves it to p2: 200" "$(tail -1 "$T/move.out")" 'HTTP 200'
is "... its event says it had started printing at p1" "$(sqlite3 "$T/state/copees.db" \
    "SELECT count(*) FROM events WHERE job_id = $M AND detail LIKE '%moved to printer p2; it had started printing at printer p1%'")" 1
check "... it prints on p2" wait_until 60 job_is "$M" .state printed
is "... printed at p2" "$(job_field "$M" .printer)" p2
check "... which received it" got p2 "$M"
cupsenable p1
check "p1 is idle again, with nothing of job $M left in CUPS" wait_until 20 bash -c \
    "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/printers | jq -r '.printers[] | select(.name == \"p1\") | .state')\" = idle ] && [ \"\$(lpstat -o p1 | wc -l)\" = 0 ]"
n1=$(grep -cE "IPP_JOB_NAME=copees-[0-9a-f]+-$M( |\$)" "$(printer_log p1)")
check "... p1 received it at most once (before it stopped)" test "$n1" -le 1

# An interrupted job is still tracked while its printer stays stopped:
# canceled and purged in CUPS meanwhile (cancel -x at the stopped queue),
# it fails there (CUPS still answers "canceled" for it, or no longer knows
# it); it is not sent to p2, nor is its printer-stopped reason kept.
interrupt_one purged
G=$J
cancel -x "$(job_field "$G" .cups_job_id)" || diag "cancel -x failed"
check "... and, canceled in CUPS, fails while p1 stays stopped" \
    wait_until 20 job_is "$G" .state failed
like "... as canceled there or lost, without printer-stopped" \
    "$(job_field "$G" '.state_reasons | join(",")')" '^(job-canceled-at-printer|cups-job-lost)$'
is "... still at p1" "$(job_field "$G" .printer)" p1
check "... never sent to p2 (2 s)" stays 2 bash -c "! grep -qE 'IPP_JOB_NAME=copees-[0-9a-f]+-$G( |\$)' '$(printer_log p2)'"
cupsenable p1
check "p1 is idle again" wait_until 20 printer_is p1 .state idle
printer_knobs p1

# ------------------------------------------------------------ 2. out of paper
cups_env printer-media p1 empty > "$T/media.out" 2>&1; rc=$?
is "p1 reports media-empty (ippeveprinter's /media form)" "$rc" 0
printer_knobs p2 DELAY=2
upload_n 4 paper
check "one of them waits at p1 (printing, out of paper)" wait_until 30 bash -c \
    "curl -s --unix-socket '$SOCK' 'http://x/v1/jobs?limit=1000' | jq -e '[.jobs[] | select(.printer == \"p1\" and .state == \"printing\")] | length == 1'"
X=$(jobs_where '.printer == "p1" and .state == "printing"' | head -1)
diag "waiting at p1 (out of paper): $X"
check "CUPS shows p1 out of media" wait_until 20 bash -c "lpstat -l -p p1 | grep -q 'media-empty'"
check "GET /v1/printers shows p1's media-empty reason" wait_until 10 bash -c \
    "curl -s --unix-socket '$SOCK' http://x/v1/printers | jq -e '.printers[] | select(.name == \"p1\") | .state_reasons | map(select(startswith(\"media-empty\"))) | length > 0'"
# Nothing from here on needs p2 slow: the other three print there at its pace.
printer_knobs p2
rest=()
for j in "${IDS[@]}"; do [ "$j" = "$X" ] || rest+=("$j"); done
check "the other three print on p2 meanwhile (sent there, or taken back from p1)" \
    wait_until 60 all_printed "${rest[@]}"
for j in "${rest[@]}"; do
    is "... job $j on p2" "$(job_field "$j" .printer)" p2
done
none_on_p1() { local j; for j in "$@"; do got p1 "$j" && return 1; done; return 0; }
check "p1 received none of them" none_on_p1 "${rest[@]}"
is "the job waiting at p1 is still there (printing)" "$(job_field "${X:-0}" .state)" printing
cups_env printer-media p1 loaded > "$T/media.out" 2>&1; rc=$?
is "paper again in p1" "$rc" 0
check "the waiting job then prints on p1" wait_until 60 job_is "${X:-0}" .state printed
check "... which received it" got p1 "${X:-0}"
check "all four printed" wait_until 60 all_printed "${IDS[@]}"
check "p1 is back without the reason" wait_until 30 bash -c \
    "curl -s --unix-socket '$SOCK' http://x/v1/printers | jq -e '.printers[] | select(.name == \"p1\") | .state_reasons | map(select(startswith(\"media-empty\"))) | length == 0'"

# ------------------------------------------------------------ 3. printer killed
printer_knobs p1 DELAY=4
printer_knobs p2 DELAY=1
upload_n 6 kill
check "p1 prints one job with another waiting behind it" wait_until 30 bash -c \
    "[ -n \"\$(curl -s --unix-socket '$SOCK' 'http://x/v1/jobs?limit=1000' | jq -r '.jobs[] | select(.printer == \"p1\" and .state == \"printing\") | .id')\" ] &&
     [ -n \"\$(curl -s --unix-socket '$SOCK' 'http://x/v1/jobs?limit=1000' | jq -r '.jobs[] | select(.printer == \"p1\" and .state == \"sent\") | .id')\" ]"
cups_env kill-printer p1 > "$T/kill.out" 2>&1 || diag "kill-printer: $(cat "$T/kill.out")"
killed_at=$(jobs_where '.printer == "p1" and .state == "printing"' | tr '\n' ' ')
behind=$(jobs_where '.printer == "p1" and .state != "printing"' | tr '\n' ' ')
diag "p1 killed while printing $killed_at with $behind behind"
printer_knobs p2     # the jobs left drain through p2 at its pace
check "there was a job behind" test -n "$behind"
for j in $behind; do
    check "job $j (waiting behind the dead printer) prints" wait_until 90 job_is "$j" .state printed
    is "... on p2" "$(job_field "$j" .printer)" p2
    check "... which received it" got p2 "$j"
done
others=()
for j in "${IDS[@]}"; do [[ " $killed_at " == *" $j "* ]] || others+=("$j"); done
check "every job not at the dead printer prints" wait_until 90 all_printed "${others[@]}"
printer_knobs p1     # before it is back: what it prints again needs no 4 s
cups_env restart-printer p1 > "$T/kill.out" 2>&1 || diag "restart-printer: $(cat "$T/kill.out")"
for j in $killed_at; do
    wait_until 30 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$j | jq -e '.state != \"printing\"'"
    diag "job $j, printing when p1 died: now $(job_field "$j" '.state + " " + (.state_reasons | join(","))'), \
received by p1: $(got p1 "$j" && echo yes || echo no), by p2: $(got p2 "$j" && echo yes || echo no)"
done

# ------------------------------------------------------------ 4. CUPS unreachable
cups_env stop-cupsd > "$T/cupsd.out" 2>&1 || diag "stop-cupsd: $(cat "$T/cupsd.out")"
check "GET /v1/health notices: cups unreachable" wait_until 20 bash -c "[ \"\$(curl -s --max-time 5 --unix-socket '$SOCK' http://copees/v1/health | jq -r .cups)\" = unreachable ]"
t=$(curl -s -o "$T/health.json" -w '%{time_total}' --max-time 5 --unix-socket "$SOCK" http://copees/v1/health)
diag "GET /v1/health took $t s with cupsd down"
check "... and answers within 1 s" awk -v t="$t" 'BEGIN { exit !(t > 0 && t < 1) }'
is "... saying so" "$(jq -r .cups "$T/health.json")" unreachable
upload_n 2 outage
is "an upload with cupsd down still gets 201" "$STATUS" 201
check "the jobs stay queued while cupsd is down (3 s)" stays 3 bash -c \
    "[ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/${IDS[0]} | jq -r .state)\" = queued ] &&
     [ \"\$(curl -s --unix-socket '$SOCK' http://x/v1/jobs/${IDS[1]} | jq -r .state)\" = queued ]"
cups_env start-cupsd > "$T/cupsd.out" 2>&1; rc=$?
is "cupsd is back" "$rc" 0
check "the jobs print by themselves" wait_until 90 all_printed "${IDS[@]}"
check "GET /v1/health says cups ok again" wait_until 20 bash -c "[ \"\$(curl -s --unix-socket '$SOCK' http://copees/v1/health | jq -r .cups)\" = ok ]"
# No job reached two printers.  A job a printer was printing when it
# failed may have been received there twice (CUPS starts it again when the
# queue is enabled); no other job may be received twice.
names() { sed -n 's/.*IPP_JOB_NAME=copees-[0-9a-f]*-\([0-9]*\).*/\1/p' "$@" | sort -u; }
both=$(comm -12 <(names "$(printer_log p1)") <(names "$(printer_log p2)") | tr '\n' ' ')
is "no job was received by both printers, but the one an admin moved" "$both" "${M:-?} "
dups=$(cat "$T"/cups/ipp-jobs-*.log | sed -n 's/.*IPP_JOB_NAME=copees-[0-9a-f]*-\([0-9]*\).*/\1/p' | sort | uniq -d | tr '\n' ' ')
diag "received twice by the printers: ${dups:-none} (printing at a failure: $stopped_at $killed_at)"
bad=""
for j in $dups; do [[ " $stopped_at $killed_at ${M:-} " == *" $j "* ]] || bad+="$j "; done
is "no other job was received twice" "$bad" ""
done_testing
