/* unit-spool-stage.c - staged (large) uploads: chunks hashed and written by
 * the I/O workers' data lane while more arrives, directly to disk (O_DIRECT)
 * and through the page cache (as where the filesystem refuses O_DIRECT);
 * the reader is told to stop while both
 * buffers are taken and to go on from the ready callback; the commit
 * writes the unaligned tail; several commits share directory fsyncs.
 * Real iopool threads and a real libevent loop. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>

#include "iopool.h"
#include "spool.h"

struct fx {
    char dir[64];
    struct spool *sp;
    struct event_base *base;
};

static struct event_base *make_base(void)
{
    static bool threads;
    if (!threads) {
        assert_int_equal(evthread_use_pthreads(), 0);
        threads = true;
    }
    return event_base_new();
}

static int setup_in(void **state, const char *parent)
{
    struct fx *f = calloc(1, sizeof *f);
    char *err = NULL, sp[128];
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/unit-stage.XXXXXX", parent);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(sp, sizeof sp, "%s/spool", f->dir);
    f->sp = spool_open(sp, &err);
    assert_non_null(f->sp);
    f->base = make_base();
    assert_non_null(f->base);
    assert_int_equal(iopool_start(f->base, 2), 0);
    *state = f;
    return 0;
}

static int setup_disk(void **state)
{
    return setup_in(state, "/tmp");
}

/* Through the page cache, as on a filesystem without O_DIRECT. */
static int setup_buffered(void **state)
{
    int rc = setup_in(state, "/tmp");
    if (rc == 0)
        spool_allow_direct(((struct fx *)*state)->sp, false);
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    iopool_stop();
    event_base_free(f->base);
    spool_close(f->sp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

struct feeder {
    struct upload *up;
    const unsigned char *data;
    size_t len, off, piece;
    bool waiting;          /* told to stop: until ready */
    int stops, readies;
};

static void on_ready(void *arg)
{
    struct feeder *fd = arg;
    fd->readies++;
    fd->waiting = false;
}

/* Feed the whole document in pieces, as the network delivers it, running
 * the loop whenever the upload says stop; then until it is idle. */
static void feed(struct fx *f, struct feeder *fd)
{
    spool_upload_on_ready(fd->up, on_ready, fd);
    while (fd->off < fd->len) {
        if (fd->waiting) {
            assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
            continue;
        }
        size_t n = fd->len - fd->off < fd->piece ? fd->len - fd->off : fd->piece;
        int rc = spool_upload_write(fd->up, fd->data + fd->off, n);
        assert_true(rc == 0 || rc == 1);
        fd->off += n;
        if (rc == 1) {
            fd->waiting = true;
            fd->stops++;
        }
    }
    while (!spool_upload_idle(fd->up))
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
}

static void sha_hex(const unsigned char *data, size_t len, char *hex)
{
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static unsigned char *make_doc(size_t len, unsigned seed)
{
    unsigned char *d = malloc(len);
    assert_non_null(d);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        d[i] = (unsigned char)(x >> 24);
    }
    return d;
}

/* Read the committed document back and compare. */
static void check_doc(struct fx *f, const char *name, const unsigned char *data, size_t len)
{
    int fd = spool_job_open(f->sp, name);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)len);
    assert_int_equal(st.st_mode & 0777, 0600);
    unsigned char *back = malloc(len);
    assert_non_null(back);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, back + got, len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    assert_memory_equal(back, data, len);
    free(back);
}

/* Commit the upload, free it, and check the hash and the bytes in jobs/
 * against doc (freed too). */
static void commit_check(struct fx *f, struct upload *up, unsigned char *doc, size_t len)
{
    char name[40], sha[65], hex[65];
    assert_int_equal(spool_upload_commit(up, name, sha), 0);
    spool_upload_free(up);
    sha_hex(doc, len, hex);
    assert_string_equal(sha, hex);
    check_doc(f, name, doc, len);
    free(doc);
}

/* 13 MiB and 4,321 bytes, in 16 KiB pieces: staged, the reader told to
 * stop and go on, the right bytes and hash in jobs/ after the commit. */
static void test_staged_roundtrip(void **state)
{
    struct fx *f = *state;
    size_t len = (13u << 20) + 4321;
    unsigned char *doc = make_doc(len, 1);
    struct feeder fd = {.data = doc, .len = len, .piece = 16384};
    fd.up = spool_upload_new(f->sp);
    assert_non_null(fd.up);
    spool_upload_expect(fd.up, len);
    feed(f, &fd);
    assert_int_equal(spool_upload_bytes(fd.up), (int64_t)len);
    assert_true(fd.readies >= 12);          /* a chunk at a time went to a worker */
    commit_check(f, fd.up, doc, len);
}

/* Pieces of awkward sizes (never a multiple of the block size), and one
 * piece larger than a chunk. */
static void test_staged_odd_pieces(void **state)
{
    struct fx *f = *state;
    size_t len = (6u << 20) + 1;
    unsigned char *doc = make_doc(len, 2);
    struct feeder fd = {.data = doc, .len = len, .piece = 12345};
    fd.up = spool_upload_new(f->sp);
    spool_upload_expect(fd.up, len);
    /* first a piece of 1.5 MiB at once */
    spool_upload_on_ready(fd.up, on_ready, &fd);
    int rc = spool_upload_write(fd.up, doc, 3u << 19);
    assert_true(rc == 0 || rc == 1);
    fd.off = 3u << 19;
    fd.waiting = rc == 1;
    feed(f, &fd);
    commit_check(f, fd.up, doc, len);
}

/* A small announced size is not staged: written at once, always idle. */
static void test_small_not_staged(void **state)
{
    struct fx *f = *state;
    size_t len = 100000;
    unsigned char *doc = make_doc(len, 3);
    struct upload *up = spool_upload_new(f->sp);

    spool_upload_expect(up, len);
    for (size_t off = 0; off < len; off += 4096) {
        size_t n = len - off < 4096 ? len - off : 4096;
        assert_int_equal(spool_upload_write(up, doc + off, n), 0);
        assert_true(spool_upload_idle(up));
    }
    commit_check(f, up, doc, len);
}

/* Just over what is held (1 MiB) is staged too: nothing is created on
 * the caller's thread for its first bytes (a plain upload's file would be
 * in incoming/ at once), and it lands whole. */
static void test_just_over_held_staged(void **state)
{
    struct fx *f = *state;
    size_t len = (1u << 20) + 1;
    unsigned char *doc = make_doc(len, 4);
    char inc[128];
    struct upload *up = spool_upload_new(f->sp);

    spool_upload_expect(up, len);
    assert_int_equal(spool_upload_write(up, doc, 1000), 0);
    snprintf(inc, sizeof inc, "%s/spool/incoming", f->dir);
    DIR *d = opendir(inc);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    struct feeder fd = {.up = up, .data = doc, .len = len, .off = 1000, .piece = 16384};
    feed(f, &fd);
    commit_check(f, up, doc, len);
}

/* Several staged uploads at once, committed from two threads: every one
 * lands whole under its own name. */
struct committer { struct upload *up; char name[40], sha[65]; int rc; };

static void commit_work(void *arg)
{
    struct committer *c = arg;
    c->rc = spool_upload_commit(c->up, c->name, c->sha);
}

static int commits_done;
static void commit_done(void *arg)
{
    commits_done++;
}

static void test_staged_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 6 };
    size_t len = (5u << 20) + 777;
    unsigned char *doc[N];
    struct feeder fd[N];
    struct committer c[N];
    char hex[65];

    for (int i = 0; i < N; i++) {
        doc[i] = make_doc(len, 10 + (unsigned)i);
        fd[i] = (struct feeder){.data = doc[i], .len = len, .piece = 16384};
        fd[i].up = spool_upload_new(f->sp);
        spool_upload_expect(fd[i].up, len);
        spool_upload_on_ready(fd[i].up, on_ready, &fd[i]);
    }
    /* interleave the uploads' pieces */
    for (bool more = true; more;) {
        more = false;
        for (int i = 0; i < N; i++) {
            if (fd[i].off >= len)
                continue;
            more = true;
            if (fd[i].waiting)
                continue;
            size_t n = len - fd[i].off < fd[i].piece ? len - fd[i].off : fd[i].piece;
            int rc = spool_upload_write(fd[i].up, doc[i] + fd[i].off, n);
            assert_true(rc == 0 || rc == 1);
            fd[i].off += n;
            fd[i].waiting = rc == 1;
        }
        assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
    }
    for (int i = 0; i < N; i++)
        while (!spool_upload_idle(fd[i].up))
            assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
    commits_done = 0;
    for (int i = 0; i < N; i++) {
        c[i].up = fd[i].up;
        iopool_submit(commit_work, commit_done, &c[i]);
    }
    while (commits_done < N)
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].rc, 0);
        sha_hex(doc[i], len, hex);
        assert_string_equal(c[i].sha, hex);
        check_doc(f, c[i].name, doc[i], len);
        spool_upload_free(c[i].up);
        free(doc[i]);
    }
}

#define T(fn, setup, label) \
    {.name = #fn " (" label ")", .test_func = fn, .setup_func = setup, .teardown_func = teardown}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_staged_roundtrip, setup_disk, "direct"),
        T(test_staged_odd_pieces, setup_disk, "direct"),
        T(test_small_not_staged, setup_disk, "direct"),
        T(test_just_over_held_staged, setup_disk, "direct"),
        T(test_just_over_held_staged, setup_buffered, "buffered"),
        T(test_staged_concurrent, setup_disk, "direct"),
        T(test_staged_roundtrip, setup_buffered, "buffered"),
        T(test_staged_odd_pieces, setup_buffered, "buffered"),
        T(test_staged_concurrent, setup_buffered, "buffered"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
