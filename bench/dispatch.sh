#!/bin/bash
# bench/dispatch.sh - dispatch figures against real CUPS queues, each next
# to a baseline measured in the same run on the same machine (not a test:
# it prints, it asserts nothing).  Run from a built tree:
#     bash bench/dispatch.sh [N_JOBS]        (BENCH_QUICK=1: a smoke run)
#
# Three virtual printers (ippeveprinter, the recorder as their command: no
# print time of their own) behind one private cupsd, queues b1 b2 b3.
#  1. accept -> job created in CUPS, with the printers idle: one-page jobs
#     uploaded one every 0.5 s (below what three queues drain); "accept" is
#     when the client has read the 201, "created" is cupsd's own
#     'Queued on' log line for the CUPS job (LogTimeFormat usecs, same
#     clock).  The audit log (events.at) and /metrics'
#     copees_dispatch_latency_seconds count whole seconds, too coarse for
#     a 20 ms target: they are shown as a cross-check only;
#  2. end to end: N one-page jobs uploaded by 4 clients until all are
#     "printed", against `lp` sending the same file N times to the same
#     three queues (round robin, 4 clients) until CUPS has completed all.
#     copeesd is stopped during the lp run.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir=$here top_builddir=${top_builddir:-$here}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    N=${1:-32} NLAT=${BENCH_NLAT:-10}
else
    N=${1:-1000} NLAT=${BENCH_NLAT:-100}
fi
CLIENTS=4
QUEUES=(b1 b2 b3)
# shellcheck source=../tests/lib.sh
. "$here/tests/lib.sh" >/dev/null
trap '_cleanup >/dev/null 2>&1' EXIT

pct() {    # pct P FILE-of-numbers: the P-th percentile (nearest rank)
    sort -g "$2" | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'
}
now() { date +%s.%N; }
printed_count() {
    curl -s --unix-socket "$SOCK" http://copees/metrics |
        awk '$1 == "copees_jobs{state=\"printed\"}" { print $2 }'
}
wait_count() {    # wait_count TARGET CMD...: poll CMD's number until it reaches TARGET
    local target=$1 n end=$(( $(date +%s) + 120 + 2 * N )); shift
    while :; do
        n=$("$@")
        [ "${n:-0}" -ge "$target" ] && return 0
        [ "$(date +%s)" -lt "$end" ] || { echo "gave up waiting: $n of $target (see $T)"; return 1; }
        sleep 0.25
    done
}

# LogLevel info: 'Queued on' is an info line, and debug logging would
# slow cupsd for both sides alike.  MaxJobs 0: cupsd's default of 500
# active jobs would refuse lp's jobs past the 500th ("Too many active
# jobs"); copeesd never has more than max_inflight per queue in CUPS.
CUPS_LOGLEVEL=info CUPS_CONF_EXTRA="LogTimeFormat usecs
MaxJobs 0" start_cups
for q in "${QUEUES[@]}"; do add_printer "$q"; done
PRINTERS=$(for q in "${QUEUES[@]}"; do printer_section "$q" "$q" iso_a4_210x297mm false false 60; done)
DEFAULT_PRINTER=no write_conf "$PRINTERS"
start_copeesd
"$MKPDF" --pages 1 "$T/one.pdf"
echo "CUPS $(cups-config --version), 3 ippeveprinter queues," \
     "copeesd poll_interval $(sed -n 's/^poll_interval = //p' "$CONF"), max_inflight 2"

# ------------------------------------------------------------ 1. latency
echo "== 1. accept -> job created in CUPS, printers idle, $NLAT jobs, one every 0.5 s"
cat > "$T/lat.py" <<'PY'
import json, socket, sys, time
sock, pdf, n = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"POST /v1/jobs?order=LAT-%d HTTP/1.1\r\nHost: copees\r\n"
              b"Content-Type: application/pdf\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % (i, len(pdf)) + pdf)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    t = time.time()
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 201 " not in head.split(b"\r\n")[0]:
        print("upload", i, head.split(b"\r\n")[0].decode(), file=sys.stderr)
    else:
        print(json.loads(body)["id"], "%.6f" % t, flush=True)
    time.sleep(0.5)
PY
python3 "$T/lat.py" "$SOCK" "$T/one.pdf" "$NLAT" > "$T/accept.txt"
wait_count "$NLAT" printed_count
sqlite3 "$T/state/copees.db" "SELECT id, cups_job_id FROM jobs WHERE order_ref LIKE 'LAT-%'" |
    tr '|' ' ' > "$T/cupsid.txt"
# cupsd's 'Queued on' line of each CUPS job, as epoch seconds
python3 - "$T/cups/log/error_log" > "$T/queued.txt" <<'PY'
import re, sys
from datetime import datetime
pat = re.compile(r'^I \[(\S+) ([+-]\d{4})\] \[Job (\d+)\] Queued on ')
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line)
    if m:
        t = datetime.strptime(m.group(1) + " " + m.group(2), "%d/%b/%Y:%H:%M:%S.%f %z")
        print(m.group(3), "%.6f" % t.timestamp())
PY
join <(sort -k1,1 "$T/accept.txt") <(sort -k1,1 "$T/cupsid.txt") | sort -k3,3 |
    join -1 3 -2 1 - <(sort -k1,1 "$T/queued.txt") |
    awk '{ printf "%.3f\n", ($4 - $3) * 1000 }' > "$T/lat.ms"
printf 'copeesd: %d of %d jobs matched; accept -> created in CUPS: p50 %s ms, p99 %s ms, max %s ms (target p50 < 20 ms)\n' \
    "$(wc -l < "$T/lat.ms")" "$NLAT" "$(pct 50 "$T/lat.ms")" "$(pct 99 "$T/lat.ms")" "$(pct 100 "$T/lat.ms")"
sqlite3 "$T/state/copees.db" "
    SELECT s.at - q.at FROM events q JOIN events s ON s.job_id = q.job_id
    JOIN jobs j ON j.id = q.job_id AND j.order_ref LIKE 'LAT-%'
    WHERE q.type = 'state' AND q.detail LIKE '% -> queued%'
      AND s.type = 'state' AND s.detail LIKE 'queued -> sent%'" > "$T/lat.db"
printf 'cross-check, audit log (whole seconds): queued -> sent p50 %s s, p99 %s s\n' \
    "$(pct 50 "$T/lat.db")" "$(pct 99 "$T/lat.db")"
curl -s --unix-socket "$SOCK" http://copees/metrics |
    awk '/^copees_dispatch_latency_seconds_(sum|count)/ { v[$1] = $2 }
         END { s = v["copees_dispatch_latency_seconds_sum"]; c = v["copees_dispatch_latency_seconds_count"];
               printf "cross-check, /metrics copees_dispatch_latency_seconds (whole seconds): %d observations, mean %.2f s\n", c, c ? s / c : 0 }'

# ------------------------------------------------------------ 2. end to end
echo "== 2. $N one-page jobs to printed, $CLIENTS clients, 3 queues"
base=$(printed_count)
per=$((N / CLIENTS))
N=$((per * CLIENTS))
t0=$(now)
for c in $(seq $CLIENTS); do
    ( for i in $(seq "$per"); do
        curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" \
             -H 'Content-Type: application/pdf' --data-binary @"$T/one.pdf" \
             "http://copees/v1/jobs?order=E2E-$c-$i"
      done > "$T/codes.$c" ) &
done
wait $(jobs -p | grep -v "^$COPEESD_PID$") 2>/dev/null
t_up=$(now)
wait_count $((base + N)) printed_count
t1=$(now)
ours=$(echo "$t1 - $t0" | bc -l)
printf 'copeesd: %d accepted (%s), all uploaded after %.1f s, all printed after %.1f s = %.2f jobs/s\n' \
    "$(cat "$T"/codes.* | grep -c '^201$')" "$(cat "$T"/codes.* | sort | uniq -c | awk '{printf "%s%s x%s", s, $2, $1; s=", "}')" \
    "$(echo "$t_up - $t0" | bc -l)" "$ours" "$(echo "$N / $ours" | bc -l)"
stop_copeesd

t0=$(now)
for c in $(seq $CLIENTS); do
    ( for i in $(seq "$per"); do
        lp -d "${QUEUES[$(( (c * per + i) % 3 ))]}" "$T/one.pdf" > /dev/null && echo ok
      done > "$T/lp.$c" 2> "$T/lp.err.$c" ) &
done
wait
t_up=$(now)
nlp=$(cat "$T"/lp.[0-9]* | grep -c '^ok$')
[ "$nlp" = "$N" ] || echo "lp: only $nlp of $N submitted: $(sort "$T"/lp.err.* | uniq -c | head -3)"
pending() { lpstat -o 2>/dev/null | grep -c .; }
end=$(( $(date +%s) + 120 + 2 * N ))
until [ "$(pending)" = 0 ] || [ "$(date +%s)" -ge "$end" ]; do sleep 0.25; done
t1=$(now)
lpt=$(echo "$t1 - $t0" | bc -l)
printf 'lp:      %d submitted after %.1f s, all completed by CUPS after %.1f s = %.2f jobs/s\n' \
    "$nlp" "$(echo "$t_up - $t0" | bc -l)" "$lpt" "$(echo "$nlp / $lpt" | bc -l)"
printf 'ratio copeesd/lp end to end: %.2fx (target <= 1.1x)\n' "$(echo "$ours / $lpt" | bc -l)"
