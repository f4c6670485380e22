/* shred.h - securely remove one file: overwrite it in place with passes of
 * random data (a fast CSPRNG), fdatasync, rename to a random name, fsync
 * the directory, unlink, fsync the directory.  BLOCKING: I/O workers only.
 * What overwriting cannot promise (SSDs, copy-on-write filesystems,
 * journals, snapshots) is in docs/retention.md. */
#ifndef COPEES_SHRED_H
#define COPEES_SHRED_H

#include <stdint.h>

struct shred_receipt {
    int64_t bytes;        /* size overwritten */
    int passes;
    int64_t elapsed_ms;
    int error;            /* errno of the failure, 0 = shredded */
};

/* Shred dir/name.  0 / -1 (errno, also in r->error). */
int shred_file(const char *dir, const char *name, int passes, struct shred_receipt *r);

#endif
