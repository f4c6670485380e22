/* shred.c - overwrite, sync, rename, unlink (see shred.h).
 *
 * Design notes: random data comes from OpenSSL's DRBG (RAND_bytes, AES-CTR
 * at hardware speed) in 1 MiB blocks; each pass is followed by fdatasync so
 * the overwrite reaches the device before the name goes away.  The rename
 * to a random name before unlink keeps the original (random, but still
 * job-linked) name out of the directory once the data is gone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "shred.h"
#include "util.h"

#define SHRED_BLOCK (1024 * 1024)

static int overwrite(int fd, int64_t size, int passes)
{
    unsigned char *buf = malloc(SHRED_BLOCK);
    int rc = -1;

    if (!buf)
        return -1;
    for (int p = 0; p < passes; p++) {
        for (int64_t off = 0; off < size;) {
            size_t n = size - off > SHRED_BLOCK ? SHRED_BLOCK : (size_t)(size - off);
            if (RAND_bytes(buf, (int)n) != 1) {
                errno = EIO;
                goto out;
            }
            ssize_t w = pwrite(fd, buf, n, off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                goto out;
            }
            off += w;
        }
        if (fdatasync(fd) < 0)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int shred_file(const char *dir, const char *name, int passes, struct shred_receipt *r)
{
    int64_t t0 = mono_ms();
    int dfd = -1, fd = -1, rc = -1;
    char tmp[48];
    struct stat st;

    memset(r, 0, sizeof *r);
    r->passes = passes;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        goto out;
    fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fstat(fd, &st) < 0)
        goto out;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto out;
    }
    r->bytes = st.st_size;
    if (overwrite(fd, st.st_size, passes) < 0)
        goto out;
    fault_point("shred-after-overwrite");
    if (ftruncate(fd, 0) < 0 || fdatasync(fd) < 0)
        goto out;
    close(fd);
    fd = -1;
    tmp[0] = 'x';
    random_hex(tmp + 1, 16);
    if (renameat(dfd, name, dfd, tmp) < 0)
        goto out;
    if (fsync_dirfd(dfd) < 0)
        goto out;
    fault_point("shred-after-rename");
    if (unlinkat(dfd, tmp, 0) < 0)
        goto out;
    if (fsync_dirfd(dfd) < 0)
        goto out;
    fault_point("shred-after-unlink");
    rc = 0;
out:
    if (rc < 0)
        r->error = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    r->elapsed_ms = mono_ms() - t0;
    if (rc < 0)
        errno = r->error;
    return rc;
}
