/* unit-spool.c - the spool's commit protocol and shredding, on the real
 * filesystem in a private directory per test. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "shred.h"
#include "spool.h"

struct fx { char dir[64]; struct spool *sp; };

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char *err = NULL;
    strcpy(f->dir, "/tmp/unit-spool.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char sp[128];
    snprintf(sp, sizeof sp, "%s/spool", f->dir);
    f->sp = spool_open(sp, &err);
    assert_non_null(f->sp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    spool_close(f->sp);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void sub(char *buf, size_t len, const struct fx *f, const char *rel)
{
    snprintf(buf, len, "%s/spool/%s", f->dir, rel);
}

static void test_dirs_private(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct stat st;
    const char *rel[] = {"", "incoming", "jobs"};
    for (int i = 0; i < 3; i++) {
        sub(p, sizeof p, f, rel[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
}

static void test_refuses_open_dir(void **state)
{
    struct fx *f = *state;
    char p[256], *err = NULL;
    snprintf(p, sizeof p, "%s/open", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(chmod(p, 0755), 0);
    struct spool *sp = spool_open(p, &err);
    assert_null(sp);
    assert_non_null(err);
    assert_non_null(strstr(err, "0700"));
    free(err);
}

static void test_commit(void **state)
{
    struct fx *f = *state;
    char name[40], sha[65], inc[256], jobs[256], path[300];
    unsigned char data[100000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    struct upload *up = spool_upload_new(f->sp);
    assert_non_null(up);
    sub(inc, sizeof inc, f, "incoming");
    sub(jobs, sizeof jobs, f, "jobs");
    assert_int_equal(count_files(inc), 0);      /* the file comes with the first bytes */
    /* written in pieces, as the network delivers it */
    for (size_t off = 0; off < sizeof data; off += 4096) {
        size_t n = sizeof data - off < 4096 ? sizeof data - off : 4096;
        assert_int_equal(spool_upload_write(up, data + off, n), 0);
        assert_int_equal(count_files(inc), 1);
    }
    assert_int_equal(spool_upload_bytes(up), (int64_t)sizeof data);
    assert_int_equal(spool_upload_commit(up, name, sha), 0);
    spool_upload_free(up);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(count_files(jobs), 1);
    assert_int_equal(strlen(name), 32);
    /* the hash is the document's SHA-256 */
    unsigned char md[32];
    unsigned int mdlen;
    char hex[65];
    EVP_Digest(data, sizeof data, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(sha, hex);
    /* 0600, the right bytes */
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", jobs, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, (off_t)sizeof data);
    assert_true(spool_job_exists(f->sp, name));
    int fd = spool_job_open(f->sp, name);
    assert_true(fd >= 0);
    unsigned char back[100];
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
    assert_memory_equal(back, data, sizeof back);
    close(fd);
}

static void test_discard(void **state)
{
    struct fx *f = *state;
    char inc[256];
    struct upload *up = spool_upload_new(f->sp);
    assert_non_null(up);
    assert_int_equal(spool_upload_write(up, "abc", 3), 0);
    spool_upload_discard(up);
    spool_upload_free(up);
    sub(inc, sizeof inc, f, "incoming");
    assert_int_equal(count_files(inc), 0);
}

/* sha256 as hex of data[0..n). */
static void sha_hex(const void *data, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* A small upload announced with its length is held in memory: no file
 * until the commit writes it (into jobs/, under its final name), and a
 * discard leaves nothing; the same bytes and hash as a streamed one.
 * Past the held budget (16 MiB of announced sizes) small ones stream; an
 * upload that sends more than it announced becomes a streamed one with
 * all of its bytes. */
static void test_held(void **state)
{
    struct fx *f = *state;
    char name[40], sha[65], hex[65], inc[256], jobs[256], path[300];
    static unsigned char data[1 << 20];
    sub(inc, sizeof inc, f, "incoming");
    sub(jobs, sizeof jobs, f, "jobs");
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 13 + 1);

    struct upload *up = spool_upload_new(f->sp);
    spool_upload_expect(up, sizeof data);
    for (size_t off = 0; off < sizeof data; off += 1000) {
        size_t n = sizeof data - off < 1000 ? sizeof data - off : 1000;
        assert_int_equal(spool_upload_write(up, data + off, n), 0);
    }
    assert_true(spool_upload_idle(up));
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(spool_upload_bytes(up), (int64_t)sizeof data);
    assert_int_equal(spool_upload_commit(up, name, sha), 0);
    spool_upload_free(up);
    sha_hex(data, sizeof data, hex);
    assert_string_equal(sha, hex);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(count_files(jobs), 1);
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", jobs, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, (off_t)sizeof data);
    static unsigned char back[sizeof data];
    int fd = spool_job_open(f->sp, name);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
    assert_memory_equal(back, data, sizeof data);
    close(fd);
    struct shred_receipt r;
    assert_int_equal(spool_job_shred(f->sp, name, 1, &r), 0);

    /* a held upload's file is made in jobs/ at its commit, under its final
     * name; discarded after that step (as when the directory's fsync
     * fails), it is shredded there */
    up = spool_upload_new(f->sp);
    spool_upload_expect(up, 100);
    assert_int_equal(spool_upload_write(up, data, 100), 0);
    assert_int_equal(spool_upload_commit_file(up, name, sha), 0);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(count_files(jobs), 1);
    snprintf(path, sizeof path, "%s/%s", jobs, name);
    assert_int_equal(stat(path, &st), 0);
    spool_upload_discard(up);
    spool_upload_free(up);
    assert_int_equal(count_files(inc) + count_files(jobs), 0);

    /* discarded while held: no file was ever made */
    up = spool_upload_new(f->sp);
    spool_upload_expect(up, 100);
    assert_int_equal(spool_upload_write(up, data, 50), 0);
    spool_upload_discard(up);
    spool_upload_free(up);
    assert_int_equal(count_files(inc) + count_files(jobs), 0);

    /* (over 1 MiB announced: staged, see unit-spool-stage) */

    /* the budget: 16 held uploads of 1 MiB; the next one streams */
    struct upload *many[16];
    for (int i = 0; i < 16; i++) {
        many[i] = spool_upload_new(f->sp);
        spool_upload_expect(many[i], sizeof data);
        assert_int_equal(spool_upload_write(many[i], data, 1), 0);
    }
    assert_int_equal(count_files(inc), 0);
    up = spool_upload_new(f->sp);
    spool_upload_expect(up, 10);
    assert_int_equal(spool_upload_write(up, data, 10), 0);
    assert_int_equal(count_files(inc), 1);
    spool_upload_discard(up);
    spool_upload_free(up);
    spool_upload_free(many[0]);                 /* frees room for one more */
    up = spool_upload_new(f->sp);
    spool_upload_expect(up, sizeof data);
    assert_int_equal(spool_upload_write(up, data, 10), 0);
    assert_int_equal(count_files(inc), 0);
    spool_upload_free(up);
    for (int i = 1; i < 16; i++)
        spool_upload_free(many[i]);

    /* more than announced: every byte kept, in order */
    up = spool_upload_new(f->sp);
    spool_upload_expect(up, 100);
    assert_int_equal(spool_upload_write(up, data, 60), 0);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(spool_upload_write(up, data + 60, 1000), 0);
    assert_int_equal(count_files(inc), 1);
    assert_int_equal(spool_upload_commit(up, name, sha), 0);
    spool_upload_free(up);
    sha_hex(data, 1060, hex);
    assert_string_equal(sha, hex);
    assert_int_equal(count_files(inc), 0);
}

/* The two commit steps: after _file the document is in jobs/ under the
 * name given; a discard then (the directory fsync failed) shreds it
 * there, so nothing is left behind; _dir after _file commits. */
static void test_commit_steps(void **state)
{
    struct fx *f = *state;
    char name[40], sha[65], inc[256], jobs[256];
    sub(inc, sizeof inc, f, "incoming");
    sub(jobs, sizeof jobs, f, "jobs");

    struct upload *up = spool_upload_new(f->sp);
    assert_non_null(up);
    assert_int_equal(spool_upload_write(up, "%PDF-1.4 one", 12), 0);
    assert_int_equal(spool_upload_commit_file(up, name, sha), 0);
    assert_int_equal(strlen(name), 32);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(count_files(jobs), 1);
    spool_upload_discard(up);
    spool_upload_free(up);
    assert_int_equal(count_files(jobs), 0);

    up = spool_upload_new(f->sp);
    assert_non_null(up);
    assert_int_equal(spool_upload_write(up, "%PDF-1.4 two", 12), 0);
    assert_int_equal(spool_upload_commit_file(up, name, sha), 0);
    assert_int_equal(spool_upload_commit_dir(up), 0);
    spool_upload_free(up);
    char path[300];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", jobs, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 12);
    assert_int_equal(count_files(inc), 0);
}

static void test_shred(void **state)
{
    struct fx *f = *state;
    char name[40], sha[65], jobs[256];
    struct shred_receipt r;
    struct upload *up = spool_upload_new(f->sp);
    char block[8192];
    memset(block, 'M', sizeof block);
    for (int i = 0; i < 10; i++)
        assert_int_equal(spool_upload_write(up, block, sizeof block), 0);
    assert_int_equal(spool_upload_commit(up, name, sha), 0);
    spool_upload_free(up);
    assert_int_equal(spool_job_shred(f->sp, name, 2, &r), 0);
    assert_int_equal(r.bytes, 10 * 8192);
    assert_int_equal(r.passes, 2);
    assert_int_equal(r.error, 0);
    sub(jobs, sizeof jobs, f, "jobs");
    assert_int_equal(count_files(jobs), 0);
    assert_false(spool_job_exists(f->sp, name));
    /* a second shred of the same name fails cleanly with ENOENT */
    assert_int_equal(spool_job_shred(f->sp, name, 1, &r), -1);
    assert_int_equal(r.error, ENOENT);
}

static void test_shred_overwrites(void **state)
{
    /* Overwrite happens in place: keep a second hard link to watch the
     * same inode after the name is gone. */
    struct fx *f = *state;
    char path[256], link_path[256];
    struct shred_receipt r;
    snprintf(path, sizeof path, "%s/victim", f->dir);
    snprintf(link_path, sizeof link_path, "%s/watch", f->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    char block[4096];
    memset(block, 'S', sizeof block);
    assert_int_equal(write(fd, block, sizeof block), (ssize_t)sizeof block);
    close(fd);
    assert_int_equal(link(path, link_path), 0);
    assert_int_equal(shred_file(f->dir, "victim", 1, &r), 0);
    assert_int_equal(access(path, F_OK), -1);
    struct stat st;
    assert_int_equal(stat(link_path, &st), 0);
    assert_int_equal(st.st_size, 0);     /* truncated after the overwrite */
}

static bool keep_none(const char *name, void *arg)
{
    (void)name;
    (void)arg;
    return false;
}

static bool keep_named(const char *name, void *arg)
{
    return strcmp(name, (const char *)arg) == 0;
}

static void test_recover(void **state)
{
    struct fx *f = *state;
    char keep[40], other[40], sha[65], inc[256], jobs[256];
    struct upload *a = spool_upload_new(f->sp), *b = spool_upload_new(f->sp),
                  *c = spool_upload_new(f->sp);
    spool_upload_write(a, "a", 1);
    spool_upload_write(b, "b", 1);
    spool_upload_write(c, "c", 1);
    assert_int_equal(spool_upload_commit(a, keep, sha), 0);
    assert_int_equal(spool_upload_commit(b, other, sha), 0);
    spool_upload_free(a);
    spool_upload_free(b);
    spool_upload_free(c);           /* c stays in incoming/: an interrupted upload */
    sub(inc, sizeof inc, f, "incoming");
    sub(jobs, sizeof jobs, f, "jobs");
    assert_int_equal(count_files(inc), 1);
    assert_int_equal(spool_recover(f->sp, keep_named, keep, 1), 2);
    assert_int_equal(count_files(inc), 0);
    assert_int_equal(count_files(jobs), 1);
    assert_true(spool_job_exists(f->sp, keep));
    assert_false(spool_job_exists(f->sp, other));
    assert_int_equal(spool_recover(f->sp, keep_none, NULL, 1), 1);
    assert_int_equal(count_files(jobs), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dirs_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_open_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shred_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
