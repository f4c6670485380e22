#!/bin/bash
# Provable deletion: PDFs carrying a unique marker string in uncompressed
# content streams go through copeesd (one printed and shredded after the
# complaint window, one erased while queued, one rejected by preflight).
# Once their shred time has passed, the marker is in no file under our
# spool and state directories (database and WAL included), CUPS's spool,
# cache and state, and no log.  Where a loop-mounted ext4 image can be
# made, the spool and state directories live on it and the raw image is
# scanned too, after unmounting: the shredded blocks no longer hold the
# marker.  The virtual printer's own spool (it keeps what it "printed",
# -k) is the paper's side and is not scanned.
. "$(dirname "$0")/lib.sh"

MARKER="copees-marker-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

# mkmarker FILE SIZE-PT REPEAT: a hand-written PDF whose one page's content
# stream (uncompressed) shows the marker REPEAT times
mkmarker() {
    python3 - "$1" "$2" "$3" "$MARKER" <<'PY'
import sys
path, size, rep, marker = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = [f"BT /F1 6 Tf 10 {10 + (i % 100) * 7} Td ({marker} {i}) Tj ET" for i in range(rep)]
content = ("\n".join(lines) + "\n").encode()
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size} {size * 1.414:.2f}] "
        f"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream"]
out = bytearray(b"%PDF-1.4\n")
offs = []
for i, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
x = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(path, "wb").write(out)
PY
}

start_cups
img=""
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ]; then
    mkdir -p "$T/img-mnt"
    if truncate -s 64M "$T/img" && mkfs.ext4 -q -F "$T/img" 2>/dev/null &&
       mount -o loop "$T/img" "$T/img-mnt" 2>/dev/null; then
        img=$T/img
    fi
fi
if [ -n "$img" ]; then
    # unmount even when the test stops early (lib.sh's _cleanup then runs)
    trap '_rc=$?; mountpoint -q "$T/img-mnt" && umount "$T/img-mnt"; (exit $_rc); _cleanup' EXIT
    diag "spool and state on a loop-mounted ext4 image: the raw image is scanned too"
    DIRS_BASE=$T/img-mnt
else
    diag "no loop-mounted ext4 image here (needs root, mkfs.ext4 and loop devices):"
    diag "the raw-block scan is skipped; files, database, WAL and logs are still scanned"
    DIRS_BASE=$T
fi
DAEMON_EXTRA="min_free = 1M" write_conf
sed -i "s|^spool_dir = .*|spool_dir = $DIRS_BASE/spool|; s|^state_dir = .*|state_dir = $DIRS_BASE/state|" "$CONF"
start_copeesd

mkmarker "$T/print.pdf" 595 3000      # A4, about 160 KB
mkmarker "$T/erase.pdf" 595 1500
mkmarker "$T/tiny.pdf" 20 1500        # 20 pt wide: page-too-small, rejected
check "the marker is in the PDFs, uncompressed" grep -q "$MARKER" "$T/print.pdf"

upload "$T/print.pdf" "order=ORD-MK-P"
P=$(jq -r .id <<<"$BODY")
is "the marked PDF is accepted" "$STATUS" 201
upload "$T/erase.pdf" "order=ORD-MK-E&hold=true"
E=$(jq -r .id <<<"$BODY")
upload "$T/tiny.pdf" "order=ORD-MK-R"
is "the too-small one is rejected" "$STATUS" 422
check "the marker is on disk in our spool meanwhile" grep -rqa "$MARKER" "$DIRS_BASE/spool"
if [ -n "$img" ]; then
    sync
    check "... and in the raw image's blocks (so the raw scan can see it)" grep -qa "$MARKER" "$img"
fi
like "the erasure request answers 200" "$(api POST "/v1/jobs/$E/shred")" 'HTTP 200$'
check "the printed document is shredded after the window" wait_until 60 job_is "$P" .document shredded
is "the erased one is shredded" "$(job_field "$E" .document)" shredded
stop_copeesd

scan=("$DIRS_BASE/spool" "$DIRS_BASE/state" "$T/copeesd.log" "$T/cups/spool" "$T/cups/cache"
      "$T/cups/state" "$T/cups/log")
found=$(grep -rla "$MARKER" "${scan[@]}" 2>/dev/null)
is "the marker is in no file under spool, state (DB, WAL), CUPS's spool, cache, state and logs" \
    "$found" ""
check "the database and its WAL were among the files scanned" \
    bash -c "ls '$DIRS_BASE/state/' | grep -q 'copees.db'"
if [ -n "$img" ]; then
    umount "$T/img-mnt"
    is "the raw ext4 image holds no copy of the marker" "$(grep -ca "$MARKER" "$img")" 0
fi
done_testing
