#!/bin/bash
# copeesd's command line and configuration: a bad key is refused naming
# the file, key and line; SIGHUP with a broken file keeps the daemon up on
# its old config; a private spool directory is required; SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"

printf '[daemon]\nspool_dir = %s/spool\nfrobnicate = yes\n' "$T" > "$T/bad.conf"
out=$("$COPEESD" -f -c "$T/bad.conf" 2>&1); rc=$?
is "an unknown key is refused at start (exit 1)" "$rc" 1
like "the message names the file, line and key" "$out" "bad.conf:3: .*frobnicate"

printf '[printer p]\ncolor = maybe\n' > "$T/bad2.conf"
out=$("$COPEESD" -f -c "$T/bad2.conf" 2>&1); rc=$?
is "a bad boolean is refused" "$rc" 1
like "the message names the key" "$out" "bad2.conf:2: .*color"

out=$("$COPEESD" -x 2>&1); rc=$?
is "a bad option is a usage error (exit 2)" "$rc" 2

mkdir -p "$T/open-spool"; chmod 0755 "$T/open-spool"
printf '[daemon]\nspool_dir = %s/open-spool\nstate_dir = %s/state\nsocket = %s\n' "$T" "$T" "$SOCK" > "$T/open.conf"
out=$("$COPEESD" -f -c "$T/open.conf" 2>&1); rc=$?
is "a spool others can read is refused" "$rc" 1
like "the message says why" "$out" "mode 0700"

# No CUPS at all: the daemon still serves, says cups unreachable.
CUPS_SERVER=$T/no-cups.sock write_conf
start_copeesd
check "state and spool directories are created 0700" \
    bash -c "[ \$(stat -c %a '$T/state') = 700 ] && [ \$(stat -c %a '$T/spool') = 700 ]"
check "the database is created 0600" bash -c "[ \$(stat -c %a '$T/state/copees.db') = 600 ]"
is "the socket has mode 0660" "$(stat -c %a "$SOCK")" 660
check "health reports cups unreachable" \
    wait_until 20 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/health | jq -e '.cups == \"unreachable\"'"
"$MKPDF" "$T/a.pdf"
upload "$T/a.pdf" "order=ORD-cfg-1"
is "uploads are accepted while CUPS is down" "$STATUS" 201
ID=$(jq -r .id <<<"$BODY")
is "... and wait queued" "$(job_field "$ID" .state)" queued

# SIGHUP: a broken file is refused, the daemon keeps running
cp "$CONF" "$T/good.conf"
printf '\n[bogus]\nx = 1\n' >> "$CONF"
kill -HUP "$COPEESD_PID"
check "a reload with a broken file is logged as refused" \
    wait_until 10 grep -q "reload: .*bogus.*keeping the running configuration" "$T/copeesd.log"
check "the daemon still answers after it" curl -sf --unix-socket "$SOCK" http://x/v1/health
cp "$T/good.conf" "$CONF"
printf '\n[printer second]\nqueue = test2\n' >> "$CONF"
kill -HUP "$COPEESD_PID"
check "a good reload adds a printer" \
    wait_until 10 bash -c "curl -s --unix-socket '$SOCK' http://x/v1/printers | jq -e '.printers | length == 2'"

stop_copeesd; rc=$?
is "SIGTERM: exit 0" "$rc" 0
check "the socket is removed" test ! -e "$SOCK"

# Restart keeps the job (acknowledged jobs survive restarts)
start_copeesd
is "the queued job survives a restart" "$(job_field "$ID" .state)" queued
stop_copeesd
done_testing
