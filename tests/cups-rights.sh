#!/bin/bash
# CUPS rights of the service user: copeesd runs as user copees (made from
# systemd/sysusers.conf by systemd-sysusers, so a member of lpadmin) against
# a private cupsd that enforces this system's default CUPS policy (the
# <Policy default> and <Location> blocks of /etc/cups/cupsd.conf, and its
# SystemGroup), not the open policy of tests/cups-env.sh.
#
# Everything runs in a private mount namespace where /etc/passwd and
# /etc/group are bind-mounted copies holding the copees user
# (tests/ns-users.sh): the host's files are never touched.  What is shown:
#  - a job prints, its document is shredded and CUPS's copy purged
#    (Cancel-Job purge-job=true, done by its owner, @OWNER);
#  - an orphan left in CUPS by a crash after Create-Job is found at the
#    next start by its job-name (private to the owner under this policy)
#    and purged, the job printed once;
#  - reading CUPS's PreserveJobFiles (GET /admin/conf/cupsd.conf, @SYSTEM)
#    works as a member of lpadmin, and fails without it, which is what
#    the membership is for.
grep -q '^<Policy default>' /etc/cups/cupsd.conf 2>/dev/null || {
    echo "1..0 # SKIP /etc/cups/cupsd.conf has no <Policy default> to copy"; exit 0; }
. "$(dirname "$0")/ns-users.sh"
ns_enter "$@"
. "$(dirname "$0")/lib.sh"

grep -q '^#define COPEES_TEST_KNOBS' "$top_builddir/config.h" 2>/dev/null || {
    echo "1..0 # SKIP built with --disable-test-knobs (no fault points)"; exit 0; }

# ------------------------------------------------------------ the user
ns_users
is "sysusers.conf makes the user copees" "$(getent passwd copees | cut -d: -f1)" copees
like "... a member of lpadmin" "$(getent group lpadmin | cut -d: -f4)" '(^|,)copees(,|$)'
check "... who may not log in" bash -c "getent passwd copees | grep -q ':/usr/sbin/nologin$'"

# ------------------------------------------------------------ CUPS's default policy
# The queue is made under the open policy (as root), then cupsd is
# restarted with the system's access rules.
sysgroup=$(grep -i '^SystemGroup' /etc/cups/cups-files.conf 2>/dev/null | tail -1)
CUPS_FILES_EXTRA=${sysgroup:-SystemGroup root lpadmin} start_cups
bash "$top_srcdir/tests/cups-env.sh" stop-cupsd "$CUPS_TEST_DIR" || bail "cannot stop cupsd"
{
    sed '/^<Policy default>/,$d' "$CUPS_TEST_DIR/cupsd.conf"
    echo "# Access rules copied from /etc/cups/cupsd.conf:"
    grep -i '^DefaultAuthType' /etc/cups/cupsd.conf
    awk '/^<Location /,/^<\/Location>/' /etc/cups/cupsd.conf
    awk '/^<Policy default>/,/^<\/Policy>/' /etc/cups/cupsd.conf
} > "$T/cupsd.conf.new"
mv "$T/cupsd.conf.new" "$CUPS_TEST_DIR/cupsd.conf"
bash "$top_srcdir/tests/cups-env.sh" start-cupsd "$CUPS_TEST_DIR" > "$T/cups-restart.out" 2>&1 ||
    { cat "$T/cups-restart.out" >&2; bail "cupsd did not come back with the default policy"; }
check "cupsd runs with the default policy (Cancel-Job needs @OWNER @SYSTEM)" \
    grep -q 'Require user @OWNER @SYSTEM' "$CUPS_TEST_DIR/cupsd.conf"
# A stranger may not cancel or purge a job: the policy is enforced.
lp -d test1 -H hold /etc/hostname > /dev/null 2>&1 || bail "root cannot queue a held job"
held=$(lpstat -o test1 | awk '{ sub(/.*-/, "", $1); print $1; exit }')
check "the policy is enforced: user nobody may not cancel root's job" \
    bash -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups cancel -h '$CUPS_SERVER' '$held' 2>/dev/null"
cancel -x "$held" 2>/dev/null; cancel -x -a test1 2>/dev/null
wait_until 20 bash -c "[ -z \"\$(lpstat -W all -o test1)\" ]"

# ------------------------------------------------------------ copeesd as copees
install -d -o copees -g copees -m 0700 "$T/spool" "$T/state"
install -d -o copees -g copees -m 0755 "$T/run"
SOCK=$T/run/copeesd.sock
write_conf
cat > "$T/copeesd-as-copees" <<EOF
#!/bin/bash
exec setpriv --reuid=copees --regid=copees --clear-groups "$top_builddir/copeesd" "\$@"
EOF
chmod 0755 "$T/copeesd-as-copees"
COPEESD=$T/copeesd-as-copees
health() { curl -s --unix-socket "$SOCK" http://copees/v1/health; }
cups_jobs() { lpstat -W all -o test1 2>/dev/null; }
"$MKPDF" --pages 1 "$T/a.pdf" || bail "mkpdf failed"

start_copeesd
is "copeesd runs as copees" "$(ps -o user= -p "$COPEESD_PID")" copees
# cupsd looks group membership up in the group database, so the process
# needs no supplementary groups (the unit sets no SupplementaryGroups=).
is "... with no supplementary groups" "$(awk '/^Groups:/ { print $2 }' "/proc/$COPEESD_PID/status")" ""
check "it reconciles with CUPS" wait_until 30 grep -q 'reconciled with CUPS' "$T/copeesd.log"
check "it reads CUPS's PreserveJobFiles through /admin/conf (as @SYSTEM)" \
    wait_until 20 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/health | jq -e '.warnings | length == 0'"
check "... and logs no failure to" bash -c "! grep -q 'cannot tell whether CUPS keeps' '$T/copeesd.log'"

upload "$T/a.pdf" "order=ORD-RIGHTS-1"
is "upload answers 201" "$STATUS" 201
A=$(jq -r .id <<<"$BODY")
check "the job prints" wait_until 90 job_is "$A" .state printed
cid=$(job_field "$A" .cups_job_id)
like "CUPS records copees as the job's owner" \
    "$(grep -a "\\[Job $cid\\] Queued on" "$CUPS_TEST_DIR/log/error_log" | head -1)" 'by "copees"'
check "the document is shredded after the complaint window" wait_until 30 job_is "$A" .document shredded
check "CUPS's copy is purged: the job is gone from CUPS" wait_until 30 bash -c "[ -z \"\$(lpstat -W all -o test1)\" ]"
check "cupsd accepted copees's Cancel-Job" \
    grep -aq ' copees .*"POST /jobs/ HTTP/1.1" 200 .* Cancel-Job successful-ok' "$CUPS_TEST_DIR/log/access_log"
check "no request of copees was refused (401/403)" \
    bash -c "! grep -a ' copees ' '$CUPS_TEST_DIR/log/access_log' | grep -q ' 40[13] '"
stop_copeesd

# An orphan: copeesd dies right after Create-Job.  Under the default
# policy job-name is private (JobPrivateValues default): only the owner
# sees it, and the next start must still find the job by it.
COPEES_TEST_FAULT=crash-after-create-job "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
pid=$!
wait_until 20 curl -sf --unix-socket "$SOCK" http://copees/v1/health || bail "copeesd did not come up"
upload "$T/a.pdf" "order=ORD-RIGHTS-2"
rc=0; wait "$pid" || rc=$?
is "copeesd died after Create-Job" "$rc" 86
# (the 201 may or may not have left before the crash: ask the store)
B=$(sqlite3 "$T/state/copees.db" "SELECT id FROM jobs WHERE order_ref = 'ORD-RIGHTS-2'")
like "the job was recorded" "$B" '^[0-9]+$'
like "CUPS holds the orphan, waiting for its document" "$(cups_jobs)" '.'
cat > "$T/get-jobs.test" <<'EOF'
{
  OPERATION Get-Jobs
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR keyword which-jobs all
  ATTR keyword requested-attributes job-id,job-name
  STATUS successful-ok
}
EOF
cups_uri="ipp://$(jq -rn --arg s "$CUPS_SERVER" '$s | @uri')/printers/test1"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups ipptool -tv -d user=nobody "$cups_uri" "$T/get-jobs.test" 2>&1)
like "another user sees the orphan's job-id ..." "$out" 'job-id \(integer\) = [0-9]+'
is "... but not its job-name (private to its owner under this policy)" \
    "$(grep -c 'job-name .* = copees-' <<<"$out")" 0
out=$(setpriv --reuid=copees --regid=copees --clear-groups ipptool -tv -d user=nobody "$cups_uri" "$T/get-jobs.test" 2>&1)
is "its owner's uid sees the job-name, whatever user name it claims" \
    "$(grep -c "job-name .* = copees-[0-9a-f]*-$B\$" <<<"$out")" 1
start_copeesd
check "after the restart the job prints" wait_until 90 job_is "$B" .state printed
like "the orphan was found by its job-name and purged" \
    "$(grep "left waiting for its document" "$T/copeesd.log")" "\\[job $B "
check "the printer received it once" \
    bash -c "[ \$(grep -c 'IPP_JOB_NAME=copees-[0-9a-f]*-$B\\( \\|\$\\)' '$CUPS_TEST_DIR/ipp-jobs.log') = 1 ]"
check "nothing of ours is left in CUPS once shredded" wait_until 40 bash -c \
    "[ -z \"\$(lpstat -W all -o test1)\" ]"
stop_copeesd

# Without lpadmin: the same daemon cannot read CUPS's settings (that is
# what the membership is for); its own jobs it still cancels as @OWNER.
ns_group_members lpadmin
like "copees is no longer in lpadmin" "$(getent group lpadmin | cut -d: -f4)" '^$'
start_copeesd
check "without lpadmin the settings read is refused and said so" wait_until 20 bash -c \
    "curl -s --unix-socket '$SOCK' http://x/v1/health | grep -q 'cannot tell whether CUPS keeps job files'"
upload "$T/a.pdf" "order=ORD-RIGHTS-3"
C=$(jq -r .id <<<"$BODY")
check "a job still prints" wait_until 90 job_is "$C" .state printed
check "... and its CUPS copy is still purged (@OWNER suffices)" wait_until 40 bash -c \
    "[ -z \"\$(lpstat -W all -o test1)\" ] && curl -s --unix-socket '$SOCK' http://x/v1/jobs/$C | jq -e '.document == \"shredded\"'"
stop_copeesd
check "no log line carries an order reference" bash -c "! grep -q ORD-RIGHTS '$T/copeesd.log'"
done_testing
