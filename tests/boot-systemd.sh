#!/bin/bash
# tests/boot-systemd.sh - the installed package under systemd as PID 1.
#
# Not part of `make check`: it needs root, debootstrap and systemd-nspawn
# (Debian packages debootstrap, systemd-container), Debian's archive, and
# about five minutes the first time (the container's root is kept for the
# next run).  tests/units.sh checks the units without systemd running;
# this boots a Debian 12 container with systemd 252 and runs the README's
# set-up as written, then checks what only a real systemd shows:
#   - copeesd.socket and copeesd.service come up at boot (Type=notify);
#   - the socket keeps lp's ACL entry once the service has started (a
#     RuntimeDirectory= that systemd chowns recursively loses it);
#   - the web tier's user (www-data, in group copees) uploads; the job
#     prints through the copees backend to an ippeveprinter, the backend's
#     exit report reaches copeesd, and the document is shredded when the
#     (shortened) complaint window ends;
#   - OOMPolicy=continue, and the preflight checks first for the OOM killer;
#   - the default number of checks at once under MemoryMax= and CPUQuota=;
#   - a stop while a document is being checked: the check ends in the
#     drain and the document is accepted;
#   - socket activation after a stop, Restart= after SIGKILL (jobs kept),
#     the watchdog restarting a stopped daemon, systemctl reload;
#   - /v1/health does not warn that the backend may not connect;
#   - the preflight server's memory layout works under the unit's sandbox;
#   - nothing refused by the unit's sandbox in copeesd's journal.
#
#   sudo tests/boot-systemd.sh          (from a source tree; builds HEAD)
#
# Environment: BOOT_ROOT (the container's root, default
# /var/lib/machines/copees-boot), BOOT_FRESH=1 (make it again), BOOT_REV
# (the revision to build, default HEAD),
# BOOT_MIRROR (default: the archive this machine's apt uses for bookworm,
# else http://deb.debian.org/debian).  TAP on stdout; exit
# 1 when a check failed (or the package could not be built or set up), 2
# when this machine cannot run it (not root, no debootstrap or nspawn, no
# archive, a container that does not boot): .ci/run reports that as
# skipped.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${BOOT_ROOT:-/var/lib/machines/copees-boot}
# the archive this machine's apt uses for bookworm (a CI machine may have
# a mirror of its own), else Debian's
host_mirror() {
    { sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null
      awk '/^URIs:/ {u = $2} /^Suites:/ && / bookworm( |$)/ {print u}' /etc/apt/sources.list.d/*.sources 2>/dev/null
    } | head -1
}
MIRROR=${BOOT_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
W=$(mktemp -d /tmp/copees-boot.XXXXXX)
n=0 failed=0 NSPAWN=

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "got '$2', expected '$3'"; fi; }
like() { if [[ $2 =~ $3 ]]; then ok "$1"; else notok "$1" "got '$2', expected to match '$3'"; fi; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }
bail() { echo "Bail out! $*"; exit 1; }
cannot() { echo "# SKIP this machine cannot run it: $*"; exit 2; }
# until SECONDS CMD...: poll CMD every 0.2 s until it succeeds
until_ok() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done; }
finish() {
    if [ -n "$NSPAWN" ]; then   # power the container off (or kill it, if it never came up)
        if [ -n "${PID1:-}" ]; then in_ct systemctl poweroff >/dev/null 2>&1; else kill "$NSPAWN"; fi
        wait "$NSPAWN" 2>/dev/null
    fi
    rm -rf "$W"
}
trap finish EXIT

[ "$(id -u)" = 0 ] || cannot "needs root"
for c in debootstrap systemd-nspawn nsenter git autoreconf; do
    command -v "$c" >/dev/null || cannot "$c not found (apt-get install debootstrap systemd-container)"
done

# ------------------------------------------------------------ the container's root
if [ -n "${BOOT_FRESH:-}" ] || [ ! -x "$ROOT/usr/bin/curl" ]; then
    rm -rf "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    echo "# debootstrap bookworm into $ROOT"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" "$MIRROR" \
        > "$W/debootstrap.log" 2>&1 || { tail -5 "$W/debootstrap.log"; cannot "debootstrap failed"; }
    printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"     # no service starts in the chroot
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libcups2 libevent-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 libsqlite3-0 \
        libpoppler-glib8 libsystemd0 libjansson4 libhttp-parser2.9 libseccomp2 libcurl4 libcairo2 \
        libssl3 cups cups-client cups-ipp-utils cups-filters curl jq acl fontconfig fonts-dejavu-core \
        > "$W/apt.log" 2>&1 || { tail -5 "$W/apt.log"; cannot "apt-get in the container failed"; }
    rm -f "$ROOT/usr/sbin/policy-rc.d"
    echo copees-boot > "$ROOT/etc/hostname"
fi

# ------------------------------------------------------------ build and install HEAD
REV=${BOOT_REV:-HEAD}
echo "# building $(git -C "$src" rev-parse --short "$REV") for /usr"
mkdir -p "$W/src"
git -C "$src" archive "$REV" | tar -x -C "$W/src"
( cd "$W/src" && autoreconf -fi && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
      --disable-test-knobs && make -j2 && make install DESTDIR="$ROOT" ) > "$W/build.log" 2>&1 ||
    { tail -20 "$W/build.log"; bail "build failed"; }
rm -rf "$ROOT/var/spool/copees" "$ROOT/var/lib/copees"        # a first start each run
cat > "$ROOT/etc/copees/copeesd.conf" <<'EOF'
[daemon]
submit_group = copees
[retention]
complaint_window = 5s
[printer shop]
queue = shop
media = iso_a4_210x297mm
EOF
[ -x "$src/tests/mkpdf" ] || bail "tests/mkpdf is not built (make check in the source tree)"
"$src/tests/mkpdf" --pages 2 "$ROOT/srv/doc.pdf" || bail "mkpdf failed"
# slowpdf FILE PAGES RECTS: PAGES pages sharing one content stream of
# RECTS small filled rectangles: seconds to check, a few hundred KB to send
slowpdf() {
    local f=$1 pages=$2 rects=$3 off=() o kids="" i content
    content=$(awk -v n="$rects" 'BEGIN { for (i = 0; i < n; i++) printf "%d %d 2 2 re f\n", (i * 7) % 590, (i * 13) % 836 }')
    printf '%%PDF-1.4\n' > "$f"
    off+=("$(stat -c %s "$f")")
    printf '1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n' >> "$f"
    for ((i = 0; i < pages; i++)); do kids+="$((i + 4)) 0 R "; done
    off+=("$(stat -c %s "$f")")
    printf '2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n' "$kids" "$pages" >> "$f"
    off+=("$(stat -c %s "$f")")
    printf '3 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n' $((${#content} + 1)) "$content" >> "$f"
    for ((i = 0; i < pages; i++)); do
        off+=("$(stat -c %s "$f")")
        printf '%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>\nendobj\n' \
            $((i + 4)) >> "$f"
    done
    o=$(stat -c %s "$f")
    { printf 'xref\n0 %d\n0000000000 65535 f \n' $((pages + 4))
      printf '%010d 00000 n \n' "${off[@]}"
      printf 'trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' $((pages + 4)) "$o"; } >> "$f"
}
slowpdf "$ROOT/srv/slow.pdf" 150 20000     # ~2.3 s on a machine where a fault is 1.5 us
chmod 644 "$ROOT/srv/doc.pdf" "$ROOT/srv/slow.pdf"

# ------------------------------------------------------------ boot
# (a network namespace of its own: the container's cupsd and printer
# cannot collide with ports the host or the suite's servers hold)
systemd-nspawn --register=no --keep-unit --private-network -D "$ROOT" -b --console=passive > "$W/console.log" 2>&1 &
NSPAWN=$!
# nspawn's child is systemd itself once it has exec'ed
until_ok 30 bash -c "pgrep -P $NSPAWN >/dev/null" || cannot "systemd-nspawn did not start"
PID1=$(pgrep -P "$NSPAWN" | head -1)
in_ct() { nsenter -t "$PID1" -a "$@"; }
booted() { case $(in_ct systemctl is-system-running 2>/dev/null) in running|degraded) return 0 ;; esac; return 1; }
until_ok 90 booted || cannot "the container did not boot ($(in_ct systemctl is-system-running 2>&1))"
echo "# booted: systemd $(in_ct systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') as PID 1"

# ------------------------------------------------------------ the README's set-up
in_ct systemd-sysusers copees.conf >/dev/null 2>&1
in_ct systemd-tmpfiles --create copees.conf
in_ct usermod -aG copees www-data
in_ct systemctl daemon-reload
in_ct systemctl enable --now copeesd.socket copeesd.service > /dev/null 2>&1
is "copeesd.socket is active" "$(in_ct systemctl is-active copeesd.socket)" active
is "copeesd.service is active (Type=notify: READY came)" "$(in_ct systemctl is-active copeesd.service)" active
like_acl() { in_ct getfacl -p /run/copees/copeesd.sock 2>/dev/null | grep -qx 'user:lp:rw-'; }
check "the socket keeps lp's ACL entry after the service started" like_acl

in_ct systemd-run --unit=vprinter --property=User=lp /usr/sbin/ippeveprinter -r off -p 18631 \
    -f application/pdf,image/pwg-raster "Virtual Printer" > /dev/null 2>&1
until_ok 20 in_ct ipptool -q ipp://localhost:18631/ipp/print get-printer-attributes.test 2>/dev/null ||
    bail "ippeveprinter did not come up"
# (IPP Everywhere makes the queue from the printer's answer over ipp://;
# the device is then wrapped by the copees backend)
in_ct lpadmin -p shop -E -v ipp://localhost:18631/ipp/print -m everywhere &&
    in_ct lpadmin -p shop -v copees:ipp://localhost:18631/ipp/print || bail "lpadmin failed"

api() { in_ct runuser -u www-data -- curl -s --unix-socket /run/copees/copeesd.sock "$@"; }
status=$(api -o /dev/null -w '%{http_code}' -H 'Content-Type: application/pdf' \
         --data-binary @/srv/doc.pdf 'http://copees/v1/jobs?order=BOOT-1')
is "www-data (group copees, submit_group) uploads: 201" "$status" 201
job_is() { [ "$(api "http://copees/v1/jobs/1" | jq -r "$1")" = "$2" ]; }
check "the job prints through the copees backend" until_ok 120 job_is .state printed
backend_said() { in_ct journalctl -b -u copeesd --no-pager | grep -q 'backendev: CUPS job [0-9]*: the backend exited with 0'; }
check "... whose exit report reached copeesd through the socket" until_ok 30 backend_said
check "... and the document is shredded when the complaint window ends" until_ok 60 job_is .document shredded
backend_warned() { api http://copees/v1/health | jq -r '.warnings[]' | grep -q 'copees backend'; }
backend_quiet() { api http://copees/v1/health | jq -e .warnings >/dev/null && ! backend_warned; }
check "/v1/health does not warn that the backend may not connect" backend_quiet
journal_field() { in_ct journalctl -b --no-pager COPEES_JOB=1 -o cat | grep -q 'printed'; }
check "journal lines carry COPEES_JOB=" journal_field
# the preflight server's memory under the unit's sandbox (docs/preflight.md,
# "A child's memory"): with the fault-saving layout, which it chooses
# where page faults are dear, its code's page tables go to its children
# (no mprotect: MemoryDenyWriteExecute= must not stop it), and it sets a
# huge-page block aside for their heap where THP is not off; with the
# plain layout, neither
srv_smaps() { in_ct sh -c 'cat "/proc/$(pgrep -f "preflight --server" | head -1)/smaps"'; }
code_given() {
    srv_smaps | awk '/^[0-9a-f]+-[0-9a-f]+ / {p = / r-xp .*\/libpoppler\.so/}
                     p && /^Anonymous:/ && $2 > 0 {f = 1} END {exit !f}'
}
layout=$(in_ct journalctl -b --no-pager -o cat 2>/dev/null |
         sed -n 's/.*helper server [0-9]* ready (.* layout-\([a-z-]*\).*/\1/p' | tail -1)
echo "# the preflight server's layout: ${layout:-?}"
if [ "$layout" = plain ]; then
    check "under the unit, the preflight server (plain layout) keeps its code's pages to itself" \
        eval '! code_given'
    check "... and sets no huge-page block aside" eval '! srv_smaps | grep -q "^VmFlags:.* hg"'
else
    check "under the unit, the preflight server gives its children its code's page tables" code_given
    if grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
        ok "# SKIP transparent huge pages are off here"
    else
        check "... and sets a huge-page block aside for their heap" eval 'srv_smaps | grep -q "^VmFlags:.* hg"'
    fi
fi

# ------------------------------------------------------------ systemd's side
is "OOMPolicy=continue: a check the OOM killer takes does not stop the service" \
    "$(in_ct systemctl show -p OOMPolicy --value copeesd.service)" continue
srv_oom() { in_ct sh -c 'cat "/proc/$(pgrep -f "preflight --server" | head -1)/oom_score_adj"'; }
is "... and under the unit the preflight server is its first choice (oom_score_adj 1000)" "$(srv_oom)" 1000
# A stop while a document is being checked (slow.pdf; the drain waits
# up to 30 s for it, its deadline is 30 s + 150 x 50 ms): systemd
# sends SIGTERM to every process of the service, the preflight helper's
# too, which leaves stopping to copeesd; the check ends during copeesd's
# drain and the document gets its verdict (it was rejected as
# preflight-crashed, "damaged").
api -o /dev/null -w '%{http_code}' -H 'Content-Type: application/pdf' \
    --data-binary @/srv/slow.pdf 'http://copees/v1/jobs?order=BOOT-STOP' > "$W/stop.status" &
stop_upload=$!
checking() { in_ct sh -c 'pgrep -P "$(pgrep -f "preflight --server" | head -1)" > /dev/null'; }
check "a slow document is being checked" until_ok 30 checking
in_ct systemctl stop copeesd.service 2>/dev/null
wait "$stop_upload"
is "... when the service is stopped: it is accepted all the same (201)" "$(cat "$W/stop.status")" 201
is "after a stop the service is inactive" "$(in_ct systemctl is-active copeesd.service)" inactive
is "a connection starts it again (socket activation)" \
    "$(api -o /dev/null -w '%{http_code}' http://copees/v1/health)" 200
is "... and it is active" "$(in_ct systemctl is-active copeesd.service)" active
check "the socket still has lp's entry" like_acl
main_pid() { in_ct systemctl show -p MainPID --value copeesd.service; }
m=$(main_pid)
in_ct systemctl kill -s KILL copeesd.service
restarted() { local p; p=$(main_pid); [ "$p" != "$m" ] && [ "$p" != 0 ] && in_ct systemctl is-active -q copeesd.service; }
check "Restart= brings copeesd back after SIGKILL" until_ok 30 restarted
is "... with its job" "$(api http://copees/v1/jobs/1 | jq -r .id)" 1
m=$(main_pid)
in_ct kill -STOP "$m"
check "the watchdog restarts a daemon that stopped answering (WatchdogSec=30s)" until_ok 75 restarted
reloads() { in_ct journalctl -b -u copeesd --no-pager | grep -c 'reload: configuration re-read'; }
r=$(reloads)
in_ct systemctl reload copeesd.service
reloaded() { [ "$(reloads)" -gt "$r" ]; }
check "systemctl reload re-reads the configuration" until_ok 20 reloaded
# [preflight] workers by default follows what the unit allows
# (daemon/sysres.c), and the helper's ready line says it: under
# MemoryMax=1G, half of it holds one check of 512 MiB; under
# CPUQuota=100% (one CPU) with no memory limit, 2 x 1 + 2 = 4 (fewer
# only if half the machine's memory holds fewer than four).  A host with
# cgroup v1 controllers gives the container them read-only, and the
# unit's limits cannot be set there: skipped (tests/workers-default.sh
# makes such cgroups itself, outside systemd).
readies() { in_ct journalctl -b -u copeesd --no-pager -o cat | grep -c 'helper server [0-9]* ready'; }
at_once() {
    in_ct journalctl -b -u copeesd --no-pager -o cat |
        sed -n 's/.*helper server [0-9]* ready (.*), \([0-9]*\) checks\{0,1\} at once$/\1/p' | tail -1
}
restart_with() {    # restart_with PROPERTY...: set them, restart, wait for the helper
    local r
    r=$(readies)
    # (reset-failed: the restarts above, and these, are more than the
    # unit's start rate limit lets through)
    in_ct systemctl set-property copeesd.service "$@" &&
        in_ct systemctl reset-failed copeesd.service &&
        in_ct systemctl restart copeesd.service &&
        until_ok 30 eval '[ "$(readies)" -gt "$r" ]'
}
cg=/sys/fs/cgroup/system.slice/copeesd.service
like "the helper's ready line says how many checks run at once" "$(at_once)" '^[1-9][0-9]*$'
if restart_with MemoryMax=1G && in_ct test -f $cg/memory.max; then
    is "... one under MemoryMax=1G (512 MiB a check)" "$(at_once)" 1
else
    ok "# SKIP no memory controller for the service in this container"
fi
half=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 2 / 524288 ))
if restart_with MemoryMax=infinity CPUQuota=100% && in_ct test -f $cg/cpu.max; then
    is "... four under CPUQuota=100% (one CPU)" "$(at_once)" $(( half < 4 ? (half < 1 ? 1 : half) : 4 ))
else
    ok "# SKIP no cpu controller for the service in this container"
fi
restart_with CPUQuota= MemoryMax= || notok "the service restarts without the limits"
refusals=$(in_ct journalctl -b -u copeesd --no-pager |
           grep -c -E 'Operation not permitted|Permission denied|Read-only file system|Bad system call')
is "the sandbox refused copeesd nothing (no EPERM, EACCES, EROFS, SIGSYS in its journal)" "$refusals" 0

echo "1..$n"
[ "$failed" = 0 ]
