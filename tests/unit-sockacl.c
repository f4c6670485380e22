/* unit-sockacl.c - sockacl_may_connect(): the mode bits of a socket file
 * without an ACL, and a raw POSIX ACL (set with setxattr, as setfacl
 * stores it) with named users, named groups and a mask, for a uid with one
 * group and no supplementary groups (how cupsd runs a backend).  The file
 * is a regular file standing in for the socket: only its attributes are
 * read. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockacl.h"

static char dir[64], path[96];

static int setup(void **state)
{
    strcpy(dir, "/tmp/unit-sockacl.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/sock", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fclose(f);
    if (geteuid() == 0 && chown(path, 1000, 2000) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

enum { U_OBJ = 1, U = 2, G_OBJ = 4, G = 8, MASK = 0x10, OTHER = 0x20 };
struct ent { uint16_t tag, perm; uint32_t id; };

/* Store the ACL of n entries (little-endian, version 2); 0 / -1. */
static int acl_set(const struct ent *e, int n)
{
    unsigned char buf[4 + 8 * 16];
    unsigned char *p = buf;
    *p++ = 2, *p++ = 0, *p++ = 0, *p++ = 0;
    for (int i = 0; i < n; i++) {
        *p++ = (unsigned char)e[i].tag, *p++ = (unsigned char)(e[i].tag >> 8);
        *p++ = (unsigned char)e[i].perm, *p++ = (unsigned char)(e[i].perm >> 8);
        for (int k = 0; k < 4; k++)
            *p++ = (unsigned char)(e[i].id >> (8 * k));
    }
    return setxattr(path, "system.posix_acl_access", buf, (size_t)(p - buf), 0);
}

static void test_mode_bits(void **state)
{
    if (geteuid() != 0)
        skip();                 /* the file is given to uid 1000, gid 2000 */
    assert_int_equal(removexattr(path, "system.posix_acl_access") == 0 || errno == ENODATA, 1);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_equal(sockacl_may_connect(path, 1000, 9), 1);    /* owner */
    assert_int_equal(sockacl_may_connect(path, 3000, 2000), 1); /* its group */
    assert_int_equal(sockacl_may_connect(path, 3000, 9), 0);    /* others */
    assert_int_equal(sockacl_may_connect(path, 0, 0), 1);       /* root */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(sockacl_may_connect(path, 3000, 2000), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(sockacl_may_connect(path, 3000, 9), 1);
    assert_int_equal(chmod(path, 0466), 0);
    assert_int_equal(sockacl_may_connect(path, 1000, 2000), 0); /* the owner's bits decide */
    assert_int_equal(sockacl_may_connect("/nonexistent/sock", 1000, 2000), -1);
}

static void test_acl(void **state)
{
    if (geteuid() != 0)
        skip();
    assert_int_equal(chmod(path, 0660), 0);
    /* what setfacl -m u:lp:rw makes of a 0660 file: lp = 7 here */
    struct ent with_lp[] = {{U_OBJ, 6, 0}, {U, 6, 7}, {G_OBJ, 6, 0}, {MASK, 6, 0}, {OTHER, 0, 0}};
    if (acl_set(with_lp, 5) < 0) {
        if (errno == ENOTSUP || errno == EOPNOTSUPP)
            skip();
        fail_msg("setxattr: %s", strerror(errno));
    }
    assert_int_equal(sockacl_may_connect(path, 7, 7), 1);      /* the named user */
    assert_int_equal(sockacl_may_connect(path, 8, 9), 0);      /* another user */
    assert_int_equal(sockacl_may_connect(path, 8, 2000), 1);   /* the owning group */
    /* a mask without write takes it from the named user and the groups */
    struct ent masked[] = {{U_OBJ, 6, 0}, {U, 6, 7}, {G_OBJ, 6, 0}, {MASK, 4, 0}, {OTHER, 0, 0}};
    assert_int_equal(acl_set(masked, 5), 0);
    assert_int_equal(sockacl_may_connect(path, 7, 7), 0);
    assert_int_equal(sockacl_may_connect(path, 8, 2000), 0);
    assert_int_equal(sockacl_may_connect(path, 1000, 9), 1);   /* not the owner */
    /* a named group */
    struct ent group[] = {{U_OBJ, 6, 0}, {G_OBJ, 4, 0}, {G, 6, 7}, {MASK, 6, 0}, {OTHER, 0, 0}};
    assert_int_equal(acl_set(group, 5), 0);
    assert_int_equal(sockacl_may_connect(path, 7, 7), 1);
    assert_int_equal(sockacl_may_connect(path, 8, 2000), 0);   /* owning group: read only */
    /* a matching group that does not grant write denies, whatever others get */
    struct ent deny[] = {{U_OBJ, 6, 0}, {G_OBJ, 4, 0}, {MASK, 6, 0}, {OTHER, 6, 0}};
    assert_int_equal(acl_set(deny, 4), 0);
    assert_int_equal(sockacl_may_connect(path, 8, 2000), 0);
    assert_int_equal(sockacl_may_connect(path, 8, 9), 1);      /* others */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_bits),
        cmocka_unit_test(test_acl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
