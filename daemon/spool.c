/* spool.c - the durable spool (see spool.h).
 *
 * Design notes: disk is the truth.  An upload lives in incoming/ under a
 * random name until spool_upload_commit() makes it durable in the order
 * fdatasync -> rename into jobs/ -> fsync jobs/ (a held one is written
 * to jobs/ directly, see below); only then may the job row be inserted.  After a crash anything left in incoming/ was never
 * acknowledged and is shredded; anything in jobs/ without a row was never
 * acknowledged either (the row insert is the acknowledgement's last step)
 * and is shredded too.  SHA-256 is computed on the way in with libcrypto's
 * EVP interface, so no second read of the document is needed.
 *
 * Small uploads (announced with spool_upload_expect(), 1 MiB or less)
 * are held: the body is copied into a buffer of the announced size and
 * the commit, on a worker, creates the file and writes and hashes it
 * before its fdatasync.  So the loop creates no file and writes nothing
 * for most documents; an open(O_CREAT) that waits on the filesystem
 * delays one upload, not the loop.  As the whole body is there, the file
 * is created in jobs/ directly, under its final name, and needs no
 * rename: until the job row exists it is a file in jobs/ without a row,
 * which start-up shreds like any other (a rename was 4% of copeesd's CPU
 * per document).  Held buffers are capped for all uploads together
 * (HOLD_BUDGET, announced sizes: 16 uploads of 1 MiB); past it, or when
 * more arrives than was announced, the upload streams as below.
 *
 * Large uploads (announced with spool_upload_expect()) are staged: the
 * loop only copies what arrives into one of two 4 KiB-aligned buffers, and
 * each full chunk is hashed and written by a data-lane worker while the
 * next one fills, with O_DIRECT where the filesystem allows it.  Copying
 * into the page cache and hashing a few hundred megabytes on the loop was
 * what limited upload speed (and the loop's answers meanwhile); direct
 * writes also put the document on the disk while it arrives, so the
 * final fdatasync has little left to do.  Without O_DIRECT (tmpfs) each
 * chunk's writeback is started at once (sync_file_range) for the same
 * reason.  One chunk write is in flight per upload, so the hash sees the
 * bytes in order; when both buffers are full the caller is told to stop
 * reading until the ready callback.  Staging memory is capped for all
 * uploads together (STAGE_BUDGET); past it an upload is written on the
 * caller's thread as unannounced ones are.  A staged upload's file is
 * created by the worker that writes its first chunk.
 *
 * Renames into jobs/ (and held uploads' creations there) are made
 * durable by one fsync of the directory that several commits share: a
 * worker whose rename an fsync already under way does not cover waits for
 * it and starts the next one, which covers every rename done by then.
 * jobs/ stays open for that.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "iopool.h"
#include "log.h"
#include "shred.h"
#include "spool.h"
#include "util.h"

#define STAGE_CHUNK (1 << 20)        /* a chunk handed to a worker */
#define STAGE_CAP (STAGE_CHUNK + (256 << 10))  /* a buffer: a chunk and what arrives as it fills */
#define STAGE_BUDGET (32 << 20)      /* staging buffers of all uploads together */
#define STAGE_ALIGN 4096             /* O_DIRECT: buffer address, offset and length */
#define HOLD_MAX (1 << 20)           /* announced size up to which an upload is held */
#define STAGE_MIN (HOLD_MAX + 1)     /* announced size from which an upload is staged */
#define HOLD_BUDGET (16 << 20)       /* held uploads' buffers, all together */

struct spool {
    char *dir, *incoming, *jobs;
    int jobs_fd;                     /* jobs/, kept open for its fsyncs */
    pthread_mutex_t sync_mu;         /* the shared fsync of jobs/ */
    pthread_cond_t sync_cv;
    uint64_t renamed;                /* renames into jobs/ so far */
    uint64_t synced;                 /* ... made durable by a finished fsync */
    uint64_t failed_upto;            /* ... whose fsync failed */
    int failed_errno;
    bool syncing;
    bool no_direct;                  /* spool_allow_direct(false) */
};

struct upload {
    struct spool *sp;
    int fd;                          /* -1 until the file is created */
    bool created;                    /* the file exists in incoming/ (or was renamed) */
    bool in_jobs;                    /* ... it was created in jobs/ (a held upload's commit) */
    char name[JOB_NAME_MAX];
    char pending_name[JOB_NAME_MAX]; /* its name in jobs/ until the directory fsync */
    uint64_t renamed;                /* the number of its rename (jobs_dir_sync) */
    int64_t bytes;                   /* taken so far */
    EVP_MD_CTX *md;
    /* holding (small uploads): the body, written by the commit's worker */
    bool held;
    char *hold;
    size_t hold_cap;
    /* staging (large uploads); the loop owns every field but the task's */
    bool staged, direct;
    char *buf[2];
    size_t fill;                     /* bytes in buf[cur] */
    int cur;
    bool inflight;                   /* a chunk write is queued or running */
    int err;                         /* first failed write's errno */
    int64_t written;                 /* file offset after the dispatched chunks */
    void (*ready)(void *arg);
    void *ready_arg;
    /* the chunk in flight (the worker's) */
    const char *task_buf;
    size_t task_len;
    int64_t task_off;
    int task_err;
};

static size_t stage_used;            /* loop thread */
static _Atomic size_t hold_used;     /* added on the loop, released by workers too */

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
    sp->jobs_fd = -1;
    pthread_mutex_init(&sp->sync_mu, NULL);
    pthread_cond_init(&sp->sync_cv, NULL);
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
    sp->jobs_fd = open(sp->jobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->jobs_fd < 0) {
        if (asprintf(err, "spool: cannot open %s: %s", sp->jobs, strerror(errno)) < 0)
            *err = NULL;
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
    if (sp->jobs_fd >= 0)
        close(sp->jobs_fd);
    pthread_mutex_destroy(&sp->sync_mu);
    pthread_cond_destroy(&sp->sync_cv);
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
    up->fd = -1;
    up->md = EVP_MD_CTX_new();
    if (!up->md || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(up->md);
        free(up);
        errno = ENOMEM;
        return NULL;
    }
    return up;
}

/* Create the upload's file in incoming/ (or in jobs/: in_jobs) under a
 * random name: directly written (O_DIRECT) when staged and the filesystem
 * takes it.  On the loop for a plain upload, on a worker otherwise.
 * 0 / -1 (errno). */
static int upload_create_in(struct upload *up, bool in_jobs)
{
    char path[4096];
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

    if (up->fd >= 0)
        return 0;
    for (int tries = 0; tries < 5; tries++) {
        random_hex(up->name, 16);
        snprintf(path, sizeof path, "%s/%s", in_jobs ? up->sp->jobs : up->sp->incoming, up->name);
        up->fd = open(path, flags, 0600);
        if (up->fd >= 0 || errno != EEXIST)
            break;
    }
    if (up->fd < 0)
        return -1;
    up->created = true;
    up->in_jobs = in_jobs;
    /* (set on the open file: an open() with O_DIRECT that the filesystem
     * refuses has already created the file) */
    int fl = up->staged && !up->sp->no_direct ? fcntl(up->fd, F_GETFL) : -1;
    up->direct = fl >= 0 && fcntl(up->fd, F_SETFL, fl | O_DIRECT) == 0;
    return 0;
}

static int upload_create(struct upload *up)
{
    return upload_create_in(up, false);
}

/* write() all of data at fd's offset.  0 / -1 (errno). */
static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* pwrite() all of data at off.  0 / -1 (errno). */
static int pwrite_all(int fd, const char *p, size_t len, int64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

void spool_upload_expect(struct upload *up, uint64_t len)
{
    if (up->staged || up->held || up->bytes > 0 || len == 0)
        return;
    if (len <= HOLD_MAX) {
        if (hold_used + len > HOLD_BUDGET || !(up->hold = malloc(len)))
            return;
        up->held = true;
        up->hold_cap = len;
        hold_used += len;
        return;
    }
    if (len < STAGE_MIN || stage_used + STAGE_CAP * 2 > STAGE_BUDGET)
        return;
    for (int i = 0; i < 2; i++) {
        void *b = NULL;
        if (posix_memalign(&b, STAGE_ALIGN, STAGE_CAP) != 0) {
            free(up->buf[0]);
            up->buf[0] = NULL;
            return;
        }
        up->buf[i] = b;
    }
    up->staged = true;
    stage_used += STAGE_CAP * 2;
}

void spool_allow_direct(struct spool *sp, bool on)
{
    sp->no_direct = !on;
}

void spool_upload_on_ready(struct upload *up, void (*ready)(void *arg), void *arg)
{
    up->ready = ready;
    up->ready_arg = arg;
}

bool spool_upload_idle(const struct upload *up)
{
    return !up->inflight;
}

/* Stop writing up directly (worker; one task at a time per upload).
 * 0 / -1. */
static int direct_off(struct upload *up)
{
    int fl = fcntl(up->fd, F_GETFL);
    if (fl < 0 || fcntl(up->fd, F_SETFL, fl & ~O_DIRECT) < 0)
        return -1;
    up->direct = false;
    return 0;
}

/* Data lane: hash and write the chunk in flight. */
static void chunk_work(void *arg)
{
    struct upload *up = arg;
    up->task_err = 0;
    EVP_DigestUpdate(up->md, up->task_buf, up->task_len);
    if (upload_create(up) < 0) {
        up->task_err = errno;
        return;
    }
    int rc = pwrite_all(up->fd, up->task_buf, up->task_len, up->task_off);
    if (rc < 0 && errno == EINVAL && up->direct && direct_off(up) == 0)
        rc = pwrite_all(up->fd, up->task_buf, up->task_len, up->task_off);  /* alignment refused */
    if (rc < 0) {
        up->task_err = errno;
        return;
    }
    if (!up->direct)        /* start its writeback now rather than at the commit */
        sync_file_range(up->fd, up->task_off, (off_t)up->task_len, SYNC_FILE_RANGE_WRITE);
}

static void chunk_dispatch(struct upload *up);

/* Loop: the chunk in flight is written (or failed). */
static void chunk_done(void *arg)
{
    struct upload *up = arg;
    up->inflight = false;
    if (up->task_err && !up->err)
        up->err = up->task_err;
    if (!up->err && up->fill >= STAGE_CHUNK)
        chunk_dispatch(up);
    if (up->ready)
        up->ready(up->ready_arg);
}

/* Hand buf[cur]'s whole aligned blocks to a worker; the rest (less than a
 * block) starts the other buffer. */
static void chunk_dispatch(struct upload *up)
{
    size_t n = up->fill & ~(size_t)(STAGE_ALIGN - 1);
    char *b = up->buf[up->cur], *o = up->buf[up->cur ^ 1];
    memcpy(o, b + n, up->fill - n);
    up->fill -= n;
    up->cur ^= 1;
    up->task_buf = b;
    up->task_len = n;
    up->task_off = up->written;
    up->written += (int64_t)n;
    up->inflight = true;
    iopool_submit_data(chunk_work, chunk_done, up);
}

/* Release a held upload's buffer (loop or worker), zeroed first: the
 * document is not left in freed memory. */
static void hold_release(struct upload *up)
{
    if (!up->hold)
        return;
    explicit_bzero(up->hold, (size_t)up->bytes < up->hold_cap ? (size_t)up->bytes : up->hold_cap);
    free(up->hold);
    up->hold = NULL;
    atomic_fetch_sub(&hold_used, up->hold_cap);
}

/* Write a held upload's body to its new file, hashed on the way, and
 * release the buffer: from here it is a plain upload.  final: for the
 * commit, so the file is created in jobs/.  0 / -1 (errno). */
static int hold_write(struct upload *up, bool final)
{
    if (upload_create_in(up, final) < 0)
        return -1;
    EVP_DigestUpdate(up->md, up->hold, (size_t)up->bytes);
    if (write_all(up->fd, up->hold, (size_t)up->bytes) < 0)
        return -1;
    up->held = false;
    hold_release(up);
    return 0;
}

int spool_upload_write(struct upload *up, const void *data, size_t len)
{
    if (up->err) {
        errno = up->err;
        return -1;
    }
    if (up->held && (size_t)up->bytes + len <= up->hold_cap) {
        memcpy(up->hold + up->bytes, data, len);
        up->bytes += (int64_t)len;
        return 0;
    }
    if (up->held && hold_write(up, false) < 0) /* more than announced: a plain upload now */
        return -1;
    if (!up->staged) {
        if (upload_create(up) < 0)
            return -1;
        EVP_DigestUpdate(up->md, data, len);
        if (write_all(up->fd, data, len) < 0)
            return -1;
        up->bytes += (int64_t)len;
        return 0;
    }
    if (up->fill + len > STAGE_CAP) {
        /* more arrived after the buffer filled than it holds (pieces are
         * far smaller than STAGE_CHUNK): grow this buffer for it */
        void *b = NULL;
        size_t cap = up->fill + len;
        if (posix_memalign(&b, STAGE_ALIGN, cap) != 0) {
            errno = ENOMEM;
            return -1;
        }
        memcpy(b, up->buf[up->cur], up->fill);
        free(up->buf[up->cur]);
        up->buf[up->cur] = b;
        /* the other buffer takes tails only: the usual size is enough */
    }
    memcpy(up->buf[up->cur] + up->fill, data, len);
    up->fill += len;
    up->bytes += (int64_t)len;
    if (up->fill < STAGE_CHUNK)
        return 0;
    if (!up->inflight) {
        chunk_dispatch(up);
        return 0;
    }
    return 1;               /* both buffers taken: wait for the ready callback */
}

int64_t spool_upload_bytes(const struct upload *up)
{
    return up->bytes;
}

/* Make the renames into jobs/ up to number mine durable: one fsync of
 * jobs/, shared with the commits of other workers (an fsync begun after
 * a rename covers it).  0 / -1 (errno). */
static int jobs_dir_sync(struct spool *sp, uint64_t mine)
{
    int rc = 0;
    pthread_mutex_lock(&sp->sync_mu);
    while (sp->synced < mine) {
        if (sp->failed_upto >= mine) {           /* the fsync that covered it failed */
            errno = sp->failed_errno;
            rc = -1;
            break;
        }
        if (sp->syncing) {
            pthread_cond_wait(&sp->sync_cv, &sp->sync_mu);
            continue;
        }
        sp->syncing = true;
        uint64_t upto = sp->renamed;
        pthread_mutex_unlock(&sp->sync_mu);
        int r = fsync_dirfd(sp->jobs_fd), e = errno;
        pthread_mutex_lock(&sp->sync_mu);
        sp->syncing = false;
        if (r == 0) {
            if (upto > sp->synced)
                sp->synced = upto;
        } else {
            sp->failed_upto = upto;
            sp->failed_errno = e;
        }
        pthread_cond_broadcast(&sp->sync_cv);
    }
    pthread_mutex_unlock(&sp->sync_mu);
    return rc;
}

/* Write what is still staged: whole blocks directly, the tail through the
 * page cache (O_DIRECT cleared), then hash it.  0 / -1 (errno). */
static int stage_finish(struct upload *up)
{
    char *b = up->buf[up->cur];
    size_t n = up->fill & ~(size_t)(STAGE_ALIGN - 1);
    if (upload_create(up) < 0)
        return -1;
    EVP_DigestUpdate(up->md, b, up->fill);
    if (n > 0 && pwrite_all(up->fd, b, n, up->written) < 0) {
        if (errno != EINVAL || !up->direct || direct_off(up) < 0 ||
            pwrite_all(up->fd, b, n, up->written) < 0)
            return -1;
    }
    if (up->fill > n) {
        if (up->direct && direct_off(up) < 0)
            return -1;
        if (pwrite_all(up->fd, b + n, up->fill - n, up->written + (int64_t)n) < 0)
            return -1;
    }
    up->written += (int64_t)up->fill;
    up->fill = 0;
    return 0;
}

int spool_upload_commit_file(struct upload *up, char *name, char *sha256)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char from[4096], to[4096], newname[JOB_NAME_MAX];

    if (up->err) {
        errno = up->err;
        return -1;
    }
    if (up->staged && stage_finish(up) < 0)
        return -1;
    if (up->held && hold_write(up, true) < 0)
        return -1;
    if (upload_create(up) < 0)              /* (an empty plain upload) */
        return -1;
    if (EVP_DigestFinal_ex(up->md, md, &mdlen) != 1) {
        errno = EIO;
        return -1;
    }
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(sha256 + 2 * i, 3, "%02x", md[i]);
    if (fdatasync(up->fd) < 0)
        return -1;
    fault_point("upload-after-fdatasync");
    close(up->fd);
    up->fd = -1;
    if (up->in_jobs) {
        xstrlcpy(newname, up->name, sizeof newname);
    } else {
        random_hex(newname, 16);
        snprintf(from, sizeof from, "%s/%s", up->sp->incoming, up->name);
        snprintf(to, sizeof to, "%s/%s", up->sp->jobs, newname);
        /* RENAME_NOREPLACE would be ideal; names are 128 random bits. */
        if (rename(from, to) < 0)
            return -1;
    }
    fault_point("upload-after-rename");     /* (in jobs/ now, by either way) */
    pthread_mutex_lock(&up->sp->sync_mu);
    up->renamed = ++up->sp->renamed;
    pthread_mutex_unlock(&up->sp->sync_mu);
    xstrlcpy(name, newname, JOB_NAME_MAX);
    xstrlcpy(up->pending_name, newname, sizeof up->pending_name);
    return 0;
}

int spool_upload_commit_dir(struct upload *up)
{
    if (jobs_dir_sync(up->sp, up->renamed) < 0)
        return -1;
    fault_point("upload-after-dirsync");
    xstrlcpy(up->name, up->pending_name, sizeof up->name);
    return 0;
}

int spool_upload_commit(struct upload *up, char *name, char *sha256)
{
    return spool_upload_commit_file(up, name, sha256) < 0 ? -1 : spool_upload_commit_dir(up);
}

void spool_upload_discard(struct upload *up)
{
    struct shred_receipt r;
    const char *dir = up->sp->incoming, *name = up->name;

    if (up->in_jobs) {      /* created in jobs/: its name never changes */
        dir = up->sp->jobs;
    } else if (up->pending_name[0] && strcmp(up->pending_name, up->name) != 0) {
        dir = up->sp->jobs; /* renamed by a commit whose directory fsync failed */
        name = up->pending_name;
    }
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
    hold_release(up);
    if (!up->created)       /* held, or never written: no file */
        return;
    if (shred_file(dir, name, 1, &r) < 0 && errno != ENOENT)
        log_err("spool: discarding an upload failed: %s", strerror(errno));
}

void spool_upload_free(struct upload *up)
{
    if (!up)
        return;
    if (up->fd >= 0)
        close(up->fd);
    if (up->staged)
        stage_used -= STAGE_CAP * 2;
    hold_release(up);
    free(up->buf[0]);
    free(up->buf[1]);
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

/* Shred every regular file of dir for which keep() is false (or NULL).
 * linked: a file that has another name (a link count above 1) is only
 * unlinked here, not overwritten: in incoming/ that other name is the
 * committed document in jobs/, left under both names by a rename that a
 * crash cut short on a filesystem that does not journal renames whole. */
static int sweep(const char *dir, bool (*keep)(const char *, void *), void *arg, int passes,
                 bool linked)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct stat st;
    int n = 0, unlinked = 0;
    if (!d)
        return -1;
    while ((de = readdir(d))) {
        struct shred_receipt r;
        if (de->d_name[0] == '.')
            continue;
        if (keep && keep(de->d_name, arg))
            continue;
        if (linked && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_nlink > 1) {
            log_warn("spool: a leftover file in %s has another name; its name is removed, its "
                     "data kept", dir);
            if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                unlinked++;
            continue;
        }
        if (shred_file(dir, de->d_name, passes, &r) == 0)
            n++;
        else
            log_err("spool: cannot shred leftover file in %s: %s", dir, strerror(errno));
    }
    if (unlinked)
        fsync_dirfd(dirfd(d));
    closedir(d);
    return n;
}

int spool_recover(struct spool *sp, bool (*known)(const char *name, void *arg), void *arg,
                  int passes)
{
    int a = sweep(sp->incoming, NULL, NULL, passes, true);
    int b = sweep(sp->jobs, known, arg, passes, false);
    if (a < 0 || b < 0)
        return -1;
    return a + b;
}

#define MARK_NAME ".instance"

int spool_mark_read(const struct spool *sp, char *id, size_t n)
{
    char path[4096], buf[64];
    if (xsnprintf(path, sizeof path, "%s/" MARK_NAME, sp->dir) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (r < 0) {
        errno = e;
        return -1;
    }
    buf[r] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    size_t len = strlen(buf);
    if (len == 0 || len >= n || strspn(buf, "0123456789abcdef") != len) {
        errno = EINVAL;
        return -1;
    }
    memcpy(id, buf, len + 1);
    return 1;
}

int spool_mark_write(const struct spool *sp, const char *id)
{
    char tmp[4096], path[4096], line[80];
    if (xsnprintf(tmp, sizeof tmp, "%s/" MARK_NAME ".new", sp->dir) < 0 ||
        xsnprintf(path, sizeof path, "%s/" MARK_NAME, sp->dir) < 0 ||
        xsnprintf(line, sizeof line, "%s\n", id) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len || fsync(fd) < 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fsync_dir(sp->dir);
}

int64_t spool_free_bytes(const struct spool *sp)
{
    struct statvfs sv;
    if (statvfs(sp->dir, &sv) < 0)
        return -1;
    return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}
