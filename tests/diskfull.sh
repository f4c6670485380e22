#!/bin/bash
# A full disk: the spool on a small tmpfs (20 MB).  An upload that cannot
# fit gets 507 and leaves nothing behind (a large one while it streams, a
# small one at its commit), min_free refuses in advance, and the daemon
# keeps serving: a small upload right after succeeds.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/small"
if ! mount -t tmpfs -o size=20m,mode=0700 tmpfs "$T/small" 2>/dev/null; then
    echo "ok 1 # SKIP cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)"
    echo "1..1"
    exit 0
fi
trap 'stop_copeesd; umount "$T/small" 2>/dev/null; _cleanup' EXIT
sed_conf() { sed -i "s|^spool_dir = .*|spool_dir = $T/small/spool|" "$CONF"; }

DAEMON_EXTRA="min_free = 0" CUPS_SERVER=$T/no-cups.sock write_conf
sed_conf
start_copeesd
head -c $((40 * 1024 * 1024)) /dev/zero > "$T/big.pdf"
out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' -H 'Transfer-Encoding: chunked' \
      -X POST -T "$T/big.pdf" -w '\nHTTP %{http_code}' 'http://copees/v1/jobs?order=ORD-FULL')
like "an upload that fills the disk gets 507" "$out" 'HTTP 507$'
like "... with error insufficient-storage" "$out" '"error":"insufficient-storage"'
check "nothing is left in the spool" wait_until 10 bash -c "[ \$(find '$T/small/spool/incoming' '$T/small/spool/jobs' -type f | wc -l) = 0 ]"
"$MKPDF" "$T/a.pdf"
upload "$T/a.pdf" "order=ORD-AFTER"
is "the daemon keeps serving: a small upload right after gets 201" "$STATUS" 201
# A small upload (held in memory until its commit writes it) whose disk
# fills after its headers passed the free-space check: the commit's write
# fails, 507, counted, nothing left behind.  The client sends the head and
# 100 bytes, the disk is filled, then it sends the rest.
metric() { curl -s --unix-socket "$SOCK" http://copees/metrics | sed -n "s/^$1 //p"; }
REJ='copees_uploads_rejected_total{reason="insufficient-storage"}'
r0=$(metric "$REJ") b0=$(metric copees_upload_bytes_total)
files() { find "$T/small/spool/$1" -type f | wc -l; }
j0=$(files jobs)
python3 - "$SOCK" "$T/a.pdf" "$T/go" > "$T/held.out" <<'PY' &
import os, socket, sys, time
sock, path, go = sys.argv[1:4]
body = open(path, "rb").read()
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(b"POST /v1/jobs?order=ORD-FULL-HELD HTTP/1.1\r\nHost: copees\r\n"
          b"Content-Type: application/pdf\r\nConnection: close\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body[:100])
while not os.path.exists(go):
    time.sleep(0.02)
s.sendall(body[100:])
answer = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    answer += d
print(answer.split(b"\r\n", 1)[0].decode(), answer.rsplit(b"\r\n\r\n", 1)[-1].decode())
PY
HELD_PID=$!
bytes_past() { [ "$(metric copees_upload_bytes_total)" -ge $(( b0 + 100 )) ]; }
check "the small upload's head and first bytes are in" wait_until 10 bytes_past
head -c $((30 * 1024 * 1024)) /dev/zero > "$T/small/filler" 2>/dev/null
touch "$T/go"
wait "$HELD_PID"
like "a small upload whose disk filled before its commit gets 507" "$(cat "$T/held.out")" '^HTTP/1.1 507 '
like "... with error insufficient-storage" "$(cat "$T/held.out")" '"error": ?"insufficient-storage"'
is "... counted in copees_uploads_rejected_total" "$(metric "$REJ")" "$(( ${r0:-0} + 1 ))"
is "... and leaves nothing in the spool" "$(files incoming) $(files jobs)" "0 $j0"
rm -f "$T/small/filler"
upload "$T/a.pdf" "order=ORD-FULL-HELD"
is "with room again the same upload gets 201" "$STATUS" 201
stop_copeesd

# min_free: refused before a byte is stored
DAEMON_EXTRA="min_free = 30M" CUPS_SERVER=$T/no-cups.sock write_conf
sed_conf
start_copeesd
upload "$T/a.pdf" "order=ORD-MINFREE"
is "free space under min_free: 507 at once" "$STATUS" 507
stop_copeesd
done_testing
