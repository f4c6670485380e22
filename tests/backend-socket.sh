#!/bin/bash
# How the copees backend reaches copeesd's socket as shipped: the socket is
# 0660, group copees (copeesd.socket), and cupsd runs backends as lp with
# no supplementary groups (cups-exec drops them), so lp being a member of
# copees in /etc/group does not let the backend in; the ACL entry for lp
# that copeesd.socket's ExecStartPost= sets does.
#
# copeesd runs as user copees (from sysusers.conf, tests/ns-users.sh) and
# makes the socket itself with the unit's mode and group; the test then
# runs the unit's own ExecStartPost= line on it, as systemd would.  cupsd
# runs the built backend as lp for a queue copees:ipp://...
. "$(dirname "$0")/ns-users.sh"
ns_enter "$@"
. "$(dirname "$0")/lib.sh"

command -v setfacl >/dev/null && command -v getfacl >/dev/null || bail "setfacl/getfacl not installed (package acl)"
SOCKUNIT=$top_builddir/systemd/copeesd.socket
[ -f "$SOCKUNIT" ] || bail "the units are not built (make)"
BACKEND=$top_builddir/backend/copees
[ -x "$BACKEND" ] || bail "no backend at $BACKEND"

# ------------------------------------------------------------ users
# lp a member of copees (what one would try first), and daemon standing in
# for the web tier's user.
ns_users
ns_group_members copees lp,daemon
like "lp is a member of copees in the group database" "$(id -nG lp)" '(^| )copees( |$)'

# ------------------------------------------------------------ CUPS with the backend
SB=$T/serverbin
mkdir -p "$SB/backend"
for f in /usr/lib/cups/*; do [ "$(basename "$f")" = backend ] || ln -s "$f" "$SB/"; done
for f in /usr/lib/cups/backend/*; do ln -s "$f" "$SB/backend/"; done
install -m 0755 "$BACKEND" "$SB/backend/copees"
install -d -o copees -g copees -m 0700 "$T/spool" "$T/state"
install -d -o copees -g copees -m 0755 "$T/run"
SOCK=$T/run/copeesd.sock
CUPS_FILES_EXTRA=$'ServerBin '"$SB"$'\nSetEnv COPEES_SOCKET '"$SOCK" start_cups
lpadmin -p viacopees -E -v "$IPP_TEST_URI" -m everywhere > "$T/lpadmin.out" 2>&1 &&
    lpadmin -p viacopees -v "copees:$IPP_TEST_URI" >> "$T/lpadmin.out" 2>&1 || bail "lpadmin failed"
wait_until 30 bash -c "lpstat -a viacopees | grep -q accepting" || bail "queue viacopees not accepting"

# The unit's socket settings, applied by copeesd itself.
mode=$(sed -n 's/^SocketMode=//p' "$SOCKUNIT")
group=$(sed -n 's/^SocketGroup=//p' "$SOCKUNIT")
listen=$(sed -n 's/^ListenStream=//p' "$SOCKUNIT")
post=$(sed -n 's/^ExecStartPost=//p' "$SOCKUNIT")
is "the socket unit: mode 0660, group copees" "$mode $group" "0660 copees"
like "the socket unit sets an ACL for lp once bound" "$post" "setfacl -m u:lp:rw $listen\$"
DAEMON_EXTRA=$'socket_mode = '"$mode"$'\nsocket_group = '"$group"$'\nsubmit_group = '"$group" write_conf
sed -i 's/^queue = test1$/queue = viacopees/' "$CONF"
cat > "$T/copeesd-as-copees" <<EOF
#!/bin/bash
exec setpriv --reuid=copees --regid=copees --init-groups "$top_builddir/copeesd" "\$@"
EOF
chmod 0755 "$T/copeesd-as-copees"
COPEESD=$T/copeesd-as-copees
start_copeesd
DB=$T/state/copees.db
is "copeesd made the socket 0660 copees:copees" "$(stat -c '%a %U:%G' "$SOCK")" "660 copees:copees"

as_lp_backend() {  # as cups-exec runs a backend: uid and gid lp, no other group
    setpriv --reuid=lp --regid=lp --clear-groups "$@"
}
probe() {          # probe RUNNER...: HTTP status of GET /v1/health (000: no connection)
    "$@" curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://copees/v1/health
}
backend_exits() {  # backend_exits ID: the job's backend-exit events
    sqlite3 "$DB" "SELECT count(*) || ' ' || coalesce(max(uid), '') FROM events WHERE job_id=$1 AND type='backend-exit'"
}
print_one() {      # print_one ORDER: upload, wait for printed; prints the job id
    upload "$T/doc.pdf" "order=$1"
    [ "$STATUS" = 201 ] || bail "upload: $STATUS $BODY"
    local id; id=$(jq -r .id <<<"$BODY")
    wait_until 120 job_is "$id" .state printed || bail "job $id did not print"
    echo "$id"
}
"$MKPDF" --pages 2 "$T/doc.pdf" || bail "mkpdf failed"
chmod 0644 "$T/doc.pdf"

# ------------------------------------------------------------ without the ACL
is "the web tier (daemon, a member of copees) connects and may submit" \
    "$(probe setpriv --reuid=daemon --regid=daemon --init-groups)" 200
is "lp with its groups (copees among them) connects" \
    "$(probe setpriv --reuid=lp --regid=lp --init-groups)" 403
is "lp as cups-exec runs a backend (no groups) cannot connect" "$(probe as_lp_backend)" 000
A=$(print_one ORD-BS-1)
cid=$(job_field "$A" .cups_job_id)
check "cupsd ran the copees backend for the job" \
    grep -q "\[Job $cid\] copees: running the ipp backend" "$CUPS_TEST_DIR/log/error_log"
like "... which could not report: a WARNING in cupsd's log" \
    "$(grep -a "\[Job $cid\] .*copees: " "$CUPS_TEST_DIR/log/error_log" | grep -i 'warning\|denied' | head -1)" \
    '[Pp]ermission denied'
is "... so copeesd recorded no backend report" "$(backend_exits "$A")" "0 "
health_warns() {   # /v1/health warns that the backend may not connect
    curl -s --unix-socket "$SOCK" http://copees/v1/health |
        jq -r '.warnings[]' | grep -q "^queue viacopees prints through the copees backend, which runs as lp and may not connect to $SOCK"
}
check "/v1/health warns that the backend (lp) may not connect to the socket" wait_until 30 health_warns

# ------------------------------------------------------------ the unit's ExecStartPost=
read -ra cmd <<<"${post#-}"
cmd=("${cmd[@]/#$listen/$SOCK}")
"${cmd[@]}"
is "ExecStartPost= (${cmd[*]}) succeeds" "$?" 0
like "the socket now has an entry for lp" "$(getfacl -cp "$SOCK" 2>/dev/null | tr '\n' ' ')" 'user:lp:rw-'
is "... and is still 0660 for everyone else" "$(stat -c %a "$SOCK")" 660
is "lp without groups connects now (the backend role: 403 on anything but its events)" \
    "$(probe as_lp_backend)" 403
is "another user still cannot connect" "$(probe setpriv --reuid=nobody --regid=nogroup --clear-groups)" 000
B=$(print_one ORD-BS-2)
check "copeesd recorded the backend's exit report" wait_until 20 bash -c "[ \"\$(sqlite3 '$DB' \"SELECT count(*) FROM events WHERE job_id=$B AND type='backend-exit'\")\" = 1 ]"
is "... sent by lp (cupsd ran the backend as lp)" "$(backend_exits "$B")" "1 $(id -u lp)"
like "... with the pages printed" "$(job_field "$B" .pages_printed)" '^[1-9]'
health_quiet() { ! health_warns; }
check "/v1/health no longer warns about the backend's access (checked every 10 s)" \
    wait_until 30 health_quiet
stop_copeesd
check "no log line carries an order reference" bash -c "! grep -rq ORD-BS '$T/copeesd.log' '$CUPS_TEST_DIR/log'"
done_testing
