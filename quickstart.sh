#!/bin/bash
# quickstart.sh - set up a fresh Debian 12 machine and build copees-spool,
# then either run the demo or the whole test suite.
#
#   ./quickstart.sh demo   set up, build, start a private CUPS with a virtual
#                          printer and copeesd on embedded defaults (paths
#                          under a private directory), send a sample PDF and
#                          show it go printed -> shredded; then keep serving
#                          until Ctrl-C (DEMO_EXIT=1: stop after the journey)
#   ./quickstart.sh test   set up, build (warnings are errors), run every test;
#                          the last line is "N passed, N failed"
#
# Needs root for apt-get (it is skipped when every package is present).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

PACKAGES="build-essential autoconf automake libtool pkg-config libcups2-dev libevent-dev
 libsqlite3-dev libpoppler-glib-dev libsystemd-dev libjansson-dev libhttp-parser-dev
 libseccomp-dev libcurl4-openssl-dev libcmocka-dev libcairo2-dev libssl-dev
 cups cups-client cups-ipp-utils cups-filters dbus poppler-utils qpdf curl jq sqlite3 man-db
 openssl python3 procps iproute2 systemd bc faketime acl util-linux"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_packages() {
    local missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    log "installing Debian packages:$missing"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    # cups' postinst tries to start the system service; in a container
    # that is refused harmlessly, and the tests never use it.
    $sudo apt-get install -y -q --no-install-recommends $missing
}

build() {
    log "building"
    [ -x configure ] || autoreconf -fi
    if [ ! -f Makefile ]; then
        ./configure --enable-werror --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var -q
    fi
    make -j"$(nproc)" -s
    make -j"$(nproc)" -s check TESTS=   # build the test programs too
}

summary() {   # totals of the whole suite from the top-level test-suite.log
    local f=test-suite.log pass fail
    pass=$(awk '/^# PASS:/{print $3}' "$f")
    fail=$(awk '/^# (FAIL|XPASS|ERROR):/{s+=$3} END{print s+0}' "$f")
    echo "${pass:-0} passed, ${fail:-0} failed"
}

run_tests() {
    log "running the test suite"
    local rc=0
    # three tests at a time on two cores: most of the suite's time is spent
    # waiting on real time (retention windows, retries), not on the CPU
    # (3m50s against 5m10s two at a time, measured)
    make -s -j3 check VERBOSE=1 || rc=$?
    summary
    return $rc
}

demo() {
    d=$(mktemp -d /tmp/copees-demo.XXXXXX)   # global: the EXIT trap uses it
    chmod 0755 "$d"
    log "starting a private CUPS and a virtual IPP printer in $d/cups"
    bash tests/cups-env.sh start "$d/cups" >/dev/null
    # shellcheck disable=SC1091
    . "$d/cups/env"
    cleanup() {
        [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        bash "$here/tests/cups-env.sh" stop "$d/cups" >/dev/null 2>&1 || true
        echo "(demo files left in $d)"
    }
    trap cleanup EXIT
    cat > "$d/copeesd.conf" <<CONF
# Embedded defaults, except where this demo must stay in its own directory
# and must not wait 12 hours to show the shredding.
[daemon]
spool_dir = $d/spool
state_dir = $d/state
socket = $d/copeesd.sock
[retention]
complaint_window = 10s
[cups]
server = $d/cups/run/cups.sock
[printer atelier]
queue = test1
CONF
    log "starting copeesd (log in $d/copeesd.log)"
    COPEES_PREFLIGHT_HELPER=$here/daemon/preflight ./copeesd -f -c "$d/copeesd.conf" 2> "$d/copeesd.log" &
    pid=$!
    export COPEES_SOCKET=$d/copeesd.sock
    for _ in $(seq 100); do curl -sf --unix-socket "$COPEES_SOCKET" http://x/v1/health >/dev/null && break; sleep 0.1; done
    ./tests/mkpdf --pages 2 --text "copees-spool demo" "$d/sample.pdf"
    log "uploading a 2-page PDF: curl --unix-socket $COPEES_SOCKET -H 'Content-Type: application/pdf' --data-binary @sample.pdf 'http://copees/v1/jobs?order=DEMO-1'"
    local out id state="" doc="" last=""
    out=$(curl -s --unix-socket "$COPEES_SOCKET" -H 'Content-Type: application/pdf' \
          --data-binary @"$d/sample.pdf" 'http://copees/v1/jobs?order=DEMO-1')
    echo "$out" | jq .
    id=$(echo "$out" | jq -r .id)
    log "watching job $id (copeesctl -l -W all -o)"
    for _ in $(seq 600); do
        state=$(curl -s --unix-socket "$COPEES_SOCKET" "http://copees/v1/jobs/$id" | jq -r '.state + " / document " + .document')
        if [ "$state" != "$last" ]; then
            echo "  $(date +%T)  $state"
            last=$state
        fi
        case "$state" in *shredded) break ;; esac
        sleep 0.2
    done
    ./copeesctl -l -W all -o
    ./copeesctl -p
    log "the virtual printer received: $(ls "$d/cups/ipp-spool" | grep '\.pdf$')"
    if [ "${DEMO_EXIT:-0}" = 1 ]; then return 0; fi
    log "copeesd keeps serving on $COPEES_SOCKET; Ctrl-C stops the demo"
    echo "  export COPEES_SOCKET=$COPEES_SOCKET; ./copeesctl -W all -o"
    wait "$pid"
}

case "${1:-}" in
    demo) install_packages; build; demo ;;
    test) install_packages; build; run_tests ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
