#!/bin/bash
# bench/intake.sh - intake figures, each against a baseline measured in
# the same run on the same machine (not a test: it prints, it asserts
# nothing).  Run from a built tree:  bash bench/intake.sh [N_JOBS]
#
#  1. one-page PDFs at 16 concurrent clients: copeesd's accepted jobs/s and
#     p50/p99 latency (preflight included) vs `lp` submitting the same file
#     to the same private cupsd (raw queue to /dev/null);
#  2. peak RSS of copeesd while 8 clients each upload a 200 MB body at
#     once, and upload throughput (SHA-256 and fdatasync included) vs
#     `dd conv=fdatasync` writing the same amount to the same disk;
#  3. GET /v1/health latency (p50/p99) while a 1 GB upload commits and is
#     then shredded (a non-PDF: rejected, so shredded at once).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir=$here top_builddir=${top_builddir:-$here}
N=${1:-800}
CLIENTS=16
# shellcheck source=../tests/lib.sh
. "$here/tests/lib.sh" >/dev/null
trap '_cleanup >/dev/null 2>&1' EXIT

pct() {    # pct P FILE-of-seconds: the P-th percentile in ms
    sort -n "$2" | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100); if (i<1) i=1; printf "%.1f", a[i]*1000}'
}

start_cups
DAEMON_EXTRA="max_upload = 2G" write_conf
start_copeesd
"$MKPDF" --pages 1 "$T/one.pdf"

echo "== 1. intake of one-page PDFs, $CLIENTS clients, $N jobs"
per=$((N / CLIENTS))
t0=$(date +%s.%N)
for c in $(seq $CLIENTS); do
    ( for i in $(seq $per); do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --unix-socket "$SOCK" \
             -H 'Content-Type: application/pdf' -H "Idempotency-Key: b-$c-$i" \
             --data-binary @"$T/one.pdf" "http://copees/v1/jobs?order=BENCH-$c-$i&hold=true"
      done > "$T/lat.$c" ) &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
t1=$(date +%s.%N)
cat "$T"/lat.* > "$T/lat"
ok201=$(grep -c '^201 ' "$T/lat")
awk '{print $2}' "$T/lat" > "$T/lat.s"
rate=$(echo "$ok201 / ($t1 - $t0)" | bc -l)
printf 'copeesd: %d accepted in %.2f s = %.1f jobs/s, latency p50 %s ms, p99 %s ms\n' \
    "$ok201" "$(echo "$t1 - $t0" | bc -l)" "$rate" "$(pct 50 "$T/lat.s")" "$(pct 99 "$T/lat.s")"

lpadmin -p benchnull -E -v file:///dev/null -m raw 2>/dev/null
t0=$(date +%s.%N)
for c in $(seq $CLIENTS); do
    ( for i in $(seq $per); do lp -d benchnull "$T/one.pdf" >/dev/null; done ) &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
t1=$(date +%s.%N)
lprate=$(echo "$per * $CLIENTS / ($t1 - $t0)" | bc -l)
printf 'lp:      %d submitted in %.2f s = %.1f jobs/s\n' $((per * CLIENTS)) "$(echo "$t1 - $t0" | bc -l)" "$lprate"
printf 'ratio copeesd/lp: %.2fx (target >= 3x)\n' "$(echo "$rate / $lprate" | bc -l)"
cancel -a benchnull 2>/dev/null

echo "== 2. 8 concurrent 200 MB uploads"
head -c $((200 * 1024 * 1024)) /dev/urandom > "$T/big.bin"
sync
t0=$(date +%s.%N)
for c in $(seq 8); do
    curl -s -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
         -X POST -T "$T/big.bin" "http://copees/v1/jobs?order=BIG-$c" &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
t1=$(date +%s.%N)
hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$COPEESD_PID/status")
up=$(echo "8 * 200 / ($t1 - $t0)" | bc -l)
t0=$(date +%s.%N)
for c in $(seq 8); do
    dd if="$T/big.bin" of="$T/dd.$c" bs=1M conv=fdatasync status=none &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
t1=$(date +%s.%N)
ddr=$(echo "8 * 200 / ($t1 - $t0)" | bc -l)
rm -f "$T"/dd.*
printf 'copeesd peak RSS: %d kB (target < 65536 kB)\n' "$hwm"
printf 'upload: %.0f MB/s (8 x 200 MB, SHA-256, fdatasync, preflight, shred included); dd conv=fdatasync: %.0f MB/s; ratio %.2f (target >= 0.8)\n' \
    "$up" "$ddr" "$(echo "$up / $ddr" | bc -l)"

echo "== 3. /v1/health while a 1 GB upload commits and is shredded"
head -c $((1024 * 1024 * 1024)) /dev/zero > "$T/giga.bin"
( while [ ! -e "$T/stop" ]; do
    curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" http://copees/v1/health
  done > "$T/health.s" ) &
hp=$!
curl -s -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/pdf' \
     -X POST -T "$T/giga.bin" "http://copees/v1/jobs?order=GIGA"
touch "$T/stop"
wait $hp
printf 'health during 1 GB commit+shred: %d requests, p50 %s ms, p99 %s ms (target p99 < 10 ms)\n' \
    "$(wc -l < "$T/health.s")" "$(pct 50 "$T/health.s")" "$(pct 99 "$T/health.s")"
