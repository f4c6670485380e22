#!/bin/bash
# copeesctl against the real copeesd, a private cupsd and ippeveprinter:
# every read (-o, -p, -a, -r, -t, -l, -W, --json) in lpstat's shapes,
# every command the daemon serves (enable, disable -r, accept, reject -r,
# move, hold, release, cancel) with its effect checked through the API,
# the socket's choice (-S over COPEES_SOCKET over the default), each exit
# status (2 usage, 3 not found, 4 not allowed, 5 unreachable, 6 conflict)
# with its message on stderr and nothing on stdout, the bash completion,
# and the man page's formatting.
. "$(dirname "$0")/lib.sh"

# ippeveprinter takes 6 s per job, so a printer is seen "now printing".
printf '#!/bin/sh\nsleep 6\n' > "$T/slow-print"
chmod 0755 "$T/slow-print"
IPPEVE_CMD=$T/slow-print start_cups
# A socket everyone may connect to, so that a refusal of nobody is the
# daemon's (403) and not the file's; a long complaint window keeps
# printed documents.
DAEMON_EXTRA='socket_mode = 0666' COMPLAINT_WINDOW=1h write_conf '
[printer spare]
queue = test1
media = iso_a4_210x297mm
color = false
duplex = false
ppm = 20'
start_copeesd

DATE='[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9] [0-9]{4}'
TAB=$'\t'

# run ARGS...: copeesctl -S $SOCK ARGS; sets OUT, ERR and RC
run() {
    OUT=$("$COPEESCTL" -S "$SOCK" "$@" 2>"$T/stderr"); RC=$?
    ERR=$(cat "$T/stderr")
}
# fails RC DESCRIPTION COMMAND...: exits RC, says why on stderr, prints nothing
fails() {
    local want=$1 d=$2; shift 2
    OUT=$("$@" 2>"$T/stderr"); RC=$?
    ERR=$(cat "$T/stderr")
    is "$d: exit $want" "$RC" "$want"
    is "... nothing on stdout" "$OUT" ""
    like "... a message on stderr" "$ERR" '^copeesctl: .+'
}
printer() {       # printer NAME JQ-FILTER: a field of GET /v1/printers
    curl -s --unix-socket "$SOCK" http://copees/v1/printers \
        | jq -c --arg n "$1" ".printers[] | select(.name == \$n) | $2"
}
printer_is() {    # printer_is NAME JQ-FILTER VALUE (for wait_until)
    [ "$(printer "$1" "$2")" = "$3" ]
}
nlines() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }
line() { sed -n "$2p" <<<"$1"; }      # line TEXT N
block() {         # block OUTPUT NAME: a job's line and its detail lines
    awk -v n="$2" '/^[^\t]/ { on = ($1 == n) } on' <<<"$1"
}
lpdate() {        # lpdate RFC3339: the date as lpstat prints it, local time
    LC_ALL=C date -d "$1" '+%a %b %e %H:%M:%S %Y'
}

# ---------------------------------------------------------------- reads, empty
check "both printers are idle in CUPS" wait_until 30 \
    bash -c "[ \"\$(curl -s --unix-socket '$SOCK' http://copees/v1/printers | jq -r '[.printers[].state] | join(\" \")')\" = 'idle idle' ]"
run -r
is "-r: exit 0" "$RC" 0
is "-r: scheduler is running" "$OUT" "scheduler is running"
run --json -r
is "--json -r: the health document" "$(jq -c '[.ready, .cups]' <<<"$OUT")" '[true,"ok"]'
run -p
is "-p: one line per printer" "$(nlines "$OUT")" 2
like "-p: atelier is idle, lpstat's shape" "$(line "$OUT" 1)" "^printer atelier is idle\.  enabled since $DATE\$"
like "-p: spare is idle" "$(line "$OUT" 2)" "^printer spare is idle\.  enabled since $DATE\$"
is "-p: the date is the printer's state_since, local time" "${OUT%%$'\n'*}" \
    "printer atelier is idle.  enabled since $(lpdate "$(printer atelier .state_since | jq -r .)")"
run -p spare
like "-p PRINTER: that printer only" "$OUT" "^printer spare is idle\.  enabled since $DATE\$"
run --json -p
is "--json -p: every printer" "$(jq -c '[.printers[].name]' <<<"$OUT")" '["atelier","spare"]'
run --json -p spare
is "--json -p PRINTER: that printer" "$(jq -c '[.printers[].name]' <<<"$OUT")" '["spare"]'
run -a
like "-a: lpstat's accepting lines" "$OUT" "^atelier accepting requests since $DATE
spare accepting requests since $DATE\$"
run -a atelier
like "-a PRINTER: that printer only" "$OUT" "^atelier accepting requests since $DATE\$"
run --json -a atelier
is "--json -a PRINTER" "$(jq -c '[.printers[] | [.name, .accepting]]' <<<"$OUT")" '[["atelier",true]]'
run -o
is "-o on an empty spool: nothing, exit 0" "$RC:$OUT" "0:"
run --json -o
is "--json -o on an empty spool" "$(jq -c . <<<"$OUT")" '{"jobs":[],"next":null}'
run -l -p atelier
like "-l -p: CUPS's reasons" "$OUT" "${TAB}Alerts: none"
like "-l -p: the CUPS queue" "$OUT" "${TAB}Queue: test1 \(CUPS\)"
like "-l -p: media" "$OUT" "${TAB}Media: iso_a4_210x297mm, iso_a3_297x420mm"
like "-l -p: colour, duplex, speed" "$OUT" "${TAB}Color: yes  Duplex: yes  Speed: 30 ppm"
like "-l -p: jobs in CUPS" "$OUT" "${TAB}Jobs in CUPS: 0 of at most 2"

# ---------------------------------------------------------------- printer switches
run disable -r "toner change" spare
is "disable -r REASON: exit 0, silent" "$RC:$OUT" "0:"
is "... the printer is disabled, with the reason" "$(printer spare '[.enabled, .reason]')" '[false,"toner change"]'
run -p spare
is "-p: a disabled printer is two lines" "$(nlines "$OUT")" 2
like "... printer NAME disabled since DATE -" "$(line "$OUT" 1)" "^printer spare disabled since $DATE -\$"
is "... then the reason, indented" "$(line "$OUT" 2)" "${TAB}toner change"
run disable atelier
is "disable without a reason: exit 0" "$RC" 0
is "... disabled, no reason" "$(printer atelier '[.enabled, .reason]')" '[false,null]'
run -p atelier
is "-p: lpstat's 'reason unknown' when none was given" "$(line "$OUT" 2)" "${TAB}reason unknown"
run reject -r "closing at 18:00" spare
is "reject -r REASON: exit 0" "$RC" 0
is "... not accepting, with the reason" "$(printer spare '[.accepting, .reason]')" '[false,"closing at 18:00"]'
run -a spare
like "-a: NAME not accepting requests since DATE -" "$(line "$OUT" 1)" "^spare not accepting requests since $DATE -\$"
is "... then the reason" "$(line "$OUT" 2)" "${TAB}closing at 18:00"
is "... and nothing more" "$(nlines "$OUT")" 2
run --json reject spare
is "--json on a command: the daemon's printer" "$(jq -c '[.name, .accepting]' <<<"$OUT")" '["spare",false]'
run -p
like "-p: both printers disabled" "$OUT" "^printer atelier disabled since $DATE -
${TAB}reason unknown
printer spare disabled since $DATE -
${TAB}closing at 18:00\$"

# ---------------------------------------------------------------- jobs
"$MKPDF" --pages 3 "$T/a.pdf"
"$MKPDF" --pages 1 "$T/b.pdf"
upload "$T/a.pdf" "order=ORD-1&copies=2&color=color"
J1=$(jq -r .id <<<"$BODY")
upload "$T/b.pdf" "order=ORD-2&due=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)"
J2=$(jq -r .id <<<"$BODY")
upload "$T/b.pdf" "order=ORD-3&hold=true"
J3=$(jq -r .id <<<"$BODY")
is "three jobs wait (no printer is enabled)" "$(for j in $J1 $J2 $J3; do job_field "$j" .state; done | xargs)" "queued queued held"
SA=$(stat -c %s "$T/a.pdf") SB=$(stat -c %s "$T/b.pdf")

run -o
is "-o: a line per job" "$(nlines "$OUT")" 3
like "-o: a job without a printer is copees-ID, lpstat's shape" "$(line "$OUT" 1)" "^copees-$J1 +ORD-1 +$SA +$DATE\$"
is "... its date is created_at in local time" "${OUT%%$'\n'*}" \
    "$(printf '%-23s %-13s %8s   %s' "copees-$J1" ORD-1 "$SA" "$(lpdate "$(job_field "$J1" .created_at)")")"
like "-o: second job" "$(line "$OUT" 2)" "^copees-$J2 +ORD-2 +$SB +$DATE\$"
like "-o: the held job is listed (not completed)" "$(line "$OUT" 3)" "^copees-$J3 +ORD-3 +$SB +$DATE\$"

run move "$J1" atelier
is "move ID PRINTER: exit 0" "$RC:$OUT" "0:"
is "... the job is routed there and still waits" "$(job_field "$J1" '[.printer, .state] | join(" ")')" "atelier queued"
run -o atelier
like "-o PRINTER: the moved job as PRINTER-ID" "$OUT" "^atelier-$J1 +ORD-1 +$SA +$DATE\$"
run -o copees
is "-o copees: the jobs without a printer" "$(awk '{ print $1 }' <<<"$OUT" | xargs)" "copees-$J2 copees-$J3"
run -o atelier,copees
is "-o a,b: a comma list" "$(nlines "$OUT")" 3
run --json -o atelier
is "--json -o PRINTER" "$(jq -c '[.jobs[].id]' <<<"$OUT")" "[$J1]"
fails 6 "move to a printer that is not accepting" "$COPEESCTL" -S "$SOCK" move "$J2" spare
like "... the daemon's reason" "$ERR" "not accept"
is "... the job stays unrouted" "$(job_field "$J2" .printer)" null
fails 6 "move of a held job" "$COPEESCTL" -S "$SOCK" move "$J3" atelier
fails 3 "move to an unknown printer" "$COPEESCTL" -S "$SOCK" move "$J2" nosuch
fails 6 "move of a colour job to a monochrome printer" "$COPEESCTL" -S "$SOCK" move "atelier-$J1" spare
is "... it stays where it was" "$(job_field "$J1" .printer)" atelier

check "the job due in 10 minutes is marked deadline-at-risk" \
    wait_until 30 bash -c "curl -s --unix-socket '$SOCK' http://copees/v1/jobs/$J2 | jq -e '.state_reasons | index(\"deadline-at-risk\")'"
run -l -o
b=$(block "$OUT" "copees-$J2")
like "-l: the job line first" "$b" "^copees-$J2 +ORD-2 +$SB +$DATE
${TAB}Status: queued
${TAB}Alerts: deadline-at-risk
${TAB}queued for copees
"
like "-l: due, delivery slot, priority" "$b" "${TAB}Due: $DATE \(slot [0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]\)  Priority: 50"
is "-l: the due date is the job's due in local time" "$(grep -o 'Due: [^(]*' <<<"$b" | sed 's/ *$//')" \
    "Due: $(lpdate "$(job_field "$J2" .due)")"
like "-l: pages and copies" "$b" "${TAB}Pages: 1  Copies: 1  Pages printed: 0"
like "-l: the document is present" "$b" "${TAB}Document: present"
like "-l: no complaint" "$b" "${TAB}Complaint: none"
b=$(block "$OUT" "atelier-$J1")
like "-l: another job's copies, media, colour" "$b" "${TAB}Pages: 3  Copies: 2  Pages printed: 0
${TAB}Media: iso_a4_210x297mm  Sides: one-sided  Color: color"
like "-l: queued for its printer" "$b" "${TAB}queued for atelier"
like "-l: the held job's status" "$(block "$OUT" "copees-$J3")" "${TAB}Status: held"

run hold "$J2"
is "hold: exit 0" "$RC:$OUT" "0:"
is "... the job is held" "$(job_field "$J2" .state)" held
run -l -o copees
like "... -l says so" "$(block "$OUT" "copees-$J2")" "${TAB}Status: held"
run release "copees-$J2"
is "release DEST-ID: exit 0" "$RC" 0
is "... the job is queued again" "$(job_field "$J2" .state)" queued
run release "$J2"
is "release of a queued job: a no-op, exit 0" "$RC:$(job_field "$J2" .state)" "0:queued"
run cancel "$J3"
is "cancel: exit 0" "$RC:$OUT" "0:"
is "... the job is canceled, its document shredded" "$(job_field "$J3" '[.state, .document] | join(" ")')" "canceled shredded"
fails 6 "cancel of a canceled job" "$COPEESCTL" -S "$SOCK" cancel "$J3"
fails 6 "release of a canceled job" "$COPEESCTL" -S "$SOCK" release "$J3"
fails 6 "hold of a canceled job" "$COPEESCTL" -S "$SOCK" hold "$J3"
fails 2 "shred ORD-ID: a prefix that is not the job's printer (another customer's job)" \
    "$COPEESCTL" -S "$SOCK" shred "ORD-$J1"
like "... says where the job is" "$ERR" "job $J1 is at atelier, not ORD; nothing done"
is "... the job's document is untouched" "$(job_field "$J1" .document)" present
fails 2 "hold PRINTER-ID with another printer than the job's" "$COPEESCTL" -S "$SOCK" hold "spare-$J1"
is "... the job is not held" "$(job_field "$J1" .state)" "$(job_field "$J1" .state | grep -v held)"
run hold x "$J2"
is "a bad target among several: exit 2" "$RC" 2
is "... the others are still acted on" "$(job_field "$J2" .state)" held
run release "$J2"
is "... (released again)" "$RC:$(job_field "$J2" .state)" "0:queued"

run -o
is "-o: the canceled job is gone" "$(awk '{ print $1 }' <<<"$OUT" | xargs)" "atelier-$J1 copees-$J2"
run -W not-completed -o
is "-W not-completed: the same" "$(awk '{ print $1 }' <<<"$OUT" | xargs)" "atelier-$J1 copees-$J2"
run -W completed -o
like "-W completed: the canceled job" "$OUT" "^copees-$J3 +ORD-3 +$SB +$DATE\$"
run -W all -o
is "-W all: every job" "$(awk '{ print $1 }' <<<"$OUT" | xargs)" "atelier-$J1 copees-$J2 copees-$J3"
run -l -W completed -o
like "-l: a shredded document and when" "$OUT" "${TAB}Status: canceled
.*${TAB}Document: shredded $DATE
${TAB}Complaint: none"
for w in completed not-completed all; do
    run --json -W "$w" -o
    case $w in completed) want="[$J3]" ;; not-completed) want="[$J1,$J2]" ;; all) want="[$J1,$J2,$J3]" ;; esac
    is "--json -W $w -o" "$(jq -c '[.jobs[].id]' <<<"$OUT")" "$want"
done

# ---------------------------------------------------------------- printing
run enable atelier
is "enable: exit 0" "$RC" 0
is "... the printer is enabled again" "$(printer atelier .enabled)" true
check "atelier prints one of its jobs" wait_until 60 \
    bash -c "'$COPEESCTL' -S '$SOCK' -p atelier | grep -q 'now printing'"
run -p atelier
like "-p: printer NAME now printing DEST-ID, lpstat's shape" "$OUT" \
    "^printer atelier now printing atelier-[0-9]+\.  enabled since $DATE\$"
like "... the job it names is one of ours there" "$OUT" "now printing atelier-($J1|$J2)\."
pj=$(sed -n 's/.* now printing atelier-\([0-9]*\)\..*/\1/p' <<<"$OUT")
run -l -o atelier
b=$(block "$OUT" "atelier-$pj")
like "-l: the printing job's status" "$b" "${TAB}Status: printing"
like "-l: its CUPS job id" "$b" "${TAB}CUPS job: $(job_field "$pj" .cups_job_id)  Reprints: 0"
check "both jobs are printed" wait_until 90 bash -c \
    "[ \"\$(curl -s --unix-socket '$SOCK' 'http://copees/v1/jobs?which=all' | jq '[.jobs[] | select(.state == \"printed\")] | length')\" = 2 ]"
run -l -W completed -o atelier
b=$(block "$OUT" "atelier-$J1")
like "-l: a printed job" "$b" "${TAB}Status: printed"
like "-l: pages printed (3 pages, 2 copies)" "$b" "${TAB}Pages: 3  Copies: 2  Pages printed: 6"
like "-l: when it was printed" "$b" "${TAB}Printed: $DATE  Delivered: -"
like "-l: retention: the document kept until retain_until" "$b" \
    "${TAB}Document: present, kept until $(lpdate "$(job_field "$J1" .retain_until)")"
fails 6 "cancel of a printed job" "$COPEESCTL" -S "$SOCK" cancel "atelier-$J1"
check "-p: idle again once CUPS says so" wait_until 30 \
    bash -c "'$COPEESCTL' -S '$SOCK' -p atelier | grep -Eqx 'printer atelier is idle\.  enabled since $DATE'"
run accept spare
is "accept: exit 0" "$RC" 0
run enable spare
is "enable: exit 0" "$RC" 0
is "... spare is enabled and accepting, the reason gone" "$(printer spare '[.enabled, .accepting, .reason]')" '[true,true,null]'
run -a spare
like "-a: accepting again" "$OUT" "^spare accepting requests since $DATE\$"

# ---------------------------------------------------------------- -t
run -t
is "-t: exit 0" "$RC" 0
is "-t: -r first" "$(line "$OUT" 1)" "scheduler is running"
like "-t: then -a" "$(line "$OUT" 2)" "^atelier accepting requests since $DATE\$"
like "-t: then -p" "$(line "$OUT" 4)" "^printer atelier is idle\.  enabled since $DATE\$"
is "-t: then -o (nothing left to print)" "$(nlines "$OUT")" 5
run -t -W all
like "-t -W all: the jobs last" "$(sed -n '6,$p' <<<"$OUT")" "^atelier-$J1 .*
atelier-$J2 .*
copees-$J3 .*\$"
run -lt
like "-lt: printer details" "$OUT" "${TAB}Media: iso_a4_210x297mm, iso_a3_297x420mm"
run --json -t -W all
is "--json -t: health, printers, jobs documents" \
    "$(jq -sc '[.[0].ready, (.[1].printers | length), (.[2].jobs | length)]' <<<"$OUT")" '[true,2,3]'

# two held jobs for what follows
upload "$T/b.pdf" "order=ORD-4&hold=true"
J4=$(jq -r .id <<<"$BODY")
upload "$T/b.pdf" "order=ORD-5&hold=true"
J5=$(jq -r .id <<<"$BODY")

# ---------------------------------------------------------------- the socket
OUT=$(COPEES_SOCKET=$SOCK "$COPEESCTL" -r 2>/dev/null); RC=$?
is "COPEES_SOCKET names the socket" "$RC:$OUT" "0:scheduler is running"
OUT=$(COPEES_SOCKET=$T/nowhere.sock "$COPEESCTL" -S "$SOCK" -r 2>/dev/null); RC=$?
is "-S wins over COPEES_SOCKET" "$RC:$OUT" "0:scheduler is running"
fails 5 "COPEES_SOCKET naming no socket" env COPEES_SOCKET="$T/nowhere.sock" "$COPEESCTL" -o
like "... the message names the socket" "$ERR" "nowhere\.sock"
fails 5 "-S naming a file that is not a socket" "$COPEESCTL" -S "$CONF" -p
fails 5 "a command with no daemon" "$COPEESCTL" -S "$T/nowhere.sock" hold 1
OUT=$("$COPEESCTL" -S "$T/nowhere.sock" -r 2>/dev/null); RC=$?
is "-r with no daemon: lpstat's line, exit 5" "$RC:$OUT" "5:scheduler is not running"

# ---------------------------------------------------------------- bad usage and not found
fails 2 "an unknown option" "$COPEESCTL" -S "$SOCK" -x
fails 2 "an unknown long option" "$COPEESCTL" -S "$SOCK" --frobnicate
fails 2 "-S without its argument" "$COPEESCTL" -S
fails 2 "-W without its argument" "$COPEESCTL" -S "$SOCK" -W
fails 2 "a bad -W" "$COPEESCTL" -S "$SOCK" -W sometimes -o
fails 2 "-W with reads that are not -o" "$COPEESCTL" -S "$SOCK" -W all -p
fails 2 "disable -r without a reason" "$COPEESCTL" -S "$SOCK" disable spare -r
fails 2 "-r after a command other than disable and reject" "$COPEESCTL" -S "$SOCK" cancel -r why 1
fails 2 "an unknown command" "$COPEESCTL" -S "$SOCK" frobnicate 1
fails 2 "a command without its argument" "$COPEESCTL" -S "$SOCK" hold
fails 2 "move without its printer" "$COPEESCTL" -S "$SOCK" move "$J2"
fails 2 "complaint without open or close" "$COPEESCTL" -S "$SOCK" complaint "$J2"
fails 2 "something that is not a job id" "$COPEESCTL" -S "$SOCK" hold twelve
fails 2 "a read combined with a command" "$COPEESCTL" -S "$SOCK" -o cancel "$J2"
fails 3 "cancel of an unknown job" "$COPEESCTL" -S "$SOCK" cancel 424242
like "... the daemon's message, naming the job" "$ERR" '^copeesctl: cancel 424242: .*424242'
fails 3 "hold of an unknown job" "$COPEESCTL" -S "$SOCK" hold atelier-424242
fails 3 "-p of an unknown printer" "$COPEESCTL" -S "$SOCK" -p nosuch
like "... naming it" "$ERR" "nosuch"
fails 3 "-a of an unknown printer" "$COPEESCTL" -S "$SOCK" -a atelier,nosuch
fails 3 "-o of an unknown printer" "$COPEESCTL" -S "$SOCK" -o nosuch
fails 3 "enable of an unknown printer" "$COPEESCTL" -S "$SOCK" enable nosuch
fails 3 "reject of an unknown printer" "$COPEESCTL" -S "$SOCK" reject -r why nosuch
run cancel 424242 "$J5"
is "several ids: the first failure's status" "$RC" 3
is "... the others are still done" "$(job_field "$J5" .state)" canceled

# ---------------------------------------------------------------- not allowed
if [ "$(id -u)" = 0 ]; then
    is "the socket lets everyone connect (0666)" "$(stat -c %a "$SOCK")" 666
    fails 4 "nobody, refused by the daemon: -o" runuser -u nobody -- "$COPEESCTL" -S "$SOCK" -o
    fails 4 "nobody: -p" runuser -u nobody -- "$COPEESCTL" -S "$SOCK" -p
    fails 4 "nobody: disable" runuser -u nobody -- "$COPEESCTL" -S "$SOCK" disable -r nope spare
    is "... the printer was not touched" "$(printer spare .enabled)" true
    fails 4 "nobody: cancel" runuser -u nobody -- "$COPEESCTL" -S "$SOCK" cancel "$J4"
    is "... the job was not touched" "$(job_field "$J4" .state)" held
    chmod 0600 "$SOCK"
    fails 4 "nobody, refused by the socket's mode" runuser -u nobody -- "$COPEESCTL" -S "$SOCK" -o
    like "... says so" "$ERR" "Permission denied"
    chmod 0666 "$SOCK"
else
    ok "# SKIP not allowed (exit 4): runuser needs root"
fi

# ---------------------------------------------------------------- bash completion
comp() {          # comp WORD...: COMPREPLY for the line, the last word being completed
    PATH="$top_builddir:$PATH" bash -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
        _copeesctl
        echo "${COMPREPLY[*]}"' comp "$top_srcdir/cli/copeesctl.bash-completion" "$@"
}
is "completion: the commands" "$(comp copeesctl "")" \
    "cancel hold release reprint move delivered shred complaint enable disable accept reject"
is "completion: a command's prefix" "$(comp copeesctl re)" "release reprint reject"
is "completion: options" "$(comp copeesctl --j)" "--json"
is "completion: -W's values" "$(comp copeesctl -W "")" "completed not-completed all"
is "completion: printer names from the daemon (-S)" "$(comp copeesctl -S "$SOCK" disable "")" "atelier spare"
is "completion: ... and with COPEES_SOCKET" "$(COPEES_SOCKET=$SOCK comp copeesctl enable s)" "spare"
is "completion: disable's -r" "$(comp copeesctl -S "$SOCK" disable -)" "-r -S --json"
is "completion: nothing for the reason itself" "$(comp copeesctl -S "$SOCK" disable -r "")" ""
is "completion: a printer after the reason" "$(comp copeesctl -S "$SOCK" reject -r "x y" a)" "atelier"
is "completion: job ids that can be canceled" "$(comp copeesctl -S "$SOCK" cancel "")" "$J4"
is "completion: move's printer" "$(comp copeesctl -S "$SOCK" move "$J4" "")" "atelier spare"
is "completion: complaint open|close" "$(comp copeesctl complaint "")" "open close"

# ---------------------------------------------------------------- a read that fails
# -t reads health, then printers, then jobs: a stand-in daemon answers the
# health (copeesd's own answer) and fails the printers.  Nothing may be
# printed, not even the health lines read before the failure.
curl -s --unix-socket "$SOCK" http://copees/v1/health > "$T/health.json"
python3 - "$T/fake.sock" "$T/health.json" <<'PY' &
import os, socket, sys
path, health = sys.argv[1], open(sys.argv[2], "rb").read()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
for _ in range(8):
    c, _ = s.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(65536)
        if not d:
            break
        req += d
    if req.startswith(b"GET /v1/health"):
        body, status = health, b"200 OK"
    else:
        body, status = b'{"error":"internal","message":"test failure"}', b"500 Internal Server Error"
    c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % len(body) + body)
    c.close()
PY
FAKE=$!
wait_until 10 test -S "$T/fake.sock"
OUT=$("$COPEESCTL" -S "$T/fake.sock" -t 2>"$T/stderr"); RC=$?
kill "$FAKE" 2>/dev/null
check "-t with a read that fails after the health: a non-zero exit" test "$RC" -ne 0
is "... and nothing on stdout (not the health lines read before)" "$OUT" ""
like "... the failure on stderr" "$(cat "$T/stderr")" 'copeesctl: .+'

# ---------------------------------------------------------------- the man page
man_err=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
    man --warnings -E UTF-8 -l -Tutf8 -Z "$top_srcdir/docs/copeesctl.1" 2>&1 >/dev/null)
is "copeesctl(1) formats without a warning" "$man_err" ""
# the entries' tags: the line after each .TP or .TQ
tags=$(awk 'prev ~ /^\.T[PQ]$/ { print } { prev = $0 }' "$top_srcdir/docs/copeesctl.1")
missing=
for c in cancel hold release reprint move delivered shred "complaint open" "complaint close" \
         enable disable accept reject; do
    grep -q "^\.B[IR] \"\?${c}[\" ]" <<<"$tags" || missing="$missing [$c]"
done
is "copeesctl(1) has an entry for every command" "$missing" ""
missing=
for o in '\\-o' '\\-p' '\\-a' '\\-r' '\\-t' '\\-l' '\\-W' '\\-\\-json' '\\-S' 'COPEES_SOCKET'; do
    grep -q "^\.B[RI]\? \"\?$o" <<<"$tags" || missing="$missing [$o]"
done
is "copeesctl(1) has an entry for every option and the environment" "$missing" ""
grep -q '^\.BI \\-r " reason"$' <<<"$tags" || missing="$missing [-r reason]"
is "copeesctl(1) has an entry for disable's and reject's -r" "$missing" ""
missing=
for c in 0 1 2 3 4 5 6; do
    grep -q -x "\.B $c" <<<"$tags" || missing="$missing [exit $c]"
done
is "copeesctl(1) lists every exit status" "$missing" ""
done_testing
