#!/bin/bash
# Preflight through copeesd, on generated files: sizes, rotation and the
# ticket's media (2 mm, either orientation), mixed sizes, pages too large
# for the configured printers or too small, colour maps and a monochrome
# ticket, many pages and max_pages, encryption (user password, printing
# forbidden), fonts, JavaScript, launch actions, attachments, truncated,
# byte-flipped and non-PDF files; on_<code> changed by a reload; the
# sandbox as the kernel sees it; a check that spins, crashes, runs out of
# memory or breaks the sandbox (test knobs); the helper server stopped
# and continued, and killed in the middle; a stop signal to every process
# of the service while a check runs.  Every file gets its verdict and copeesd keeps serving.
. "$(dirname "$0")/lib.sh"

FEATURES=$("$COPEES_PREFLIGHT_HELPER" --features) || bail "the helper does not run"
has() { [[ " $FEATURES " == *" $1 "* ]]; }
export COPEES_TEST_KNOBS=1

PF_CONF="[preflight]
workers = 2
timeout = 2s
page_time = 50ms
memory = 256M
max_pages = 500"
CUPS_SERVER=$T/no-cups.sock write_conf "$PF_CONF"     # no CUPS: accepted jobs wait queued
start_copeesd

D=$T/docs
mkdir -p "$D"
n=0
# up FILE [QUERY]: upload under a fresh order; sets STATUS, BODY, SECS
up() {
    local out
    n=$((n + 1))
    out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$1" \
          -w '\n%{http_code} %{time_total}' "http://copees/v1/jobs?order=ORD-pf-$n${2:+&$2}")
    BODY=${out%$'\n'*}
    read -r STATUS SECS <<<"${out##*$'\n'}"
}
pf() { jq -c "$1" <<<"$BODY"; }                     # a value of the last answer
codes() {                                            # "R:code ... W:code ..." of the last answer
    jq -r '[(.reasons // .job.preflight.reasons // .preflight.reasons)[]? | "R:" + .code] +
           [(.preflight.warnings // .job.preflight.warnings)[]? | "W:" + .code] | join(" ")' <<<"$BODY"
}

# mkraw OUT "CATALOG ENTRIES" "PAGE ENTRIES" [OBJECT 6 [OBJECT 7 ...]]: a one-page A4 PDF
# with non-embedded Helvetica text, written by hand and given its xref by qpdf.
mkraw() {
    local out=$1 cat=$2 page=$3 content='BT /F1 24 Tf 72 700 Td (Hello) Tj ET' i=6 rc=0
    shift 3
    {
        printf '%s\n' '%PDF-1.4' "1 0 obj << /Type /Catalog /Pages 2 0 R $cat >> endobj" \
            '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj' \
            "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R $page >> endobj" \
            '4 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj' \
            "5 0 obj << /Length ${#content} >> stream" "$content" 'endstream endobj'
        for o in "$@"; do printf '%d 0 obj %s endobj\n' $i "$o"; i=$((i + 1)); done
        printf '%s\n' 'trailer << /Root 1 0 R >>' '%%EOF'
    } > "$out.raw"
    qpdf "$out.raw" "$out" >/dev/null 2>&1 || rc=$?
    [ "$rc" -le 3 ] && [ -s "$out" ] || bail "qpdf could not repair $out.raw"
}
# flip IN OUT SEED: 24 bytes after the header replaced, at places SEED decides
flip() {
    local size i off
    size=$(stat -c %s "$1")
    cp "$1" "$2"
    RANDOM=$3
    for i in $(seq 24); do
        off=$(( (RANDOM * 32768 + RANDOM) % (size - 16) + 16 ))
        printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$2" bs=1 seek=$off conv=notrunc status=none
    done
}

"$MKPDF" "$D/a4.pdf" && "$MKPDF" --pages 2 --color "$D/color.pdf" &&
    "$MKPDF" --size 612x792 "$D/letter.pdf" && "$MKPDF" --size 419.53x595.28 "$D/a5.pdf" &&
    "$MKPDF" --size 40x40 "$D/tiny.pdf" && "$MKPDF" --size 2000x2000 "$D/huge.pdf" &&
    "$MKPDF" --size 1000x1400 "$D/big.pdf" && "$MKPDF" --pages 300 "$D/p300.pdf" &&
    "$MKPDF" --pages 501 "$D/p501.pdf" && "$MKPDF" --pages 60 "$D/p60.pdf" \
    || bail "mkpdf failed"
qpdf --rotate=+90 "$D/a4.pdf" "$D/a4-turned.pdf" &&
    qpdf --empty --pages "$D/a4.pdf" "$D/color.pdf" "$D/a4.pdf" -- "$D/mixed-color.pdf" &&
    qpdf --empty --pages "$D/a4.pdf" "$D/a4-turned.pdf" -- "$D/portrait-landscape.pdf" &&
    qpdf --empty --pages "$D/a4.pdf" "$D/a5.pdf" -- "$D/a4-a5.pdf" &&
    qpdf --encrypt secret owner 256 -- "$D/a4.pdf" "$D/user-password.pdf" &&
    qpdf --encrypt "" owner 256 --print=none -- "$D/a4.pdf" "$D/no-print.pdf" &&
    qpdf --encrypt "" owner 256 -- "$D/a4.pdf" "$D/owner-only.pdf" \
    || bail "qpdf failed"

# ------------------------------------------------------------ sizes and media
up "$D/a4.pdf"
is "an A4 page on an A4 ticket: 201" "$STATUS" 201
is "... pages 1" "$(pf .preflight.pages)" 1
is "... its size in points" "$(pf .preflight.page_sizes)" '[[595.25,842]]'
is "... no colour" "$(pf '[.preflight.color_pages, .preflight.color_page_list]')" '[0,[]]'
is "... no warning, no reason" "$(pf '[.preflight.warnings, .preflight.reasons]')" '[[],[]]'
ID=$(pf .id)
is "the stored job carries the same report" "$(job_field "$ID" '.preflight | tojson')" "$(pf .preflight)"
is "the job's pages come from preflight" "$(job_field "$ID" .pages)" 1

up "$D/a4-turned.pdf"
is "a turned A4 page: its size after rotation" "$(pf .preflight.page_sizes)" '[[842,595.25]]'
is "... matches the A4 ticket either way round" "$(codes)" ""
up "$D/portrait-landscape.pdf"
is "portrait and landscape A4: two sizes listed" "$(pf '.preflight.page_sizes | length')" 2
is "... but neither mixed sizes nor a media mismatch" "$(codes)" ""

up "$D/letter.pdf"
is "letter on an A4 ticket: accepted (201)" "$STATUS" 201
is "... with a media-mismatch warning" "$(codes)" "W:media-mismatch"
like "... that a person can read out" "$(pf -r '.preflight.warnings[0].message')" 'scaled to fit'
up "$D/letter.pdf" "media=na_letter_8.5x11in"
is "letter on a letter ticket: no warning" "$(codes)" ""
up "$D/a4-a5.pdf"
is "A4 + A5 pages: mixed sizes, and the A5 page is not A4" "$(codes)" "W:mixed-page-sizes W:media-mismatch"
is "... both sizes listed, distinct" "$(pf .preflight.page_sizes)" '[[595.25,842],[419.5,595.25]]'
up "$D/big.pdf" "media=iso_a3_297x420mm"
is "a page within 125% of the A3 printer: accepted" "$STATUS" 201
up "$D/huge.pdf"
is "a 2000 pt square page (no printer takes it): 422" "$STATUS" 422
is "... page-too-large" "$(codes)" "R:page-too-large W:media-mismatch"
up "$D/tiny.pdf"
is "a 40 pt square page: 422 page-too-small" "$STATUS $(codes)" "422 R:page-too-small W:media-mismatch"

# ------------------------------------------------------------ colour
up "$D/color.pdf"
is "two colour pages, monochrome ticket: 201" "$STATUS" 201
is "... colour pages counted and listed" "$(pf '[.preflight.color_pages, .preflight.color_page_list]')" '[2,[1,2]]'
is "... a color-on-monochrome warning" "$(codes)" "W:color-on-monochrome"
up "$D/color.pdf" "color=color"
is "the same on a colour ticket: no warning" "$(codes)" ""
up "$D/mixed-color.pdf" "color=color"
is "grey, colour, colour, grey pages: the colour map" "$(pf '[.preflight.pages, .preflight.color_pages, .preflight.color_page_list]')" '[4,2,[2,3]]'

# ------------------------------------------------------------ pages
up "$D/p300.pdf"
is "300 pages: 201" "$STATUS" 201
is "... pages 300, one distinct size" "$(pf '[.preflight.pages, (.preflight.page_sizes | length)]')" '[300,1]'
up "$D/p501.pdf"
is "501 pages over max_pages 500: 422 too-many-pages" "$STATUS $(codes)" "422 R:too-many-pages"

# ------------------------------------------------------------ encryption, fonts, actions
up "$D/user-password.pdf"
is "a user password: 422 encrypted" "$STATUS $(codes)" "422 R:encrypted"
like "... with a message for a person" "$(jq -r '.reasons[0].message' <<<"$BODY")" 'password'
up "$D/no-print.pdf"
is "printing forbidden: 422 print-not-permitted" "$STATUS $(codes)" "422 R:print-not-permitted"
up "$D/owner-only.pdf"
is "an owner password only, printing allowed: 201" "$STATUS" 201

mkraw "$D/font.pdf" "" ""
mkraw "$D/js.pdf" "/OpenAction 6 0 R" "" "<< /S /JavaScript /JS (app.alert(1);) >>"
mkraw "$D/launch.pdf" "" "/Annots [6 0 R]" \
    "<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] /A << /S /Launch /F (calc.exe) >> >>"
mkraw "$D/attach.pdf" "/Names << /EmbeddedFiles << /Names [(a.txt) 6 0 R] >> >>" "" \
    "<< /Type /Filespec /F (a.txt) /EF << /F 7 0 R >> >>" \
    $'<< /Type /EmbeddedFile /Length 6 >> stream\nhello\nendstream'
up "$D/font.pdf"
is "a font that is not embedded: 201 with a warning" "$STATUS $(codes)" "201 W:fonts-not-embedded"
up "$D/js.pdf"
is "document JavaScript (never run): a warning" "$STATUS $(codes)" "201 W:fonts-not-embedded W:javascript"
up "$D/launch.pdf"
is "a launch action (ignored): a warning" "$STATUS $(codes)" "201 W:fonts-not-embedded W:launch-action"
up "$D/attach.pdf"
is "an attached file (not printed): a warning" "$STATUS $(codes)" "201 W:fonts-not-embedded W:attachments"

# ------------------------------------------------------------ broken files and non-PDFs
"$MKPDF" --pages 3 --color "$D/three.pdf" || bail "mkpdf failed"
size=$(stat -c %s "$D/three.pdf")
head -c $((size * 6 / 10)) "$D/three.pdf" > "$D/truncated.pdf"
up "$D/truncated.pdf"
is "a truncated PDF: 422" "$STATUS" 422
like "... damaged or pages missing" "$(codes)" '^R:(not-a-pdf|page-missing|no-pages)'
printf 'Dear print shop, please print this.\n' > "$D/text.pdf"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0' > "$D/png.pdf"
printf 'PK\x03\x04\x14\0\0\0\x08\0' > "$D/zip.pdf"
printf '%%PDF-1.7\n' > "$D/header-only.pdf"
head -c 4096 /dev/urandom > "$D/random.pdf"
for f in text png zip header-only random; do
    up "$D/$f.pdf"
    is "a non-PDF named $f.pdf: 422 not-a-pdf" "$STATUS $(codes)" "422 R:not-a-pdf"
done

# byte-flipped copies, uploaded together (two are checked at a time)
pids=()
for seed in 1 2 3 4 5 6 7 8; do
    flip "$D/three.pdf" "$D/flip$seed.pdf" $seed
    curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$D/flip$seed.pdf" \
        -o "$D/flip$seed.out" -w '%{http_code} %{time_total}' \
        "http://copees/v1/jobs?order=ORD-flip-$seed" > "$D/flip$seed.status" &
    pids+=($!)
done
wait "${pids[@]}"
for seed in 1 2 3 4 5 6 7 8; do
    read -r st secs < "$D/flip$seed.status"
    got=$(jq -r '[(.reasons // .preflight.reasons)[].code] | join(",")' "$D/flip$seed.out" 2>/dev/null)
    like "byte-flipped copy $seed: a verdict ($st ${got:-accepted}) in ${secs}s" "$st" '^(201|422)$'
done

# ------------------------------------------------------------ test knobs
# knob FILE NAME: a copy of a4.pdf (or FILE) the helper's child acts on
knob() { cp "${3:-$D/a4.pdf}" "$D/knob-$2.pdf"; printf '%%copees-knob:%s\n' "$2" >> "$D/knob-$2.pdf"; }
knob x spin; knob x crash; knob x abort; knob x oom; knob x slow=3000 "$D/p60.pdf"
up "$D/knob-spin.pdf"
is "a check that spins: 422 preflight-timeout" "$STATUS $(codes)" "422 R:preflight-timeout"
check "... after the 2 s timeout, not much later" awk -v s="$SECS" 'BEGIN { exit !(s >= 2 && s < 5) }'
# The kill goes through a pidfd the server passed with PFP_STARTED, never
# a pid that may have been given to another process since: copeesd holds
# one while a check runs and none once its verdict is in.
pidfds() { ls -l "/proc/$COPEESD_PID/fd" 2>/dev/null | grep -c 'anon_inode:\[pidfd\]'; }
has_pidfd() { [ "$(pidfds)" -gt 0 ]; }
curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$D/knob-spin.pdf" \
    -o "$D/spin2.out" "http://copees/v1/jobs?order=ORD-spin2" &
spin=$!
check "while a check runs, copeesd holds its child's pidfd" wait_until 10 has_pidfd
wait "$spin"
is "... the spinning check still ends preflight-timeout" \
    "$(jq -r '[.reasons[].code] | join(",")' "$D/spin2.out")" preflight-timeout
is "... and copeesd holds no pidfd once the verdict is in" "$(pidfds)" 0
up "$D/knob-crash.pdf"
is "a check that crashes (SIGSEGV): 422 preflight-crashed" "$STATUS $(codes)" "422 R:preflight-crashed"
up "$D/knob-abort.pdf"
is "a check that aborts: 422 preflight-crashed" "$STATUS $(codes)" "422 R:preflight-crashed"
check "... by its own SIGABRT (the filter lets a child signal itself)" \
    grep -q "\[job $(pf .job.id)\].*killed by signal 6\b" "$T/copeesd.log"
up "$D/knob-oom.pdf"
is "a check that runs out of memory: 422 preflight-too-complex" "$STATUS $(codes)" "422 R:preflight-too-complex"
up "$D/knob-slow=3000.pdf"
is "60 pages checked in 3 s: the deadline grew by page_time per page (201)" "$STATUS" 201
if has seccomp; then
    rm -f /tmp/copees-knob-write
    for k in socket write exec tgkill; do
        knob x $k
        up "$D/knob-$k.pdf"
        is "a check that tries $k: killed by the filter, 422 preflight-crashed" "$STATUS $(codes)" "422 R:preflight-crashed"
    done
    check "... and the file it tried to write does not exist" test ! -e /tmp/copees-knob-write
    check "the log names the system call filter" grep -q 'outside the sandbox' "$T/copeesd.log"
else
    ok "# SKIP no seccomp filter in this build ($FEATURES)"
fi

# ------------------------------------------------------------ the sandbox seen from /proc
# stat_field PID N: field N of /proc/PID/stat (4: parent, 5: process group)
stat_field() {
    local s a
    read -r s 2>/dev/null < "/proc/$1/stat" || return 1
    read -ra a <<<"${s##*) }"          # from field 3 on: the command may hold spaces
    echo "${a[$(($2 - 3))]}"
}
children_of() {   # children_of PID: the pids whose parent is PID
    local f s a
    for f in /proc/[0-9]*/stat; do
        read -r s 2>/dev/null < "$f" || continue
        read -ra a <<<"${s##*) }"
        [ "${a[1]}" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}
server_pid() {    # the helper server: copeesd's child running "preflight --server"
    local p
    for p in $(children_of "$COPEESD_PID"); do
        tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'preflight --server' && { echo "$p"; return; }
    done
}
child_pid() { children_of "$(server_pid)" | head -1; }
has_child() { [ -n "$(child_pid)" ]; }
SERVER=$(server_pid)
like "copeesd runs one helper server" "$SERVER" '^[0-9]+$'
is "... with no environment of the daemon's: the loader's setting only" \
    "$(tr '\0' '\n' < "/proc/$SERVER/environ" | xargs)" "LD_BIND_NOW=1"
is "... in a process group of its own" "$(stat_field "$SERVER" 5)" "$SERVER"
is "... the OOM killer's first choice (oom_score_adj 1000); copeesd keeps its own" \
    "$(cat "/proc/$SERVER/oom_score_adj") $(cat "/proc/$COPEESD_PID/oom_score_adj")" \
    "1000 $(cat /proc/$$/oom_score_adj)"
curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$D/knob-spin.pdf" \
    -o "$D/spin2.out" -w '%{http_code}' "http://copees/v1/jobs?order=ORD-spin-2" > "$D/spin2.status" &
spin_curl=$!
wait_until 10 has_child || bail "no check started"
CHILD=$(child_pid)
status=$(cat "/proc/$CHILD/status") limits=$(cat "/proc/$CHILD/limits")
like "the check runs with no new privileges" "$status" $'NoNewPrivs:\t1'
is "... first for the OOM killer (oom_score_adj 1000, inherited)" "$(cat "/proc/$CHILD/oom_score_adj")" 1000
like "... without core files" "$limits" 'Max core file size +0 +0'
like "... with at most 32 files" "$limits" 'Max open files +32 +32'
like "... with a CPU limit" "$limits" 'Max cpu time +[0-9]+ +[0-9]+ +seconds'
if has seccomp; then
    like "... under two seccomp filters (the server's and its own)" "$status" $'Seccomp:\t2.*Seccomp_filters:\t2'
    like "... with its address space capped at memory (256M)" "$limits" 'Max address space +268435456 +268435456'
else
    ok "# SKIP no seccomp filter in this build ($FEATURES)"
    ok "# SKIP no RLIMIT_AS in this build ($FEATURES)"
fi

# The children go without the libraries no check uses (preflight-lean.c)
if ! has asan; then
    check "the server checked that its children work without the unused libraries (lean)" \
        grep -q "helper server $SERVER ready (.* lean" "$T/copeesd.log"
    maps=$(cat "/proc/$CHILD/maps") srvmaps=$(cat "/proc/$SERVER/maps")
    like "... the check has poppler's code" "$maps" ' r-xp [0-9a-f]+ [0-9a-f:]+ [0-9]+ +/[^[:space:]]*/libpoppler\.so'
    for lib in libnss3.so libX11.so libgio-2.0.so libtiff.so; do
        like "... the server has $lib's code" "$srvmaps" " r-xp [0-9a-f]+ [0-9a-f:]+ [0-9]+ +/[^[:space:]]*/${lib//./\\.}"
        unlike "... the check does not" "$maps" " r-xp [0-9a-f]+ [0-9a-f:]+ [0-9]+ +/[^[:space:]]*/${lib//./\\.}"
    done
    like "... but keeps the headers the unwinder reads" "$maps" ' 00000000 [0-9a-f:]+ [0-9]+ +/[^[:space:]]*/libnss3\.so'
    thp_fallbacks() { awk '$1 == "thp_fault_fallback" {print $2}' /proc/vmstat; }
    block_untouched() {    # the mapping advised MADV_HUGEPAGE in pid $1 has no page resident
        awk '/^Rss:/ {rss = $2} / hg( |$)/ && /^VmFlags:/ {n++; if (rss != 0) bad = 1}
             END {exit !(n == 1 && !bad)}' "/proc/$1/smaps"
    }
    fallback0=$(thp_fallbacks)
    lean=$("$COPEES_PREFLIGHT_HELPER" --lean-check)
    like "a server's start-up leaves out the same mappings (preflight --lean-check)" \
        "${lean%%$'\n'*}" '^left out ([1-9][0-9]+), marked \1$'
    # a child must find no free chunk of the server's to write to (each
    # would copy a page): start-up leaves tens of KB of them unsettled
    heap=$(sed -n 's/^heap free outside the top \([0-9]*\)$/\1/p' <<<"$lean")
    check "... and leaves children no free heap chunk but the top (${heap:-?} bytes outside it)" \
        test -n "$heap" -a "${heap:-1}" -le 4096
    # what a child gets of the server's memory (preflight-mem.c): the code
    # the server has comes with its page tables, and the child's fresh heap
    # lies in one huge page
    inherited=$(sed -n 's/^inherited code mappings \([0-9]*\)$/\1/p' <<<"$lean")
    check "children inherit the page tables of the libraries' code (${inherited:-?} mappings)" \
        test "${inherited:-0}" -ge 10
    code=$(sed -n 's/^child code resident \([0-9-]*\) kB$/\1/p' <<<"$lean")
    check "... a child has poppler's code mapped before it runs any (${code:-?} kB)" \
        test "${code:-0}" -gt 64
    learned=$(sed -n 's/^copy-on-write pages learned \([0-9-]*\)$/\1/p' <<<"$lean")
    check "the server learns which of its pages a check writes (${learned:-?})" \
        test "${learned:-0}" -gt 0
    is "... and a child has each of them copied before it starts" \
        "$(sed -n 's/^child pages copied ahead \([0-9-]*\)$/\1/p' <<<"$lean")" "${learned:-?}"
    thp=/sys/kernel/mm/transparent_hugepage/enabled
    if [ ! -r "$thp" ] || grep -q '\[never\]' "$thp"; then
        for i in 1 2 3; do ok "# SKIP transparent huge pages are off here"; done
    else
        like "the server sets a huge-page block aside for its children's heap" "$lean" \
            $'\nhuge heap block yes\n'
        huge=$(sed -n 's/^child heap in huge pages \([0-9-]*\) kB$/\1/p' <<<"$lean")
        if [ "${huge:-0}" -ge 2048 ]; then
            ok "... a child's first allocations lie in a huge page ($huge kB)"
        elif [ "$fallback0" != "$(thp_fallbacks)" ]; then
            ok "# SKIP the kernel had no huge page to give just now (thp_fault_fallback)"
        else
            not_ok "... a child's first allocations lie in a huge page (${huge:-?} kB)"
        fi
        # a page of that block in the server would be shared with every child
        # (the daemon's server uses the block only where it chose the
        # fault-saving layout; tests/preflight-layout.sh forces each)
        if grep -q "helper server $SERVER ready (.* layout-plain" "$T/copeesd.log"; then
            is "... the daemon's helper server (plain layout here) sets none aside" \
                "$(grep -c '^VmFlags:.* hg\( \|$\)' "/proc/$SERVER/smaps")" 0
        else
            check "... and the daemon's helper server never touches it, after its checks" \
                block_untouched "$SERVER"
        fi
        block_untouched "$SERVER" || grep -q "helper server $SERVER ready (.* layout-plain" "$T/copeesd.log" ||
            diag "server $SERVER ($(tr '\0' ' ' < "/proc/$SERVER/cmdline" 2>/dev/null)): $(awk '/^[0-9a-f]+-/ {m = $0} /^Rss:/ {r = $2} /^VmFlags:.* hg( |$)/ {print m " Rss " r " kB"}' "/proc/$SERVER/smaps" 2>&1)"
    fi
    if has test-knobs; then
        # freetype is one the checks need: the self-test child dies, and
        # every mapping must be inherited again
        is "... and with one the checks need, the self-test fails and nothing is left out" \
            "$(COPEES_TEST_LEAN_EXTRA=libfreetype.so. "$COPEES_PREFLIGHT_HELPER" --lean-check | head -1)" \
            "left out 0, marked 0"
        is "... and a self-test child that hangs is killed: nothing is left out" \
            "$(COPEES_TEST_LEAN_HANG=1 "$COPEES_PREFLIGHT_HELPER" --lean-check | head -1)" "left out 0, marked 0"
    else
        ok "# SKIP no test knobs in this build ($FEATURES)"
        ok "# SKIP no test knobs in this build ($FEATURES)"
    fi
else
    ok "# SKIP ASan build: children inherit every library ($FEATURES)"
fi

# ------------------------------------------------------------ the server stopped and continued
# SIGSTOP then SIGCONT (a debugger, a cgroup freezer) interrupt the
# server's poll, which the kernel resumes with restart_syscall: the
# filter allows that call, so the server lives on and goes on checking.
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
kill -STOP "$SERVER"
check "the helper server stopped (SIGSTOP)" wait_until 10 bash -c "[ \"\$(awk '{print \$3}' /proc/$SERVER/stat)\" = T ]"
kill -CONT "$SERVER"
running() { [ "$(proc_state "$SERVER")" != T ] && [ -n "$(proc_state "$SERVER")" ]; }
check "... and continued (SIGCONT)" wait_until 10 running
check "... lives on (2 s)" stays 2 kill -0 "$SERVER"
up "$D/a4.pdf"
is "... and checks the next document" "$STATUS" 201
is "... itself, not a new server" "$(server_pid)" "$SERVER"

# ------------------------------------------------------------ the server killed in the middle
# (a fresh spinning check: the first may have reached its 2 s timeout
# during the checks above on a loaded machine)
wait "$spin_curl"
curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$D/knob-spin.pdf" \
    -o "$D/spin3.out" -w '%{http_code}' "http://copees/v1/jobs?order=ORD-spin-3" > "$D/spin3.status" &
spin_curl=$!
wait_until 10 has_child || bail "no check started"
CHILD=$(child_pid)
kill -KILL "$SERVER"
wait "$spin_curl"
is "the server killed mid-check: the document gets 422" "$(cat "$D/spin3.status")" 422
is "... preflight-crashed" "$(jq -r '.reasons[0].code' "$D/spin3.out")" preflight-crashed
check "... its check did not outlive it" wait_until 5 bash -c "! kill -0 $CHILD 2>/dev/null"
up "$D/a4.pdf"
is "the next document starts a new server and is accepted" "$STATUS" 201
check "... a new server" test "$(server_pid)" != "$SERVER"

# ------------------------------------------------------------ policy by reload
CUPS_SERVER=$T/no-cups.sock write_conf "$PF_CONF
on_media-mismatch = reject
on_fonts-not-embedded = reject
on_preflight-crashed = warn"
reloads=$(grep -c 'configuration re-read' "$T/copeesd.log")
kill -HUP "$COPEESD_PID"
check "SIGHUP re-reads the policy" wait_until 10 bash -c \
    "[ \$(grep -c 'configuration re-read' '$T/copeesd.log') -gt $reloads ]"
up "$D/letter.pdf"
is "on_media-mismatch = reject: letter on an A4 ticket is 422" "$STATUS $(codes)" "422 R:media-mismatch"
up "$D/font.pdf"
is "on_fonts-not-embedded = reject: 422" "$STATUS $(codes)" "422 R:fonts-not-embedded"
up "$D/knob-crash.pdf"
is "on_preflight-crashed = warn cannot accept a document that was not checked" "$STATUS $(codes)" "422 R:preflight-crashed"
up "$D/letter.pdf" "media=na_letter_8.5x11in"
is "letter on a letter ticket still passes" "$STATUS" 201

# ------------------------------------------------------------ preflight --warm (the benchmarks' figure)
warm=$("$COPEES_PREFLIGHT_HELPER" --warm 50 < "$D/a4.pdf" | cat)
like "preflight --warm checks a document in one process and prints the CPU of a check" \
    "$warm" '^warm checks 50 cpu_ms_per_check [0-9]+\.[0-9]{3}$'
check "... a time above zero" awk -v v="${warm##* }" 'BEGIN { exit !(v > 0) }'
printf 'not a PDF\n' > "$D/warm-junk.txt"
like "... a file that is no PDF is checked too (not-a-pdf each time)" \
    "$("$COPEES_PREFLIGHT_HELPER" --warm 3 < "$D/warm-junk.txt" | cat)" '^warm checks 3 cpu_ms_per_check '
"$COPEES_PREFLIGHT_HELPER" --warm 2 < "$D/a4.pdf" > "$D/warm.out" 2>/dev/null
is "... its output to a file is refused under the sandbox's file size limit (exit 1)" "$?" 1
"$COPEES_PREFLIGHT_HELPER" --warm 0 < "$D/a4.pdf" > /dev/null 2>&1
is "... --warm 0 is a usage error (exit 2)" "$?" 2

# ------------------------------------------------------------ still serving
out=$(api GET /v1/health)
like "copeesd still answers ready" "$out" '"ready":true'
check "copeesd is the same process" kill -0 "$COPEESD_PID"
check "no log line carries an order reference" bash -c "! grep -q 'ORD-' '$T/copeesd.log'"
check "no rejected document is left in the spool" bash -c \
    "[ \$(ls '$T/spool/jobs' | wc -l) -eq \$(curl -s --unix-socket '$SOCK' 'http://copees/v1/jobs?limit=1000' | jq '[.jobs[] | select(.state == \"queued\")] | length') ]"

# ------------------------------------------------------------ a stop signal to the whole service
# systemd stops a service with SIGTERM to every process of it (its cgroup),
# a terminal sends SIGINT or SIGHUP to a process group: the helper server
# and its children leave stopping to copeesd, so a check under way ends
# during copeesd's drain and the document gets its own verdict (it was
# rejected as preflight-crashed, "damaged", and shredded).
curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' --data-binary @"$D/knob-slow=3000.pdf" \
    -o "$D/stop.out" -w '%{http_code}' "http://copees/v1/jobs?order=ORD-stop" > "$D/stop.status" &
stop_curl=$!
wait_until 10 has_child || bail "no check started"
SERVER=$(server_pid) CHILD=$(child_pid)
kill -TERM "$COPEESD_PID" "$SERVER" "$CHILD"
kill -INT "$SERVER" "$CHILD"
kill -HUP "$SERVER" "$CHILD"
wait "$stop_curl"
is "SIGTERM, SIGINT and SIGHUP to copeesd's helper and its check: the document is accepted" \
    "$(cat "$D/stop.status")" 201
wait "$COPEESD_PID"
is "... and copeesd, told to stop too, exits 0 after its drain" "$?" 0
COPEESD_PID=
done_testing
