#!/bin/bash
# HTTP/1.1 corners a client can abuse: pipelined requests whose answers it
# never reads (the daemon stops reading too, its memory stays bounded,
# and other clients are served), a client that pipelines and reads gets
# every answer, chunked trailers (too large: 431 and the upload
# discarded; never taken for the next request's headers), an error that
# closes the connection ends it (no later pipelined request is served),
# HEAD answers carry no body, and min_free holds for chunked and
# concurrent uploads (a small tmpfs of its own).  No CUPS: jobs are held.
. "$(dirname "$0")/lib.sh"

CUPS_SERVER=$T/no-cups.sock write_conf
"$MKPDF" --pages 1 --text "pipeline" "$T/a.pdf"
start_copeesd
# exchange(DATA): DATA sent on one connection to the socket argv[1], and
# all that comes back until the daemon closes it (the python snippets
# below import it)
cat > "$T/exchange.py" <<'PY'
import socket, sys
def exchange(data, timeout=20):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<timeout>"
    return out
PY
export PYTHONPATH=$T
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$COPEESD_PID/status"; }

# 1. A client pipelines GET /metrics without reading any answer, for up to
#    8 s or 16 MB of requests.  Before the fix the daemon read on and
#    queued every answer (over 1 GB in 15 s).
rss0=$(rss_kb)
python3 - "$SOCK" > "$T/flood.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.settimeout(2)
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
sent, t0 = 0, time.time()
try:
    while sent < (16 << 20) and time.time() - t0 < 8:
        s.sendall(req)
        sent += len(req)
except socket.timeout:
    pass
print("sent", sent)
open(sys.argv[1] + ".flooded", "w").close()
time.sleep(3)
s.close()
PY
FLOOD=$!
check "the flooding client is stopped: the daemon no longer reads it" \
    wait_until 30 test -e "$SOCK.flooded"
rss1=$(rss_kb)
diag "$(cat "$T/flood.out"); copeesd RSS $rss0 kB before, $rss1 kB after"
check "... and copeesd's memory stays bounded (RSS grew by $((rss1 - rss0)) kB)" \
    test $((rss1 - rss0)) -lt 65536
t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 10 --unix-socket "$SOCK" http://copees/v1/health)
check "another client is served meanwhile ($t s)" awk -v t="$t" 'BEGIN { exit !(t > 0 && t < 5) }'
wait "$FLOOD"

# 2. A client that pipelines 2000 requests and reads as it goes gets all.
n=$(python3 - "$SOCK" <<'PY'
import socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
N = 2000
def send():
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * (N - 1) +
              b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
threading.Thread(target=send, daemon=True).start()
data = b""
try:
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        data += d
except socket.timeout:
    pass
print(data.count(b"HTTP/1.1 200 "))
PY
)
is "a pipelining client that reads gets every answer" "$n" 2000

# 3. Chunked trailers over the 16 KiB head limit: 431, and the upload is
#    discarded (no file left in incoming/, no descriptor kept).
fds() { ls "/proc/$COPEESD_PID/fd" | wc -l; }
fd0=$(fds)
for i in 1 2 3; do
    python3 - "$SOCK" "$T/a.pdf" > "$T/trailer.out" <<'PY'
import socket, sys
pdf = open(sys.argv[2], "rb").read()
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
s.sendall(b"POST /v1/jobs?order=ORD-TRAILER HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n" +
          b"%x\r\n" % len(pdf) + pdf + b"\r\n0\r\n" +
          b"".join(b"X-T%d: %s\r\n" % (i, b"a" * 1000) for i in range(20)) + b"\r\n")
print(s.recv(4096).split(b"\r\n", 1)[0].decode())
PY
done
like "trailers over the head limit: 431" "$(cat "$T/trailer.out")" '^HTTP/1.1 431 '
check "... the upload is discarded: nothing left in incoming/" \
    wait_until 10 bash -c "[ -z \"\$(ls -A '$T/spool/incoming')\" ]"
check "... and no descriptor kept ($fd0 before)" wait_until 10 bash -c "[ \$(ls /proc/$COPEESD_PID/fd | wc -l) -le $fd0 ]"
is "... no job was made" "$(sqlite3 "$T/state/copees.db" "SELECT count(*) FROM jobs WHERE order_ref = 'ORD-TRAILER'")" 0

# 4. A trailer is not taken for a header of the next pipelined request:
#    an invalid Idempotency-Key as trailer of the first upload must not
#    make the second one a 400.
out=$(python3 - "$SOCK" "$T/a.pdf" <<'PY'
import sys
from exchange import exchange
pdf = open(sys.argv[2], "rb").read()
r1 = (b"POST /v1/jobs?order=ORD-TR1&hold=true HTTP/1.1\r\nHost: x\r\n"
      b"Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n" +
      b"%x\r\n" % len(pdf) + pdf + b"\r\n0\r\nIdempotency-Key: not a valid key\r\n\r\n")
r2 = (b"POST /v1/jobs?order=ORD-TR2&hold=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      b"Content-Type: application/pdf\r\nContent-Length: %d\r\n\r\n" % len(pdf) + pdf)
data = exchange(r1 + r2)
print(" ".join(p[:3].decode() for p in data.split(b"HTTP/1.1 ")[1:]))
PY
)
is "a trailer does not reach the next request: both uploads get 201" "$out" "201 201"

# 5. An error answered with Connection: close ends the connection: the
#    requests pipelined behind it are not served.
out=$(python3 - "$SOCK" <<'PY'
from exchange import exchange
data = exchange(b"POST /v1/jobs?order=ORD-EMPTY HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n"
                b"Content-Length: 0\r\n\r\n"
                b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 10)
print(data.count(b"HTTP/1.1 "), data.split(b"\r\n", 1)[0].decode())
PY
)
is "an error that closes answers once, then the connection ends" "$out" "1 HTTP/1.1 400 Bad Request"

# 6. HEAD: the head of the answer only (a body would be read as the start
#    of the next answer on a kept-alive connection).
out=$(python3 - "$SOCK" <<'PY'
from exchange import exchange
data = exchange(b"HEAD /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 10)
first, rest = data.split(b"\r\n\r\n", 1)
print(first.split(b"\r\n", 1)[0].decode(), "|", rest[:17].decode(errors="replace"))
PY
)
like "HEAD gets a head without a body: the next answer follows at once" "$out" \
    '^HTTP/1.1 [0-9]{3} .* \| HTTP/1.1 200 OK'
stop_copeesd

# 7. min_free with a spool on a 20 MB tmpfs of its own and min_free 12M:
#    a chunked upload (size unknown at the check) is cut short with 507
#    once it would go below; and of two concurrent uploads of 5 MB that
#    each fit alone, the second is refused while the first still streams.
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=20m,mode=0700 tmpfs "$T/small" 2>/dev/null; then
    ok "# SKIP cannot mount a tmpfs here (min_free checks)"
    done_testing
    exit 0
fi
trap 'stop_copeesd; umount "$T/small" 2>/dev/null; _cleanup' EXIT
DAEMON_EXTRA="min_free = 12M" CUPS_SERVER=$T/no-cups.sock write_conf
sed -i -e "s|^spool_dir = .*|spool_dir = $T/small/spool|" \
    -e "s|^state_dir = .*|state_dir = $T/state2|" "$CONF"    # a new instance
start_copeesd
head -c $((16 * 1024 * 1024)) /dev/zero > "$T/big.pdf"
out=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/pdf' -H 'Transfer-Encoding: chunked' \
      -X POST -T "$T/big.pdf" -w '\nHTTP %{http_code}' 'http://copees/v1/jobs?order=ORD-CHUNKED-BIG')
like "a chunked upload that would go below min_free: 507" "$out" '"error":"insufficient-storage".*HTTP 507$'
check "... and nothing is left in the spool" wait_until 10 bash -c \
    "[ \$(find '$T/small/spool/incoming' '$T/small/spool/jobs' -type f | wc -l) = 0 ]"
metric() { curl -s --unix-socket "$SOCK" http://copees/metrics | sed -n "s/^$1 //p"; }
b0=$(metric copees_upload_bytes_total)
python3 - "$SOCK" "$T/go" > "$T/first.out" <<'PY' &
import os, socket, sys, time
sock, go = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
n = 5 << 20
s.sendall(b"POST /v1/jobs?order=ORD-FIRST HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n"
          b"Connection: close\r\nContent-Length: %d\r\n\r\n" % n + b"%PDF" + b"\0" * 996)
while not os.path.exists(go):
    time.sleep(0.02)
s.close()
PY
FIRST=$!
first_in() { [ "$(metric copees_upload_bytes_total)" -ge $((b0 + 1000)) ]; }
check "the first upload is under way" wait_until 10 first_in
head -c $((5 * 1024 * 1024)) /dev/zero > "$T/second.pdf"
upload "$T/second.pdf" "order=ORD-SECOND"
is "a second concurrent upload that fits only without the first's: 507" "$STATUS" 507
touch "$T/go"
wait "$FIRST"
stop_copeesd
done_testing
