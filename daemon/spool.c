/* spool.c - the durable spool (see spool.h).
 *
 * Design notes: disk is the truth.  An upload lives in incoming/ under a
 * random name until spool_upload_commit() makes it durable in the order
 * fdatasync -> rename into jobs/ -> fsync jobs/; only then may the job row
 * be inserted.  After a crash anything left in incoming/ was never
 * acknowledged and is shredded; anything in jobs/ without a row was never
 * acknowledged either (the row insert is the acknowledgement's last step)
 * and is shredded too.  SHA-256 is computed on the way in with libcrypto's
 * EVP interface, so no second read of the document is needed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "log.h"
#include "shred.h"
#include "spool.h"
#include "util.h"

struct spool {
    char *dir, *incoming, *jobs;
};

struct upload {
    struct spool *sp;
    int fd;
    char name[JOB_NAME_MAX];
    int64_t bytes;
    EVP_MD_CTX *md;
};

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdirs(const char *path)
{
    char buf[4096];
    if (xsnprintf(buf, sizeof buf, "%s", path) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Refuse a directory that is not ours alone. */
static int check_private(const char *path, char **err)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (asprintf(err, "spool: %s: %s", path, strerror(errno)) < 0)
            *err = NULL;
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid()) {
        if (asprintf(err, "spool: %s must be a directory owned by uid %u with mode 0700 "
                     "(found mode %04o, owner %u)", path, (unsigned)geteuid(),
                     (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid) < 0)
            *err = NULL;
        return -1;
    }
    return 0;
}

int spool_private_dir(const char *dir, char **err)
{
    *err = NULL;
    if (mkdirs(dir) < 0) {
        if (asprintf(err, "cannot create %s: %s", dir, strerror(errno)) < 0)
            *err = NULL;
        return -1;
    }
    return check_private(dir, err);
}

struct spool *spool_open(const char *dir, char **err)
{
    struct spool *sp = calloc(1, sizeof *sp);
    *err = NULL;
    if (!sp)
        return NULL;
    sp->dir = strdup(dir);
    sp->incoming = path_join(dir, "incoming");
    sp->jobs = path_join(dir, "jobs");
    if (!sp->dir || !sp->incoming || !sp->jobs)
        goto fail;
    const char *dirs[] = {sp->dir, sp->incoming, sp->jobs};
    for (size_t i = 0; i < 3; i++) {
        if (mkdirs(dirs[i]) < 0) {
            if (asprintf(err, "spool: cannot create %s: %s", dirs[i], strerror(errno)) < 0)
                *err = NULL;
            goto fail;
        }
        if (check_private(dirs[i], err) < 0)
            goto fail;
    }
    return sp;
fail:
    spool_close(sp);
    return NULL;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    free(sp->dir);
    free(sp->incoming);
    free(sp->jobs);
    free(sp);
}

const char *spool_jobs_dir(const struct spool *sp)
{
    return sp->jobs;
}

struct upload *spool_upload_new(struct spool *sp)
{
    struct upload *up = calloc(1, sizeof *up);
    if (!up)
        return NULL;
    up->sp = sp;
    up->md = EVP_MD_CTX_new();
    if (!up->md || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(up->md);
        free(up);
        errno = ENOMEM;
        return NULL;
    }
    char path[4096];
    for (int tries = 0; tries < 5; tries++) {
        random_hex(up->name, 16);
        snprintf(path, sizeof path, "%s/%s", sp->incoming, up->name);
        up->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (up->fd >= 0 || errno != EEXIST)
            break;
    }
    if (up->fd < 0) {
        int e = errno;
        EVP_MD_CTX_free(up->md);
        free(up);
        errno = e;
        return NULL;
    }
    return up;
}

int spool_upload_write(struct upload *up, const void *data, size_t len)
{
    const char *p = data;
    EVP_DigestUpdate(up->md, data, len);
    while (len > 0) {
        ssize_t n = write(up->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        up->bytes += n;
    }
    return 0;
}

int64_t spool_upload_bytes(const struct upload *up)
{
    return up->bytes;
}

int spool_upload_commit(struct upload *up, char *name, char *sha256)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char from[4096], to[4096], newname[JOB_NAME_MAX];

    if (EVP_DigestFinal_ex(up->md, md, &mdlen) != 1) {
        errno = EIO;
        return -1;
    }
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(sha256 + 2 * i, 3, "%02x", md[i]);
    if (fdatasync(up->fd) < 0)
        return -1;
    close(up->fd);
    up->fd = -1;
    random_hex(newname, 16);
    snprintf(from, sizeof from, "%s/%s", up->sp->incoming, up->name);
    snprintf(to, sizeof to, "%s/%s", up->sp->jobs, newname);
    /* RENAME_NOREPLACE would be ideal; names are 128 random bits. */
    if (rename(from, to) < 0)
        return -1;
    if (fsync_dir(up->sp->jobs) < 0)
        return -1;
    xstrlcpy(up->name, newname, sizeof up->name);
    xstrlcpy(name, newname, JOB_NAME_MAX);
    return 0;
}

void spool_upload_discard(struct upload *up)
{
    struct shred_receipt r;
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
    if (shred_file(up->sp->incoming, up->name, 1, &r) < 0 && errno != ENOENT)
        log_err("spool: discarding an upload failed: %s", strerror(errno));
}

void spool_upload_free(struct upload *up)
{
    if (!up)
        return;
    if (up->fd >= 0)
        close(up->fd);
    EVP_MD_CTX_free(up->md);
    free(up);
}

int spool_job_open(const struct spool *sp, const char *name)
{
    char path[4096];
    if (xsnprintf(path, sizeof path, "%s/%s", sp->jobs, name) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

bool spool_job_exists(const struct spool *sp, const char *name)
{
    char path[4096];
    struct stat st;
    if (!name[0] || xsnprintf(path, sizeof path, "%s/%s", sp->jobs, name) < 0)
        return false;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int spool_job_shred(const struct spool *sp, const char *name, int passes, struct shred_receipt *r)
{
    return shred_file(sp->jobs, name, passes, r);
}

/* Shred every regular file of dir for which keep() is false (or NULL). */
static int sweep(const char *dir, bool (*keep)(const char *, void *), void *arg, int passes)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d))) {
        struct shred_receipt r;
        if (de->d_name[0] == '.')
            continue;
        if (keep && keep(de->d_name, arg))
            continue;
        if (shred_file(dir, de->d_name, passes, &r) == 0)
            n++;
        else
            log_err("spool: cannot shred leftover file in %s: %s", dir, strerror(errno));
    }
    closedir(d);
    return n;
}

int spool_recover(struct spool *sp, bool (*known)(const char *name, void *arg), void *arg,
                  int passes)
{
    int a = sweep(sp->incoming, NULL, NULL, passes);
    int b = sweep(sp->jobs, known, arg, passes);
    if (a < 0 || b < 0)
        return -1;
    return a + b;
}

int64_t spool_free_bytes(const struct spool *sp)
{
    struct statvfs sv;
    if (statvfs(sp->dir, &sv) < 0)
        return -1;
    return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}
