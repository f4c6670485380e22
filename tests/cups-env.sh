#!/bin/bash
# tests/cups-env.sh - a private CUPS for the integration tests.
#
# Everything lives under one directory DIR, so tests can run in parallel,
# each with its own DIR, sockets and port:
#   - cupsd, listening only on the domain socket DIR/run/cups.sock (no TCP
#     port to collide on), configured by DIR/cupsd.conf + DIR/cups-files.conf;
#   - an ippeveprinter virtual printer on a free TCP port of 127.0.0.1/::1,
#     with its own private D-Bus (it needs *a* bus to start);
#   - queue test1, IPP Everywhere ("-m everywhere") pointing at that printer.
#
# Run it:
#   tests/cups-env.sh start DIR     then  . DIR/env
#   tests/cups-env.sh stop DIR      no process is left behind
#   tests/cups-env.sh stop-cupsd DIR / start-cupsd DIR
#                                   a CUPS outage: cupsd alone goes away and
#                                   comes back (queues and job ids persist)
#   tests/cups-env.sh add-printer DIR NAME [IPPEVEPRINTER-OPTION...]
#                                   one more virtual printer and queue NAME
#   tests/cups-env.sh kill-printer DIR NAME / restart-printer DIR NAME
#                                   that printer dies / comes back on its port
#   tests/cups-env.sh printer-port DIR NAME
#   tests/cups-env.sh printer-media DIR NAME empty|loaded
#                                   out of paper (media-empty) / paper again
# or source it and call cups_env_start DIR (which also sources DIR/env),
# cups_env_stop DIR, cups_env_stop_cupsd DIR, cups_env_start_cupsd DIR,
# cups_env_add_printer DIR NAME [OPTION...], cups_env_kill_printer DIR NAME,
# cups_env_restart_printer DIR NAME, cups_env_printer_port DIR NAME and
# cups_env_printer_media DIR NAME empty|loaded.
#
# DIR/env exports CUPS_SERVER (the domain socket), CUPS_TEST_DIR,
# IPP_TEST_PORT, IPP_TEST_URI, CUPS_SPOOL_DIR (cupsd's RequestRoot, where its
# dNNNNN-NNN / cNNNNN files are) and CUPS_STATEDIR.
#
# What reached the printer: by default ippeveprinter runs DIR/ipp-record.sh
# for each job, which appends one line to DIR/ipp-jobs.log:
#   pages=N file=NAME IPP_COPIES=2 IPP_JOB_NAME=... IPP_MEDIA=... ...
# (the job's IPP attributes as ippeveprinter passes them; printer defaults
# and pwg-* attributes left out) and exits 0.
#
# More printers (add-printer): each one is its own ippeveprinter on its own
# free port, with its own spool DIR/ipp-spool-NAME, log
# DIR/log/ippeveprinter-NAME.log and recorder DIR/ipp-record-NAME.sh, which
# appends the same line format to DIR/ipp-jobs-NAME.log; queue NAME is made
# with lpadmin -m everywhere.  The OPTIONs replace the capability options
# "-2 -s 60,60" (so "-s 30" makes a monochrome simplex printer).  One more
# option is the harness's own: --media=PWG-NAME[,...] (A3-A6, letter,
# legal) makes a printer with exactly those sizes (ippeveprinter's own
# printers never offer A3), with the colour (-s S,C with C > 0), duplex
# (-2) and speed asked, and one paper tray that printer-media can empty
# (see tests/cups-printers.sh).  restart-printer brings a killed printer
# back on the same port, with the same options and command.
# NAME is letters, digits, '-' and '_' (a CUPS queue name), not test1.
#
# The recorders (the default one and every added printer's) read, per job,
# a shell fragment DIR/ipp-record[-NAME].conf when it exists; start and
# add-printer write it from the environment, a test may rewrite it at any
# moment:
#   DELAY=SECONDS   sleep that long before recording (a slow printer)
#   EXIT=N          exit status after recording (non-zero: the job fails
#                   at the printer, as a device error would)
#   STATE=REASONS   print "STATE: REASONS" on stderr first: ippeveprinter
#                   sets its own printer-state-reasons from it
#                   ("+media-empty" adds a reason, "-media-empty" removes it)
#
# Knobs (environment):
#   IPPEVE_CMD               command ippeveprinter runs per job (file = $1);
#                            exiting non-zero makes the job fail at the printer
#                            (read by start and by add-printer, per printer)
#   IPPEVE_SPEED             ippeveprinter -s of test1 (default 60,60: colour)
#   IPPEVE_DELAY, IPPEVE_EXIT, IPPEVE_STATE
#                            the recorder's DELAY, EXIT and STATE (above)
#   IPPEVE_KEEP              keep received documents in the printer's spool
#                            (ippeveprinter -k; default 1, 0 drops them)
#   CUPS_LOGLEVEL            cupsd LogLevel (default debug)
#   CUPS_PRESERVE_JOB_FILES  cupsd PreserveJobFiles (default No)
#   CUPS_FILES_EXTRA         lines appended to cups-files.conf (ServerBin, SetEnv)
#   CUPS_CONF_EXTRA          lines appended to cupsd.conf (LogTimeFormat usecs)
#   CUPS_ENV_TIMEOUT         seconds to wait for each service (default 30)
#
# As root, cupsd runs filters as lp: every directory above DIR must be
# traversable by lp (a mktemp -d directory is 0700: chmod 0755 it).  start
# checks this and says so.  Nothing waits by a fixed sleep: every wait polls
# its condition until a generous deadline, then fails naming the log to read.

_ce_fail() {      # _ce_fail MESSAGE: report on stderr, return 1
    echo "cups-env: $*" >&2
    return 1
}

_ce_alive() {     # _ce_alive PID: the process exists and is not a zombie
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_ce_wait() {      # _ce_wait SECONDS CMD...: poll CMD every 50 ms until it succeeds
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}

_ce_descendants() {   # _ce_descendants PID: PID's descendants, deepest last
    ps -e -o pid=,ppid= 2>/dev/null | awk -v root="$1" '
        { parent[$1] = $2 }
        END {
            n = 0; q[n++] = root
            for (i = 0; i < n; i++)
                for (p in parent)
                    if (parent[p] == q[i] && p != root) { q[n++] = p; print p }
        }'
}

_ce_port_free() {     # _ce_port_free PORT: nothing listens on it (v4 or v6)
    ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

_ce_pick_port() {     # a free TCP port below the kernel's ephemeral range
    local lo=20000 hi eph p tries=0
    eph=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    hi=$(( ${eph:-32768} - 1 ))
    [ "$hi" -le $((lo + 1000)) ] && { lo=61000; hi=64999; }
    while [ $tries -lt 200 ]; do
        p=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1) ))
        _ce_port_free "$p" && { echo "$p"; return 0; }
        tries=$((tries + 1))
    done
    return 1
}

_ce_listens() {       # _ce_listens PORT PID: PID itself holds the listener on PORT
    _ce_alive "$2" && ss -Hltnp "sport = :$1" 2>/dev/null | grep -q "pid=$2,"
}

_ce_write_recorder() {    # _ce_write_recorder DIR [NAME]: ippeveprinter's default
                          # per-job command, and its knobs from the environment
    local d=$1 sfx=${2:+-$2}
    cat > "$d/ipp-record$sfx.sh" <<EOF
#!/bin/bash
# Written by tests/cups-env.sh: record one job that reached the virtual
# printer as one line of ipp-jobs$sfx.log, then exit EXIT (default 0).
DELAY=0 EXIT=0 STATE=
conf='$d/ipp-record$sfx.conf'
log='$d/ipp-jobs$sfx.log'
EOF
    cat >> "$d/ipp-record$sfx.sh" <<'EOF'
# shellcheck disable=SC1090
[ -f "$conf" ] && . "$conf"
[ -n "$STATE" ] && echo "STATE: $STATE" >&2
[ "$DELAY" != 0 ] && sleep "$DELAY"
pages=$(pdfinfo "$1" 2>/dev/null | awk '/^Pages:/ { print $2 }')
attrs=$(env | grep '^IPP_' | grep -v -e '^IPP_PWG_' -e '^IPP_[A-Z0-9_]*_DEFAULT=' | LC_ALL=C sort | tr '\n' ' ')
printf 'pages=%s file=%s %s\n' "${pages:-?}" "$(basename "$1")" "${attrs% }" >> "$log"
exit "$EXIT"
EOF
    chmod 0755 "$d/ipp-record$sfx.sh"
    rm -f "$d/ipp-record$sfx.conf"
    if [ -n "${IPPEVE_DELAY:-}${IPPEVE_EXIT:-}${IPPEVE_STATE:-}" ]; then
        printf 'DELAY=%q\nEXIT=%q\nSTATE=%q\n' "${IPPEVE_DELAY:-0}" "${IPPEVE_EXIT:-0}" \
            "${IPPEVE_STATE:-}" > "$d/ipp-record$sfx.conf"
    fi
}

_ce_write_conf() {    # cups-files.conf and cupsd.conf for DIR
    local d=$1
    cat > "$d/cups-files.conf" <<EOF
# Written by tests/cups-env.sh: everything under $d.
ServerRoot $d
RequestRoot $d/spool
TempDir $d/spool/tmp
CacheDir $d/cache
StateDir $d/state
ErrorLog $d/log/error_log
AccessLog $d/log/access_log
PageLog $d/log/page_log
Printcap $d/printcap
FileDevice Yes
${CUPS_FILES_EXTRA:-}
EOF
    cat > "$d/cupsd.conf" <<EOF
# Written by tests/cups-env.sh: the domain socket only, no browsing, and an
# open policy (Order Allow,Deny with no Deny line: nothing needs a password).
Listen $d/run/cups.sock
Browsing No
BrowseLocalProtocols none
DefaultShared No
WebInterface No
LogLevel ${CUPS_LOGLEVEL:-debug}
MaxLogSize 0
PreserveJobHistory Yes
PreserveJobFiles ${CUPS_PRESERVE_JOB_FILES:-No}
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order Allow,Deny
  </Limit>
</Policy>
${CUPS_CONF_EXTRA:-}
EOF
}

_ce_start_printer() {     # _ce_start_printer DIR TIMEOUT NAME PORT CMD [OPTION...]:
                          # start an ippeveprinter; sets IPP_PORT
    # NAME "" is test1's printer (files without a suffix); PORT "" picks a
    # free port, a PORT given (a restart) is the only one tried.
    local d=$1 tmo=$2 want=$4 cmd=$5 sfx=${3:+-$3} lockfile lockfd attempt pid logsize
    shift 5
    local log=$d/log/ippeveprinter$sfx.log pidf=$d/run/ippeveprinter$sfx.pid
    # PDF in: what the recorder reads.  -f is one of the "legacy" options
    # that ippeveprinter refuses next to -a/-P (the file lists the formats).
    local -a fmt=(-f application/pdf)
    case " $* " in *" -a "*|*" -P "*) fmt=() ;; esac
    mkdir -p "$d/ipp-spool$sfx"
    # Choosing a port and binding it must not interleave with another test
    # doing the same: hold a lock from the choice until the printer listens.
    lockfile=${TMPDIR:-/tmp}/copees-cups-env.lock
    { exec {lockfd}>>"$lockfile"; } 2>/dev/null || { exec {lockfd}<"$lockfile"; } 2>/dev/null ||
        { _ce_fail "cannot open the port lock $lockfile"; return 1; }
    flock -w 300 "$lockfd" || { exec {lockfd}>&-; _ce_fail "port lock $lockfile busy for 300 s"; return 1; }
    for attempt in 1 2 3 4 5; do
        if [ -n "$want" ]; then
            IPP_PORT=$want
            _ce_wait "$tmo" _ce_port_free "$IPP_PORT" || break
        else
            IPP_PORT=$(_ce_pick_port) || break
        fi
        logsize=$(stat -c %s "$log" 2>/dev/null || echo 0)
        # The per-job command sees the job as IPP_* variables: none of the
        # caller's own (IPP_TEST_PORT...) may mix in.
        # shellcheck disable=SC2046
        env $(compgen -e | sed -n 's/^IPP_.*/-u &/p') \
            DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/run/dbus.sock" \
            /usr/sbin/ippeveprinter -p "$IPP_PORT" -n localhost -r off "$@" -c "$cmd" \
                -d "$d/ipp-spool$sfx" "${fmt[@]}" -v "TestPrinter$sfx" \
                < /dev/null >> "$log" 2>&1 {lockfd}>&- &
        pid=$!
        echo "$pid" > "$pidf"
        # Ready = this very process holds the port and answers IPP.
        if _ce_wait "$tmo" _ce_listens_or_dead "$IPP_PORT" "$pid" && _ce_listens "$IPP_PORT" "$pid" &&
           _ce_wait "$tmo" ipptool -q "ipp://localhost:$IPP_PORT/ipp/print" get-printer-attributes.test; then
            flock -u "$lockfd"; exec {lockfd}>&-
            return 0
        fi
        _ce_kill_tree "$pid" ippeveprinter
        rm -f "$pidf"
        echo "cups-env: ippeveprinter did not come up on port $IPP_PORT (attempt $attempt)" >> "$log"
        # Only a lost race for the port is worth another try.
        tail -c +$((logsize + 1)) "$log" | grep -q 'Unable to create IPv. listener' || break
    done
    flock -u "$lockfd"; exec {lockfd}>&-
    _ce_fail "ippeveprinter$sfx did not come up (see $log):"
    _ce_tail "$log"
    return 1
}

_ce_tail() {          # the last lines of a log, indented, on stderr
    [ -f "$1" ] && tail -n 8 "$1" | sed 's/^/    /' >&2
    return 0
}

_ce_untraversable() {  # _ce_untraversable DIR: the first directory lp cannot enter
    local p="" part
    local IFS=/
    for part in $1; do
        [ -n "$part" ] || continue
        p="$p/$part"
        runuser -u lp -- test -x "$p" 2>/dev/null || { echo "$p"; return 0; }
    done
    echo "$1"
}

_ce_listens_or_dead() {   # stop polling once PID listens on PORT or has died
    _ce_listens "$1" "$2" || ! _ce_alive "$2"
}

_ce_kill_tree() {     # _ce_kill_tree PID COMM: TERM PID (if it is COMM) and its
                      # descendants, wait, KILL what is left; 1 if any survive
    local pid=$1 comm=$2 p left=""
    local -a all
    _ce_alive "$pid" || return 0
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 0   # not ours any more
    read -ra all <<< "$(_ce_descendants "$pid" | tr '\n' ' ') $pid"
    # CONT too: a test may have left cupsd frozen with SIGSTOP.
    for p in "${all[@]}"; do kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    _ce_wait 10 _ce_all_dead "${all[@]}"
    for p in "${all[@]}"; do _ce_alive "$p" && kill -KILL "$p" 2>/dev/null; done
    _ce_wait 5 _ce_all_dead "${all[@]}"
    for p in "${all[@]}"; do _ce_alive "$p" && left="$left $p"; done
    [ -z "$left" ] || { _ce_fail "processes survived SIGKILL:$left"; return 1; }
}

_ce_all_dead() {      # _ce_all_dead PID...: none of them is alive
    local p
    for p in "$@"; do _ce_alive "$p" && return 1; done
    return 0
}

_cups_env_start() (   # subshell: umask, variables and fds stay here
    set -u
    umask 022
    [ -n "${1:-}" ] || { _ce_fail "usage: start DIR"; exit 2; }
    d=$(realpath -m "$1")
    tmo=${CUPS_ENV_TIMEOUT:-30}
    sock=$d/run/cups.sock
    case $d in *[[:space:]]*) _ce_fail "$d: cupsd.conf cannot take a path with blanks"; exit 1 ;; esac
    [ ${#sock} -lt 100 ] || { _ce_fail "$sock: path too long for a Unix socket"; exit 1; }
    for f in cupsd ippeveprinter dbus; do
        if [ -f "$d/run/$f.pid" ] && _ce_alive "$(cat "$d/run/$f.pid")"; then
            _ce_fail "$d is in use ($f is running): stop it first"; exit 1
        fi
    done
    mkdir -p "$d"/spool/tmp "$d"/cache "$d"/state "$d"/log "$d"/ppd "$d"/ipp-spool "$d"/run ||
        { _ce_fail "cannot create directories under $d"; exit 1; }
    if [ "$(id -u)" = 0 ] && ! runuser -u lp -- test -x "$d/spool" 2>/dev/null; then
        _ce_fail "user lp cannot enter $(_ce_untraversable "$d/spool") (cupsd runs filters as lp):" \
                 "every directory above $d must be o+x (mktemp -d makes 0700: chmod 0755 it)"
        exit 1
    fi
    rm -f "$d/ipp-jobs.log" "$d/env" "$d/run/printers" "$d"/run/printer-*
    _ce_write_recorder "$d"
    _ce_write_conf "$d"

    # Unwind whatever was started when a later step fails.
    trap '[ $? -ne 0 ] && _cups_env_stop "$d" >/dev/null 2>&1' EXIT

    dbus-daemon --session --address="unix:path=$d/run/dbus.sock" --nopidfile --fork --print-pid \
        < /dev/null > "$d/run/dbus.pid" 2>> "$d/log/dbus.log" ||
        { _ce_fail "dbus-daemon failed (see $d/log/dbus.log)"; exit 1; }
    _ce_wait "$tmo" test -S "$d/run/dbus.sock" ||
        { _ce_fail "dbus-daemon socket did not appear (see $d/log/dbus.log)"; exit 1; }

    keep=()
    [ "${IPPEVE_KEEP:-1}" = 1 ] && keep=(-k)
    _ce_start_printer "$d" "$tmo" "" "" "${IPPEVE_CMD:-$d/ipp-record.sh}" \
        "${keep[@]}" -2 -s "${IPPEVE_SPEED:-60,60}" || exit 1

    _ce_run_cupsd "$d" "$tmo" || exit 1

    # lpadmin exits 0 even when it could not ask the printer for a driver:
    # the PPD is the proof that the queue is usable.
    CUPS_SERVER=$sock lpadmin -p test1 -E -v "ipp://localhost:$IPP_PORT/ipp/print" -m everywhere \
        >> "$d/log/lpadmin.log" 2>&1 ||
        { _ce_fail "lpadmin test1 failed (see $d/log/lpadmin.log and $d/log/error_log)"; exit 1; }
    _ce_wait "$tmo" test -s "$d/ppd/test1.ppd" ||
        { _ce_fail "queue test1 has no PPD: cupsd could not query the printer (see $d/log/error_log)"; exit 1; }
    _ce_wait "$tmo" _ce_queue_ready "$sock" test1 ||
        { _ce_fail "queue test1 is not enabled and accepting (see $d/log/error_log)"; exit 1; }

    cat > "$d/env" <<EOF
# Written by tests/cups-env.sh start; source it.
export CUPS_SERVER='$sock'
export CUPS_STATEDIR='$d/state'
export CUPS_TEST_DIR='$d'
export CUPS_SPOOL_DIR='$d/spool'
export IPP_TEST_PORT=$IPP_PORT
export IPP_TEST_URI='ipp://localhost:$IPP_PORT/ipp/print'
EOF
    echo "cups-env: cupsd on $sock, ippeveprinter on localhost:$IPP_PORT, queue test1, in $d"
)

_ce_run_cupsd() {      # _ce_run_cupsd DIR TIMEOUT: start cupsd, wait until it answers
    local d=$1 tmo=$2 pid
    /usr/sbin/cupsd -f -c "$d/cupsd.conf" -s "$d/cups-files.conf" \
        < /dev/null >> "$d/log/cupsd.out" 2>&1 &
    pid=$!
    echo "$pid" > "$d/run/cupsd.pid"
    _ce_wait "$tmo" _ce_cupsd_up "$d/run/cups.sock" "$pid" && _ce_alive "$pid" && return 0
    _ce_fail "cupsd did not come up on $d/run/cups.sock (see $d/log/error_log and $d/log/cupsd.out):"
    _ce_tail "$d/log/cupsd.out"
    grep -a '^E ' "$d/log/error_log" 2>/dev/null | tail -n 5 | sed 's/^/    /' >&2
    return 1
}

_cups_env_start_cupsd() (   # start cupsd again after stop-cupsd (queues persist)
    [ -n "${1:-}" ] || { _ce_fail "usage: start-cupsd DIR"; exit 2; }
    d=$(realpath -m "$1")
    tmo=${CUPS_ENV_TIMEOUT:-30}
    [ -f "$d/cupsd.conf" ] || { _ce_fail "$d has no cupsd.conf: run start first"; exit 1; }
    if [ -f "$d/run/cupsd.pid" ] && _ce_alive "$(cat "$d/run/cupsd.pid")"; then
        _ce_fail "cupsd is already running in $d"; exit 1
    fi
    _ce_run_cupsd "$d" "$tmo" || exit 1
    _ce_wait "$tmo" _ce_queue_ready "$d/run/cups.sock" test1 ||
        { _ce_fail "queue test1 is not back after the restart (see $d/log/error_log)"; exit 1; }
    # Added queues: known again (a test may have stopped one on purpose).
    for q in $(cat "$d/run/printers" 2>/dev/null); do
        _ce_wait "$tmo" env CUPS_SERVER="$d/run/cups.sock" lpstat -p "$q" ||
            { _ce_fail "queue $q is not back after the restart (see $d/log/error_log)"; exit 1; }
    done
)

_cups_env_stop_cupsd() (    # stop cupsd only (an outage); printer and bus stay
    [ -n "${1:-}" ] || { _ce_fail "usage: stop-cupsd DIR"; exit 2; }
    d=$(realpath -m "$1")
    [ -f "$d/run/cupsd.pid" ] || exit 0
    _ce_kill_tree "$(cat "$d/run/cupsd.pid")" cupsd || exit 1
    rm -f "$d/run/cupsd.pid"
)

_ce_cupsd_up() {      # _ce_cupsd_up SOCK PID: cupsd answers (or has died: stop waiting)
    _ce_alive "$2" || return 0
    CUPS_SERVER=$1 lpstat -r 2>/dev/null | grep -q 'is running'
}

_ce_queue_ready() {   # _ce_queue_ready SOCK QUEUE
    CUPS_SERVER=$1 lpstat -a "$2" 2>/dev/null | grep -q 'accepting requests' &&
        CUPS_SERVER=$1 lpstat -p "$2" 2>/dev/null | grep -q 'enabled'
}

_cups_env_stop() (    # subshell; 0 when nothing of DIR's is left running
    [ -n "${1:-}" ] || { _ce_fail "usage: stop DIR"; exit 2; }
    d=$(realpath -m "$1")
    rc=0
    # cupsd first (it ends its jobs' filters and backends), then the
    # printers (and their per-job commands), then the bus.
    for pidf in "$d/run/cupsd.pid" "$d"/run/ippeveprinter*.pid "$d/run/dbus.pid"; do
        [ -f "$pidf" ] || continue
        case ${pidf##*/} in
        cupsd.pid) comm=cupsd ;;
        dbus.pid) comm=dbus-daemon ;;
        *) comm=ippeveprinter ;;
        esac
        pid=$(cat "$pidf")
        if [ -n "$pid" ]; then
            _ce_kill_tree "$pid" "$comm" || rc=1
        fi
        rm -f "$pidf"
    done
    exit $rc
)

# add-printer and the rest: tests/cups-printers.sh, next to this file.
# shellcheck source=cups-printers.sh
. "$(dirname "${BASH_SOURCE[0]}")/cups-printers.sh"

cups_env_start() {    # cups_env_start DIR: start, then source DIR/env
    # shellcheck disable=SC1091
    _cups_env_start "$@" && . "$(realpath -m "$1")/env"
}

cups_env_stop() {     # cups_env_stop DIR
    _cups_env_stop "$@"
}

cups_env_stop_cupsd() {   # cups_env_stop_cupsd DIR
    _cups_env_stop_cupsd "$@"
}

cups_env_start_cupsd() {  # cups_env_start_cupsd DIR
    _cups_env_start_cupsd "$@"
}

cups_env_add_printer() {  # cups_env_add_printer DIR NAME [IPPEVEPRINTER-OPTION...]
    _cups_env_add_printer "$@"
}

cups_env_kill_printer() { # cups_env_kill_printer DIR NAME
    _cups_env_kill_printer "$@"
}

cups_env_restart_printer() {  # cups_env_restart_printer DIR NAME
    _cups_env_restart_printer "$@"
}

cups_env_printer_media() {    # cups_env_printer_media DIR NAME empty|loaded
    _cups_env_printer_media "$@"
}

cups_env_printer_port() { # cups_env_printer_port DIR NAME
    _cups_env_printer_port "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
    start) shift; _cups_env_start "$@" ;;
    stop)  shift; _cups_env_stop "$@" ;;
    stop-cupsd) shift; _cups_env_stop_cupsd "$@" ;;
    start-cupsd) shift; _cups_env_start_cupsd "$@" ;;
    add-printer) shift; _cups_env_add_printer "$@" ;;
    kill-printer) shift; _cups_env_kill_printer "$@" ;;
    restart-printer) shift; _cups_env_restart_printer "$@" ;;
    printer-port) shift; _cups_env_printer_port "$@" ;;
    printer-media) shift; _cups_env_printer_media "$@" ;;
    *) echo "usage: $0 start DIR | stop DIR | stop-cupsd DIR | start-cupsd DIR |" \
            "add-printer DIR NAME [OPTION...] | kill-printer DIR NAME |" \
            "restart-printer DIR NAME | printer-port DIR NAME |" \
            "printer-media DIR NAME empty|loaded" >&2; exit 2 ;;
    esac
fi
