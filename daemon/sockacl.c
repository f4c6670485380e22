/* sockacl.c - whether a user may connect to a Unix socket (sockacl.h).
 *
 * Design notes: connect() needs write permission on the socket's file.
 * The file's POSIX ACL is read raw (getxattr of system.posix_acl_access:
 * a version word, then entries of tag, permissions and id, little-endian)
 * rather than through libacl, for one question.  The decision follows the
 * kernel's order: the owner's entry; a named user's entry under the mask;
 * the owning group's and named groups' entries under the mask (one
 * matching group that grants write is enough, a matching group that does
 * not denies); then others.  Without an ACL the mode bits decide.  uid 0
 * always may (the kernel lets root through whatever the mode).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "sockacl.h"

#define ACL_VERSION 2
enum { TAG_USER_OBJ = 0x01, TAG_USER = 0x02, TAG_GROUP_OBJ = 0x04, TAG_GROUP = 0x08,
       TAG_MASK = 0x10, TAG_OTHER = 0x20 };
#define PERM_WRITE 2
#define MAX_ENTRIES 64

struct entry { unsigned tag, perm; uint32_t id; };

static uint32_t le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The ACL's entries into e (at most MAX_ENTRIES): their count, 0 when the
 * file has no ACL, -1 when it cannot be read or makes no sense. */
static int acl_read(const char *path, struct entry *e)
{
    unsigned char buf[4 + 8 * MAX_ENTRIES];
    ssize_t n = getxattr(path, "system.posix_acl_access", buf, sizeof buf);

    if (n < 0)
        return errno == ENODATA || errno == ENOTSUP ? 0 : -1;
    if (n < 4 || (n - 4) % 8 != 0 || le(buf, 4) != ACL_VERSION) {
        errno = EINVAL;
        return -1;
    }
    int count = (int)((n - 4) / 8);
    for (int i = 0; i < count; i++) {
        const unsigned char *p = buf + 4 + 8 * i;
        e[i] = (struct entry){.tag = le(p, 2), .perm = le(p + 2, 2), .id = le(p + 4, 4)};
    }
    return count;
}

int sockacl_may_connect(const char *path, uid_t uid, gid_t gid)
{
    struct entry e[MAX_ENTRIES];
    struct stat st;

    if (stat(path, &st) < 0)
        return -1;
    if (uid == 0)
        return 1;
    int n = acl_read(path, e);
    if (n < 0)
        return -1;
    if (n == 0) {
        if (st.st_uid == uid)
            return (st.st_mode & S_IWUSR) != 0;
        if (st.st_gid == gid)
            return (st.st_mode & S_IWGRP) != 0;
        return (st.st_mode & S_IWOTH) != 0;
    }
    unsigned mask = 07, other = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].tag == TAG_MASK)
            mask = e[i].perm;
        else if (e[i].tag == TAG_OTHER)
            other = e[i].perm;
    }
    if (st.st_uid == uid)
        for (int i = 0; i < n; i++)
            if (e[i].tag == TAG_USER_OBJ)
                return (e[i].perm & PERM_WRITE) != 0;
    for (int i = 0; i < n; i++)
        if (e[i].tag == TAG_USER && e[i].id == uid)
            return (e[i].perm & mask & PERM_WRITE) != 0;
    bool group_matched = false;
    for (int i = 0; i < n; i++) {
        bool match = (e[i].tag == TAG_GROUP_OBJ && st.st_gid == gid) ||
                     (e[i].tag == TAG_GROUP && e[i].id == gid);
        if (!match)
            continue;
        if (e[i].perm & mask & PERM_WRITE)
            return 1;
        group_matched = true;
    }
    if (group_matched)
        return 0;
    return (other & PERM_WRITE) != 0;
}
