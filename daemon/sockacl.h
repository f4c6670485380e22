/* sockacl.h - whether a user may connect to a Unix socket's file. */
#ifndef COPEES_SOCKACL_H
#define COPEES_SOCKACL_H

#include <sys/types.h>

/* Whether uid, with gid as its one group (no supplementary groups, as
 * cupsd runs a backend), may connect to the Unix socket at path: write
 * permission on the file by its mode and POSIX ACL.  1 yes, 0 no, -1 with
 * errno when the file cannot be examined. */
int sockacl_may_connect(const char *path, uid_t uid, gid_t gid);

#endif
