/* unit-sysres.c - the CPUs and memory copeesd may use (daemon/sysres.c),
 * read from cgroup v2 and v1 trees this test makes (a fake /sys/fs/cgroup and
 * /proc/self/cgroup: the real ones are the machine's), and the default
 * number of checks at once that conf.c derives from them. */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
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

#include "conf.h"
#include "sysres.h"

#define MIB (1024ULL * 1024)

static char dir[64];
static int case_no;
static char root[PATH_MAX], self[PATH_MAX];
static struct sysres machine;   /* a tree without limits: the machine's figures */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Write text to path, making its directories. */
static void put(const char *path, const char *text)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    for (char *p = d + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        assert_true(mkdir(d, 0755) == 0 || errno == EEXIST);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A fresh tree for one case: root (the hierarchies' base) and self (the
 * process's /proc/self/cgroup, self_text) name it; with unified, root is
 * a cgroup v2 mount (it has cgroup.controllers). */
static void tree_with(const char *self_text, bool unified)
{
    char text[PATH_MAX + 32];
    snprintf(root, sizeof root, "%s/case%d/cgroup", dir, ++case_no);
    snprintf(self, sizeof self, "%s/case%d/self-cgroup", dir, case_no);
    put(self, self_text);
    snprintf(text, sizeof text, "%s/%s", root, unified ? "cgroup.controllers" : "memory/tasks");
    put(text, unified ? "cpu memory\n" : "");
}

/* A cgroup v2 tree, this process in cgroup cg ("/a/b"). */
static void tree(const char *cg)
{
    char text[PATH_MAX];
    snprintf(text, sizeof text, "0::%s\n", cg);
    tree_with(text, true);
}

/* Write name (memory.max, cpu.max) in the cgroup at cg under root. */
static void limit(const char *cg, const char *name, const char *value)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s/%s", root, strcmp(cg, "/") ? cg : "", name);
    put(path, value);
}

/* Write name in the cgroup at cg of the v1 hierarchy mounted at ctrls. */
static void limit_v1(const char *ctrls, const char *cg, const char *name, const char *value)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s%s/%s", root, ctrls, strcmp(cg, "/") ? cg : "", name);
    put(path, value);
}

static struct sysres read_tree(void)
{
    struct sysres r = {0, 0};
    assert_int_equal(sysres_read(root, self, &r), 0);
    return r;
}

static long min_l(long a, long b)
{
    return a < b ? a : b;
}

static int group_setup(void **state)
{
    strcpy(dir, "/tmp/unit-sysres.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    tree("/");
    return sysres_read(root, self, &machine);
}

static int group_teardown(void **state)
{
    return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* The machine's own figures are there when nothing limits them. */
static void test_machine(void **state)
{
    assert_true(machine.cpus >= 1);
    assert_true(machine.memory >= 64 * MIB);
    tree("/system.slice/copeesd.service");
    struct sysres r = read_tree();
    assert_int_equal(r.cpus, machine.cpus);
    assert_true(r.memory == machine.memory);
}

/* The smallest memory.max on the way up holds; "max" limits nothing. */
static void test_memory_by_ancestor(void **state)
{
    tree("/system.slice/copeesd.service");
    limit("/system.slice/copeesd.service", "memory.max", "max\n");
    limit("/system.slice", "memory.max", "67108864\n");          /* 64 MiB */
    limit("/", "memory.max", "134217728\n");                     /* 128 MiB */
    assert_true(read_tree().memory == 64 * MIB);
    /* the service's own, lower still */
    limit("/system.slice/copeesd.service", "memory.max", "33554432\n");
    assert_true(read_tree().memory == 32 * MIB);
}

/* A container: /proc/self/cgroup says "0::/" and the mount's own files
 * are its limits. */
static void test_container_root(void **state)
{
    tree("/");
    limit("/", "memory.max", "50331648\n");                      /* 48 MiB */
    limit("/", "cpu.max", "100000 100000\n");
    struct sysres r = read_tree();
    assert_true(r.memory == 48 * MIB);
    assert_int_equal(r.cpus, 1);
}

/* cpu.max's quota over its period, rounded up; "max" limits nothing. */
static void test_cpu_quota(void **state)
{
    tree("/a/b");
    limit("/a/b", "cpu.max", "150000 100000\n");                 /* 1.5 CPUs: 2 */
    assert_int_equal(read_tree().cpus, min_l(machine.cpus, 2));
    limit("/a/b", "cpu.max", "1000 100000\n");                   /* 1% of one: 1 */
    assert_int_equal(read_tree().cpus, 1);
    limit("/a/b", "cpu.max", "max 100000\n");
    limit("/a", "cpu.max", "max 100000\n");
    assert_int_equal(read_tree().cpus, machine.cpus);
}

/* What does not parse limits nothing. */
static void test_garbage(void **state)
{
    tree("/a");
    limit("/a", "memory.max", "12x\n");
    limit("/a", "cpu.max", "abc 100000\n");
    limit("/", "memory.max", "-5\n");
    limit("/", "cpu.max", "100000 0\n");
    struct sysres r = read_tree();
    assert_int_equal(r.cpus, machine.cpus);
    assert_true(r.memory == machine.memory);
}

/* cgroup v1 (a hybrid system: v2 mounted at unified/ without
 * controllers): memory.limit_in_bytes and cpu.cfs_quota_us over
 * cpu.cfs_period_us, of the cgroup and its ancestors. */
static void test_v1(void **state)
{
    tree_with("9:name=systemd:/a/b\n4:memory:/a/b\n2:cpu,cpuacct:/a/b\n3:cpuset:/\n0::/a/b\n",
              false);
    limit_v1("memory", "/a/b", "memory.limit_in_bytes", "9223372036854771712\n");  /* unlimited */
    limit_v1("memory", "/a", "memory.limit_in_bytes", "67108864\n");
    limit_v1("cpu,cpuacct", "/a/b", "cpu.cfs_quota_us", "-1\n");
    limit_v1("cpu,cpuacct", "/a", "cpu.cfs_quota_us", "150000\n");
    limit_v1("cpu,cpuacct", "/a", "cpu.cfs_period_us", "100000\n");
    struct sysres r = read_tree();
    assert_true(r.memory == 64 * MIB);
    assert_int_equal(r.cpus, min_l(machine.cpus, 2));
    /* a quota without its period, or "-1" alone: no limit */
    tree_with("1:cpu:/c\n", false);
    limit_v1("cpu", "/c", "cpu.cfs_quota_us", "100000\n");
    assert_int_equal(read_tree().cpus, machine.cpus);
    limit_v1("cpu", "/c", "cpu.cfs_period_us", "100000\n");
    assert_int_equal(read_tree().cpus, 1);
    /* "cpuacct" or "cpuset" alone is not the cpu controller */
    tree_with("1:cpuacct:/d\n2:cpuset:/d\n", false);
    limit_v1("cpuacct", "/d", "cpu.cfs_quota_us", "100000\n");
    limit_v1("cpuacct", "/d", "cpu.cfs_period_us", "100000\n");
    struct sysres none = {0, 0};
    assert_int_equal(sysres_read(root, self, &none), -1);
    assert_int_equal(none.cpus, machine.cpus);
}

/* No hierarchy that can limit (only named ones and other controllers):
 * -1, the machine's figures. */
static void test_no_hierarchy(void **state)
{
    struct sysres r = {0, 0};
    tree_with("9:name=systemd:/a\n8:pids:/a\n", false);
    assert_int_equal(sysres_read(root, self, &r), -1);
    assert_int_equal(r.cpus, machine.cpus);
    assert_true(r.memory == machine.memory);
}

/* The default number of checks at once from cores and memory. */
static void test_workers_within(void **state)
{
    assert_int_equal(conf_workers_within(2, 24 * 1024 * MIB, 512 * MIB), 6);   /* 2 x cores + 2 */
    assert_int_equal(conf_workers_within(2, 4 * 1024 * MIB, 512 * MIB), 4);    /* half of 4 GiB */
    assert_int_equal(conf_workers_within(2, 1024 * MIB, 512 * MIB), 1);
    assert_int_equal(conf_workers_within(2, 100 * MIB, 512 * MIB), 1);         /* at least 1 */
    assert_int_equal(conf_workers_within(2, 0, 512 * MIB), 6);                 /* memory unknown */
    assert_int_equal(conf_workers_within(1, 24 * 1024 * MIB, 512 * MIB), 4);
    assert_int_equal(conf_workers_within(40, 1024 * 1024 * MIB, 512 * MIB), 64);   /* at most 64 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machine),
        cmocka_unit_test(test_memory_by_ancestor),
        cmocka_unit_test(test_container_root),
        cmocka_unit_test(test_cpu_quota),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_no_hierarchy),
        cmocka_unit_test(test_workers_within),
    };
    return cmocka_run_group_tests_name("unit-sysres", tests, group_setup, group_teardown);
}
