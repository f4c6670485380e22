#!/bin/bash
# Roles by SO_PEERCRED on a socket whose mode lets every user connect, so
# any refusal is the daemon's: root and admin_group are admin,
# submit_group may submit and read jobs, anyone else gets 403 everywhere.
# Users and groups are Debian's stock system accounts (daemon, bin, nobody).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || bail "this test switches users with runuser: run it as root"
DAEMON_EXTRA=$'socket_mode = 0666\nsubmit_group = daemon\nadmin_group = bin' \
    CUPS_SERVER=$T/no-cups.sock write_conf
start_copeesd
"$MKPDF" "$T/a.pdf"
chmod 0644 "$T/a.pdf"
is "the socket lets everyone connect (0666)" "$(stat -c %a "$SOCK")" 666

as() {     # as USER METHOD PATH [curl args]: HTTP status only
    local u=$1 m=$2 p=$3; shift 3
    runuser -u "$u" -- curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" "http://copees$p"
}
upload_as() {
    as "$1" POST "/v1/jobs?order=$2" -H 'Content-Type: application/pdf' --data-binary @"$T/a.pdf"
}

# anyone else: 403 on every endpoint
for ep in "GET /v1/health" "GET /v1/jobs" "GET /v1/jobs/1" "GET /v1/printers" "DELETE /v1/jobs/1" \
          "POST /v1/jobs/1/hold" "GET /v1/nowhere"; do
    is "nobody: $ep is 403" "$(as nobody $ep)" 403
done
is "nobody: an upload is 403" "$(upload_as nobody ORD-N)" 403
out=$(runuser -u nobody -- curl -s --unix-socket "$SOCK" http://copees/v1/jobs)
like "the 403 is in the error shape" "$out" '^\{"error":"forbidden","message":'

runuser -u nobody -- "$COPEESCTL" -S "$SOCK" -o 2>/dev/null
is "copeesctl as nobody: exit 4 (not allowed)" "$?" 4

# lp (the copees backend run by cupsd): backend events only
for ep in "GET /v1/jobs" "GET /v1/health" "DELETE /v1/jobs/1"; do
    is "lp: $ep is 403" "$(as lp $ep)" 403
done
is "lp: an upload is 403" "$(upload_as lp ORD-LP)" 403

# submit_group: the web tier
is "submit_group member: upload 201" "$(upload_as daemon ORD-S)" 201
is "submit_group member: list jobs 200" "$(as daemon GET /v1/jobs)" 200
is "submit_group member: health 200" "$(as daemon GET /v1/health)" 200

# admin_group and root
is "admin_group member: upload 201" "$(upload_as bin ORD-A)" 201
is "admin_group member: printers 200" "$(as bin GET /v1/printers)" 200
is "root: jobs 200" "$(as root GET /v1/jobs)" 200

creators=$(sqlite3 "$T/state/copees.db" "SELECT uid FROM events WHERE type='created' ORDER BY id" | xargs)
is "the audit log records who submitted each job" "$creators" "$(id -u daemon) $(id -u bin)"
check "no job was created by the refused upload" \
    bash -c "[ \$(sqlite3 '$T/state/copees.db' 'SELECT count(*) FROM jobs') = 2 ]"
done_testing
