#!/bin/bash
# systemd integration without systemd as PID 1: socket activation through
# systemd-socket-activate (the first request is answered), and READY=1,
# STATUS=, WATCHDOG=1 and STOPPING=1 observed on a test NOTIFY_SOCKET.
. "$(dirname "$0")/lib.sh"

command -v systemd-socket-activate >/dev/null || bail "systemd-socket-activate not installed"

# A datagram socket standing in for systemd's notify socket.
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        log.write(msg.replace("\n", " | ") + "\n")
PY
NOTIFY_PID=$!
trap 'kill $NOTIFY_PID 2>/dev/null; _cleanup' EXIT
wait_until 10 test -S "$T/notify.sock" || bail "notify listener did not start"

CUPS_SERVER=$T/no-cups.sock write_conf
systemd-socket-activate -l "$SOCK" -E NOTIFY_SOCKET="$T/notify.sock" -E WATCHDOG_USEC=400000 \
    -E COPEES_PREFLIGHT_HELPER="$COPEES_PREFLIGHT_HELPER" \
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
stop_copeesd; rc=$?
is "SIGTERM: exit 0" "$rc" 0
check "STOPPING=1 is sent" grep -q 'STOPPING=1' "$T/notify.log"
check "a socket passed by systemd is left in place" test -S "$SOCK"
done_testing
