# tests/ns-users.sh - the service's users without touching the host's:
# a test re-runs itself in a private mount namespace (ns_enter, before
# sourcing lib.sh), then ns_users makes the users of systemd/sysusers.conf
# with systemd-sysusers in copies of /etc/passwd and /etc/group that are
# bind-mounted over the real ones inside the namespace only.  Everything
# the test starts afterwards (cupsd, copeesd) sees the same users.

ns_enter() {      # ns_enter "$@": re-run this script in a mount namespace
    [ "${COPEES_TEST_NS:-}" = 1 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "1..0 # SKIP needs root: a private mount namespace, cupsd as root, setpriv"
        exit 0
    fi
    local t
    for t in unshare setpriv systemd-sysusers; do
        command -v "$t" >/dev/null || { echo "1..0 # SKIP $t not installed"; exit 0; }
    done
    COPEES_TEST_NS=1 exec unshare -m --propagation private bash "$0" "$@"
}

ns_users() {      # ns_users: the users of sysusers.conf, visible in the namespace
    [ "${COPEES_TEST_NS:-}" = 1 ] || bail "ns_users outside the namespace"
    mkdir -p "$T/root/etc"
    cp /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/login.defs "$T/root/etc/" 2>/dev/null
    systemd-sysusers --root="$T/root" "$top_srcdir/systemd/sysusers.conf" > "$T/sysusers.out" 2>&1 ||
        { cat "$T/sysusers.out" >&2; bail "systemd-sysusers failed"; }
    mount --bind "$T/root/etc/passwd" /etc/passwd || bail "cannot bind-mount /etc/passwd"
    mount --bind "$T/root/etc/group" /etc/group || bail "cannot bind-mount /etc/group"
    getent passwd copees > /dev/null || bail "the copees user is not visible (nscd or sssd caching?)"
}

ns_group_members() {  # ns_group_members GROUP [USER,...]: set GROUP's members
    # written in place: /etc/group is a bind mount of this very inode
    sed -E "s/^($1:[^:]*:[^:]*:).*/\\1${2:-}/" "$T/root/etc/group" > "$T/group.new" &&
        cat "$T/group.new" > "$T/root/etc/group"
}
