#!/bin/bash
# A full disk: the spool on a small tmpfs (20 MB).  An upload that cannot
# fit gets 507 and leaves nothing behind, min_free refuses in advance, and
# the daemon keeps serving: a small upload right after succeeds.
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
check "nothing is left in the spool" wait_until 10 bash -c "[ \$(find '$T/small/spool' -type f | wc -l) = 0 ]"
"$MKPDF" "$T/a.pdf"
upload "$T/a.pdf" "order=ORD-AFTER"
is "the daemon keeps serving: a small upload right after gets 201" "$STATUS" 201
stop_copeesd

# min_free: refused before a byte is stored
DAEMON_EXTRA="min_free = 30M" CUPS_SERVER=$T/no-cups.sock write_conf
sed_conf
start_copeesd
upload "$T/a.pdf" "order=ORD-MINFREE"
is "free space under min_free: 507 at once" "$STATUS" 507
stop_copeesd
done_testing
