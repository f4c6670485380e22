#!/bin/bash
# bench/intake.sh - intake figures, each against a baseline measured in
# the same run on the same machine, in interleaved rounds whose medians
# are compared, so that a machine whose load drifts slows both sides alike
# (not a test: it prints, it asserts nothing).  Run from a built tree:
#   bash bench/intake.sh [N_JOBS]    (BENCH_ROUNDS, BENCH_BIG_ROUNDS,
#                                      BENCH_SECTIONS: default "1 2 3")
# What is timed, and why, is in bench/README.md.  First, for information:
# what this machine charges for a page fault and a process (bench/machcost).
#
#  1. one-page PDFs at 16 concurrent clients, preflight included:
#     copeesd's accepted jobs/s and p50/p99 latency, each client a
#     bench/upload process on one keep-alive connection (as the web tier
#     keeps one), against `lp` submitting the same file to the same
#     private cupsd (raw queue to /dev/null), one lp process per job; both
#     hold what they accept (hold=true, lp -H hold), so neither prints
#     during the rounds; for information also cupsd with 16 persistent
#     IPP clients (ipptool), copeesd with 16 keep-alive curl clients and
#     with one curl process per job;
#  2. 8 clients each uploading a valid 200 MiB PDF at once: upload-to-
#     commit throughput (SHA-256, fdatasync, rename, directory fsync and
#     the job row; timed to the last "created" event on GET /v1/events)
#     against `dd conv=fdatasync` writing the same bytes to the same disk,
#     copeesd's peak RSS, and for information the time to the last 201
#     (preflight included);
#  3. GET /v1/health latency (p50/p99), asked 200 times a second on one
#     connection, while a 1 GB upload commits, is preflighted and (a
#     non-PDF: rejected) shredded.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir=$here top_builddir=${top_builddir:-$here}
N=${1:-4000}
CLIENTS=16
ROUNDS=${BENCH_ROUNDS:-5}
BIG_MIB=200
BIG_ROUNDS=${BENCH_BIG_ROUNDS:-3}
SECTIONS=${BENCH_SECTIONS:-1 2 3}
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
# The run's directory is made at the top of the filesystem, where ext4
# gives a new directory a block group of its own: in a directory under
# /tmp, on an ext4 without a journal, each file created costs a scan of
# the inodes deleted there in the last minutes (0.8 ms a file measured
# after a test run, against 17 us here), for copeesd and cupsd alike.
# copeesd's spool and database get a top-level directory of their own
# too, so another block group than cupsd's spool: the purges of `lp`'s
# held jobs between rounds delete some 1,600 of cupsd's files, and in the
# same group each file copeesd created in its next round scanned past
# them (copeesd's CPU a job grew from 0.375 to 0.49 ms over five rounds,
# and stayed at 0.36-0.40 ms in a group of its own; bench/README.md).
BENCH_TOP= SPOOL_TOP=
if [ -z "${COPEES_TEST_TMPDIR:-}" ] && BENCH_TOP=$(mktemp -d /copees-bench.XXXXXX 2>/dev/null); then
    chmod 0755 "$BENCH_TOP"
    export COPEES_TEST_TMPDIR=$BENCH_TOP
    if SPOOL_TOP=$(mktemp -d /copees-bench-spool.XXXXXX 2>/dev/null); then
        chmod 0755 "$SPOOL_TOP"
        export COPEES_SPOOL_DIR=$SPOOL_TOP/spool COPEES_STATE_DIR=$SPOOL_TOP/state
    fi
fi
# cupsd logs at Debian's default level, copeesd at its own (no -d): as on
# a shop server.  Both hold what they accept (hold=true, lp -H hold), so
# that neither spends the rounds printing; cupsd then needs room for a
# round's held jobs (its MaxJobs is 500).
export CUPS_LOGLEVEL=${CUPS_LOGLEVEL:-warn} COPEESD_DEBUG=${COPEESD_DEBUG-}
export CUPS_CONF_EXTRA="MaxJobs 0"
# shellcheck source=../tests/lib.sh
. "$here/tests/lib.sh" >/dev/null
# (copeesd is stopped and waited for here: _cleanup, which exits, runs in
# a subshell so that the directory above $T can go after it)
trap 'stop_copeesd >/dev/null 2>&1; (_cleanup) >/dev/null 2>&1; [ -n "$BENCH_TOP" ] && rm -rf "$BENCH_TOP"
      [ -n "$SPOOL_TOP" ] && rm -rf "$SPOOL_TOP"' EXIT

pct() {    # pct P FILE-of-seconds: the P-th percentile in ms
    sort -n "$2" | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100); if (i<1) i=1; printf "%.1f", a[i]*1000}'
}
now() { echo "$EPOCHREALTIME"; }
waitjobs() { wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null; }

median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f", NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

make -s -C "$top_builddir" bench/upload bench/machcost tests/mkpdf >/dev/null || { echo "bench: build failed" >&2; exit 2; }
UPLOAD=$top_builddir/bench/upload
# What this machine charges for what a fork-per-document check pays:
# figures from two machines compare only next to these (bench/README.md)
read -r _ fault_us _ cow_us _ fork_us < <("$top_builddir/bench/machcost")
printf 'info: this machine: a fresh-page fault %s us, a copy-on-write fault %s us, a small process forked, exited and reaped %s us (bench/machcost)\n' \
    "$fault_us" "$cow_us" "$fork_us"
start_cups
DAEMON_EXTRA="max_upload = 2G" write_conf "$(printf "%b" "${BENCH_CONF:-}")"
start_copeesd
"$MKPDF" --pages 1 "$T/one.pdf"
per=$((N / CLIENTS / ROUNDS))
N=$((per * CLIENTS * ROUNDS))
lpadmin -p benchnull -E -v file:///dev/null -m raw 2>/dev/null

# ticks CPU-seconds: user + system time of copeesd (every thread), or of
# the preflight helper server and the children it reaped
cpu_daemon() { awk '{print $14 + $15}' "/proc/$COPEESD_PID/stat"; }
cpu_preflight() {
    local p
    p=$(pgrep -P "$COPEESD_PID" -x preflight | head -1)
    [ -n "$p" ] && awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" || echo 0
}
hz=$(getconf CLK_TCK)

# cpu_idle: "idle total" jiffies of the whole machine so far
cpu_idle() { awk '/^cpu /{t = 0; for (i = 2; i <= 9; i++) t += $i; print $5 + $6, t}' /proc/stat; }

# round_copeesd R: $CLIENTS bench/upload processes, each sending its $per uploads
# over one keep-alive connection; prints jobs/s (and adds the machine's
# idle and total jiffies during the round to $T/idle)
round_copeesd() {
    local t0 t1 c i0 i1
    i0=$(cpu_idle)
    t0=$(now)
    for c in $(seq $CLIENTS); do
        "$UPLOAD" "$SOCK" "$T/one.pdf" "BENCH-$1-$c" $per hold=true > "$T/lat.$1.$c" &
    done
    waitjobs
    t1=$(now)
    i1=$(cpu_idle)
    echo "$i0 $i1" >> "$T/idle"
    echo "$(cat "$T"/lat."$1".* | grep -c '^201 ') / ($t1 - $t0)" | bc -l
}
# round_lp: $CLIENTS shells, each running lp $per times; prints jobs/s
round_lp() {
    local t0 t1 c
    t0=$(now)
    for c in $(seq $CLIENTS); do
        ( for i in $(seq $per); do lp -d benchnull -H hold "$T/one.pdf"; done ) > "$T/lp.$c" 2>/dev/null &
    done
    waitjobs
    t1=$(now)
    echo "$(cat "$T"/lp.* | grep -c '^request id') / ($t1 - $t0)" | bc -l
}

if want 1; then
echo "== 1. intake of one-page PDFs, $CLIENTS clients, $ROUNDS interleaved rounds of $((per * CLIENTS)) jobs each"
cd0=$(cpu_daemon) cp0=$(cpu_preflight)
: > "$T/rates.copeesd"; : > "$T/rates.lp"
for r in $(seq "$ROUNDS"); do
    round_copeesd "$r" >> "$T/rates.copeesd"
    round_lp >> "$T/rates.lp"
    cancel -a -x benchnull 2>/dev/null
done
cd1=$(cpu_daemon) cp1=$(cpu_preflight)
cat "$T"/lat.* > "$T/lat"
ok201=$(grep -c '^201 ' "$T/lat")
awk '{print $2}' "$T/lat" > "$T/lat.s"
rate=$(median < "$T/rates.copeesd") lprate=$(median < "$T/rates.lp")
printf 'copeesd: %d of %d accepted; jobs/s per round: %s; median %s; latency p50 %s ms, p99 %s ms\n' \
    "$ok201" $N "$(xargs printf '%.0f ' < "$T/rates.copeesd")" "$rate" "$(pct 50 "$T/lat.s")" \
    "$(pct 99 "$T/lat.s")"
printf 'lp:      one process per job; jobs/s per round: %s; median %s\n' \
    "$(xargs printf '%.0f ' < "$T/rates.lp")" "$lprate"
printf 'ratio copeesd/lp (medians): %.2fx (target >= 3x)\n' "$(echo "$rate / $lprate" | bc -l)"
printf 'info: CPU per job: copeesd %.2f ms, preflight helper %.2f ms; the machine idle %.0f%% of copeesd'"'"'s rounds\n' \
    "$(echo "($cd1 - $cd0) * 1000 / $hz / $N" | bc -l)" \
    "$(echo "($cp1 - $cp0) * 1000 / $hz / $N" | bc -l)" \
    "$(awk '{i += $3 - $1; t += $4 - $2} END {print t ? 100 * i / t : 0}' "$T/idle")"
# What the same check costs without a fresh sandboxed process (bench/README.md)
# This guest slows down under sustained load and recovers when idle
# (bench/README.md): what it charges now, right after the rounds
read -r _ fault_us _ cow_us _ fork_us < <("$top_builddir/bench/machcost")
printf 'info: the machine right after these rounds: a fresh-page fault %s us, a copy-on-write fault %s us, a process %s us\n' \
    "$fault_us" "$cow_us" "$fork_us"
warm=$("$top_builddir/daemon/preflight" --warm 200 < "$T/one.pdf" | awk '$1 == "warm" { print $5 }')
printf 'info: the same check 200 times in one warm process: %s ms CPU each\n' "${warm:-?}"

# For information: cupsd with persistent clients, copeesd with a process per job.
uri="ipp://$(printf %s "$CUPS_SERVER" | sed 's|/|%2F|g')/printers/benchnull"
for i in $(seq $per); do cat /usr/share/cups/ipptool/print-job.test; done > "$T/print-n.test"
t0=$(now)
for c in $(seq $CLIENTS); do
    # one test file of $per Print-Job requests: one connection per client
    ipptool -t -f "$T/one.pdf" "$uri" "$T/print-n.test" > "$T/ipptool.$c" 2>&1 &
done
waitjobs
t1=$(now)
ipp_ok=$(cat "$T"/ipptool.* | grep -c 'Print-Job.*\[PASS\]')
printf 'info: cupsd, %d ipptool clients on one connection each: %d of %d accepted, %.1f jobs/s\n' \
    $CLIENTS "$ipp_ok" $((per * CLIENTS)) "$(echo "$ipp_ok / ($t1 - $t0)" | bc -l)"
cancel -a benchnull 2>/dev/null
t0=$(now)
for c in $(seq $CLIENTS); do
    curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" \
         -H 'Content-Type: application/pdf' --data-binary @"$T/one.pdf" \
         "http://copees/v1/jobs?order=CURL-$c-[1-$per]&hold=true" > "$T/curl.$c" &
done
waitjobs
t1=$(now)
printf 'info: copeesd, %d curl processes on one connection each: %.1f jobs/s\n' $CLIENTS \
    "$(cat "$T"/curl.* | grep -c '^201' | sed "s|\$| / ($t1 - $t0)|" | bc -l)"
t0=$(now)
for c in $(seq $CLIENTS); do
    ( for i in $(seq $per); do
        curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" \
             -H 'Content-Type: application/pdf' -H "Idempotency-Key: p-$c-$i" \
             --data-binary @"$T/one.pdf" "http://copees/v1/jobs?order=PROC-$c-$i&hold=true"
      done > "$T/proc.$c" ) &
done
waitjobs
t1=$(now)
printf 'info: copeesd, one curl process per job: %.1f jobs/s\n' \
    "$(cat "$T"/proc.* | grep -c '^201' | sed "s|\$| / ($t1 - $t0)|" | bc -l)"

fi

if want 2; then
echo "== 2. 8 concurrent uploads of a ${BIG_MIB} MiB PDF, $BIG_ROUNDS interleaved rounds"
mkimagepdf "$T/big.pdf" $((BIG_MIB * 64))   # 64 rows of 16 KiB a MiB
bytes=$(stat -c %s "$T/big.pdf")
mib=$(echo "8 * $bytes / 1048576" | bc -l)
# The commit point of each upload is its job's "created" event (state
# preflight): the document is then fdatasync'ed, renamed into jobs/, the
# directory fsync'ed and the job row written.
mkfifo "$T/ev.fifo"
curl -sN --unix-socket "$SOCK" http://copees/v1/events > "$T/ev.fifo" &
evpid=$!
( while IFS= read -r l; do
      case $l in
      retry:*) echo "ready $EPOCHREALTIME" ;;
      data:*'"order":"BIG-'*'"state":"preflight"'*) echo "commit $EPOCHREALTIME" ;;
      esac
  done < "$T/ev.fifo" > "$T/ev.t" ) &
rdpid=$!
wait_until 10 grep -q ready "$T/ev.t"
waitbig() { wait $(jobs -p | grep -v -e "^$COPEESD_PID$" -e "^$evpid$" -e "^$rdpid$") 2>/dev/null; }
: > "$T/rates.dd"; : > "$T/rates.up"; : > "$T/answers"; : > "$T/answered"
for r in $(seq "$BIG_ROUNDS"); do
    sync
    t0=$(now)
    for c in $(seq 8); do
        dd if="$T/big.pdf" of="$T/dd.$c" bs=1M conv=fdatasync status=none &
    done
    waitbig
    t1=$(now)
    echo "$mib / ($t1 - $t0)" | bc -l >> "$T/rates.dd"
    rm -f "$T"/dd.*
    sync
    ncommit0=$(grep -c '^commit' "$T/ev.t")
    t0=$(now)
    for c in $(seq 8); do
        curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" \
             -H 'Content-Type: application/pdf' -X POST -T "$T/big.pdf" \
             "http://copees/v1/jobs?order=BIG-$r-$c&hold=true" >> "$T/answers" &
    done
    waitbig
    t1=$(now)
    wait_until 10 test "$(grep -c '^commit' "$T/ev.t")" -ge $((ncommit0 + 8))
    tc=$(awk '/^commit/{t=$2} END {print t}' "$T/ev.t")
    echo "$mib / ($tc - $t0)" | bc -l >> "$T/rates.up"
    printf '%.2f\n' "$(echo "$t1 - $t0" | bc -l)" >> "$T/answered"
done
kill "$evpid" 2>/dev/null
wait "$rdpid" 2>/dev/null
hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$COPEESD_PID/status")
up=$(median < "$T/rates.up") ddr=$(median < "$T/rates.dd")
codes=$(awk '{print $1}' "$T/answers" | sort | uniq -c | awk '{printf "%s x %s ", $1, $2}')
printf 'copeesd peak RSS: %d kB (target < 65536 kB)\n' "$hwm"
printf 'upload to commit (8 x %.1f MiB: SHA-256, fdatasync, rename, dir fsync, job row): MiB/s per round: %s; median %s\n' \
    "$(echo "$bytes / 1048576" | bc -l)" "$(xargs printf '%.0f ' < "$T/rates.up")" "$up"
printf 'dd conv=fdatasync, 8 x the same file: MiB/s per round: %s; median %s\n' \
    "$(xargs printf '%.0f ' < "$T/rates.dd")" "$ddr"
printf 'ratio upload/dd (medians): %.2f (target >= 0.8)\n' "$(echo "$up / $ddr" | bc -l)"
printf 'info: answers %s; the last of a round after %s s (preflight of every page included)\n' \
    "$codes" "$(xargs < "$T/answered")"

fi

if want 3; then
echo "== 3. /v1/health while a 1 GB upload commits and is shredded"
head -c $((1024 * 1024 * 1024)) /dev/zero > "$T/giga.bin"
sync
# One client on one connection asking 200 times a second, so that what is
# timed is the daemon's answer, not the start of a process per request.
stdbuf -oL curl -s --rate 200/s -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" \
     "http://copees/v1/health?n=[1-1000000]" > "$T/health.s" &
hp=$!
t0=$(now)
curl -s -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
     -X POST -T "$T/giga.bin" "http://copees/v1/jobs?order=GIGA"
t1=$(now)
kill "$hp" 2>/dev/null
wait "$hp" 2>/dev/null
printf 'health during 1 GB upload, commit, preflight, shred (%.1f s): %d requests, p50 %s ms, p99 %s ms (target p99 < 10 ms)\n' \
    "$(echo "$t1 - $t0" | bc -l)" "$(wc -l < "$T/health.s")" "$(pct 50 "$T/health.s")" \
    "$(pct 99 "$T/health.s")"
fi
