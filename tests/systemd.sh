#!/bin/bash
# systemd integration without systemd as PID 1: socket activation through
# systemd-socket-activate (the first request is answered), and READY=1,
# STATUS=, WATCHDOG=1 and STOPPING=1 observed on a test NOTIFY_SOCKET.
# In test builds, SIGUSR2 stalls the event loop (COPEES_TEST_STALL seconds):
# the watchdog pings stop for that long and resume after.
. "$(dirname "$0")/lib.sh"

command -v systemd-socket-activate >/dev/null || bail "systemd-socket-activate not installed"

# A datagram socket standing in for systemd's notify socket.
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        log.write("%.3f %s\n" % (time.time(), msg.replace("\n", " | ")))
PY
NOTIFY_PID=$!
trap 'kill $NOTIFY_PID 2>/dev/null; _cleanup' EXIT
wait_until 10 test -S "$T/notify.sock" || bail "notify listener did not start"

CUPS_SERVER=$T/no-cups.sock write_conf
systemd-socket-activate -l "$SOCK" -E NOTIFY_SOCKET="$T/notify.sock" -E WATCHDOG_USEC=400000 \
    -E COPEES_PREFLIGHT_HELPER="$COPEES_PREFLIGHT_HELPER" -E COPEES_TEST_STALL=3 \
    "$COPEESD" -f -c "$CONF" >> "$T/copeesd.log" 2>&1 &
COPEESD_PID=$!
check "the activation socket exists before copeesd runs" wait_until 10 test -S "$SOCK"
out=$(curl -s -m 30 --unix-socket "$SOCK" http://copees/v1/health)
like "the first request on the passed socket is answered" "$out" '"ready":true'
check "READY=1 is sent" wait_until 10 grep -q 'READY=1' "$T/notify.log"
check "READY=1 comes with a STATUS= line" grep -q 'READY=1 | STATUS=' "$T/notify.log"
check "the watchdog is pinged repeatedly" \
    wait_until 10 bash -c "[ \$(grep -c 'WATCHDOG=1' '$T/notify.log') -ge 3 ]"
is "copeesd logs that it serves" "$(grep -c 'startup: serving' "$T/copeesd.log")" 1

# pings_after T: WATCHDOG=1 datagrams received after time T (seconds)
pings_after() { awk -v t="$1" '$1 > t && / WATCHDOG=1/' "$T/notify.log" | wc -l; }
# max_gap FROM TO: the longest time between pings received from FROM to TO
max_gap() {
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && / WATCHDOG=1/ {
        if (n++) { g = $1 - last; if (g > max) max = g } last = $1 } END { printf "%.1f", max }' "$T/notify.log"
}
if grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null; then
    t0=$(date +%s.%N)
    wait_until 10 bash -c "[ \$(awk -v t=$t0 '\$1 > t && / WATCHDOG=1/' '$T/notify.log' | wc -l) -ge 3 ]"
    t1=$(date +%s.%N)
    like "before a stall the pings come every 0.2 s (half of WATCHDOG_USEC; under 1 s)" "$(max_gap "$t0" "$t1")" '^0\.[0-9]$'
    kill -USR2 "$COPEESD_PID"
    check "SIGUSR2 stalls the loop (test builds)" wait_until 10 grep -q 'test: stalling the loop for 3 s' "$T/copeesd.log"
    is "a request during the stall is not answered (1 s limit)" \
        "$(curl -s -o /dev/null -m 1 -w '%{http_code}' --unix-socket "$SOCK" http://copees/v1/health)" 000
    check "the loop runs again after the stall" wait_until 20 grep -q 'test: the loop runs again' "$T/copeesd.log"
    t2=$(date +%s.%N)
    check "the pings resume after the stall" wait_until 10 bash -c "[ \$(awk -v t=$t2 '\$1 > t && / WATCHDOG=1/' '$T/notify.log' | wc -l) -ge 3 ]"
    gap=$(max_gap "$t0" "$(date +%s.%N)")
    check "no ping came during the stall (longest gap ${gap} s, the stall 3 s)" \
        awk -v g="$gap" 'BEGIN { exit !(g >= 2.7 && g <= 6) }'
    like "after the stall requests are answered again" \
        "$(curl -s -m 30 --unix-socket "$SOCK" http://copees/v1/health)" '"ready":true'
else
    ok "# SKIP built with --disable-test-knobs: no stall knob"
fi
stop_copeesd; rc=$?
is "SIGTERM: exit 0" "$rc" 0
check "STOPPING=1 is sent" grep -q 'STOPPING=1' "$T/notify.log"
check "a socket passed by systemd is left in place" test -S "$SOCK"
done_testing
