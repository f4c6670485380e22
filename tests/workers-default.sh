#!/bin/bash
# The default number of documents checked at once ([preflight] workers)
# follows what copeesd may use (daemon/sysres.c), read from the real
# kernel, and the preflight helper's ready line says it:
#   - one CPU in the affinity mask (taskset): 2 x 1 + 2 = 4;
#   - as root, in a cgroup this test makes, with cgroup v2's memory.max
#     and cpu.max or v1's memory.limit_in_bytes and cpu.cfs_quota_us
#     (whichever this machine mounts): a 1 GiB memory limit leaves one
#     check of 512 MiB, a quota of one CPU leaves 4.
# (unit-sysres reads made-up trees of both kinds, ancestors included.)
# The cases that want 4 checks give each 16 MiB, so that memory never
# bounds them on a machine of 128 MiB or more.
. "$(dirname "$0")/lib.sh"

export CUPS_SERVER=$T/no-cups.sock     # (no CUPS needed)
readies() { grep -c 'helper server [0-9]* ready' "$T/copeesd.log" 2>/dev/null; }
at_once() {
    sed -n 's/.*helper server [0-9]* ready (.*), \([0-9]*\) checks\{0,1\} at once$/\1/p' \
        "$T/copeesd.log" | tail -1
}
# one_run: start copeesd on $CONF, wait for a new ready line, stop it,
# print the number the line gives
one_run() {
    local r
    r=$(readies)
    start_copeesd
    wait_until 20 bash -c "[ \$(grep -c 'helper server [0-9]* ready' '$T/copeesd.log') -gt ${r:-0} ]" ||
        diag "no ready line"
    stop_copeesd
    at_once
}

write_conf "[preflight]
memory = 16M"
n=$(one_run)
like "the helper's ready line says how many checks run at once" "$n" '^[1-9][0-9]*$'
diag "here, without limits: $n checks at once ($(nproc) CPUs in the affinity mask)"
# (the first CPU this process may use: a container may not have CPU 0)
cpu=$(awk '/^Cpus_allowed_list:/ {split($2, a, /[-,]/); print a[1]}' /proc/self/status)
is "one CPU in the affinity mask: 4 checks at once" \
    "$( (taskset -pc "${cpu:-0}" "$BASHPID" >/dev/null && one_run) )" 4

# ------------------------------------------------------------ cgroups (root)
# cg_make KIND: a cgroup for this test, its directory in CG (KIND: memory
# or cpu; v2: a directory under the unified root, v1: under this
# process's cgroup of the hierarchy that has the controller)
CG_MADE=()
cg_make() {
    local kind=$1 base path d
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        grep -qw "$kind" /sys/fs/cgroup/cgroup.controllers || return 1
        grep -qw "$kind" /sys/fs/cgroup/cgroup.subtree_control ||
            echo "+$kind" > /sys/fs/cgroup/cgroup.subtree_control || return 1
        d=/sys/fs/cgroup/copees-test.$$.$kind
    else    # v1: a child of this process's cgroup in the hierarchy with the controller
        IFS=: read -r _ base path < <(awk -F: -v k="$kind" \
            '{n = split($2, c, ","); for (i = 1; i <= n; i++) if (c[i] == k) print}' /proc/self/cgroup)
        [ -n "$base" ] && [ -d "/sys/fs/cgroup/$base" ] || return 1
        d=/sys/fs/cgroup/$base${path%/}/copees-test.$$
    fi
    mkdir "$d" 2>/dev/null || return 1
    CG_MADE+=("$d")
    CG=$d
}
# cg_limit FILE VALUE [FILE VALUE]: write VALUE to the first FILE that $CG
# has (v2's name, then v1's)
cg_limit() {
    while [ $# -ge 2 ]; do
        if [ -f "$CG/$1" ]; then echo "$2" > "$CG/$1"; return; fi
        shift 2
    done
    return 1
}
# (a cgroup can go once its last process has: the helper ends after copeesd)
cg_cleanup() { local d; for d in "${CG_MADE[@]}"; do wait_until 10 rmdir "$d"; done; }
trap 'cg_rc=$?; cg_cleanup; (exit $cg_rc); _cleanup' EXIT
# in_cg: one_run with copeesd started in the cgroup $CG; exit status 3
# (and nothing printed) when this process may not join it
in_cg() { ( echo "$BASHPID" > "$CG/cgroup.procs" 2>/dev/null || exit 3; one_run ); }
# limited DESCRIPTION EXPECTED: in_cg, then is (a skip when it cannot join)
limited() {
    local n rc
    n=$(in_cg); rc=$?
    if [ $rc = 3 ]; then ok "# SKIP this process cannot join a cgroup of its own"; else is "$1" "$n" "$2"; fi
}

if [ "$(id -u)" != 0 ]; then
    ok "# SKIP not root: no cgroup of its own"
    ok "# SKIP not root: no cgroup of its own"
else
    write_conf
    if cg_make memory && cg_limit memory.max 1073741824 memory.limit_in_bytes 1073741824; then
        limited "a 1 GiB memory limit on its cgroup: one check of 512 MiB at once" 1
    else
        ok "# SKIP no memory controller to make a cgroup with"
    fi
    write_conf "[preflight]
memory = 16M"
    # (v1's cpu.cfs_period_us is 100000 unless set otherwise)
    if cg_make cpu && cg_limit cpu.max "100000 100000" cpu.cfs_quota_us 100000; then
        limited "a quota of one CPU on its cgroup: 4 checks at once" 4
    else
        ok "# SKIP no cpu controller to make a cgroup with"
    fi
fi
done_testing
