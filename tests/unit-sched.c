/* unit-sched.c - the scheduler's decisions on a known state: the queued-job
 * index (queue.c), the choice of job and printer (sched.c: capability,
 * deadline order, soonest finish, a full printer, order affinity, pins,
 * unavailable printers) and the cover sheet (cover.c).  The printers'
 * CUPS state is set by hand: this is the pure decision, the integration
 * tests (dispatch-*.sh) run it against real cupsd and ippeveprinter. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "cover.h"
#include "daemon.h"
#include "job.h"
#include "queue.h"
#include "sched-int.h"
#include "sched.h"
#include "util.h"

struct daemon D;
int daemon_busy;

static char conf_path[64];

static const char conf_text[] =
    "[daemon]\nspool_dir=/nonexistent/s\nstate_dir=/nonexistent/t\n"
    "[cups]\npoll_interval=1s\n"
    "[printer mono]\nmedia=iso_a4_210x297mm\nppm=30\n"
    "[printer fast]\nmedia=iso_a4_210x297mm\nppm=60\n"
    "[printer colour]\nmedia=iso_a4_210x297mm,iso_a3_297x420mm\ncolor=true\nduplex=true\nppm=20\n";

static int setup(void **state)
{
    (void)state;
    strcpy(conf_path, "/tmp/unit-sched.XXXXXX");
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, conf_text, sizeof conf_text - 1), (ssize_t)(sizeof conf_text - 1));
    close(fd);
    char *err = NULL;
    D.conf = conf_load(conf_path, &err);
    if (!D.conf)
        fail_msg("conf: %s", err);
    sched_nprinters = D.conf->nprinters;
    sched_printers = calloc(sched_nprinters, sizeof *sched_printers);
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        p->cp = &D.conf->printers[i];
        xstrlcpy(p->name, p->cp->name, sizeof p->name);
        p->enabled = p->accepting = p->cups_accepting = true;
        p->pstate = 3;
    }
    sched_queue = queue_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    queue_free(sched_queue);
    free(sched_printers);
    conf_free(D.conf);
    unlink(conf_path);
    return 0;
}

/* Reset printers and queue between tests. */
static int reset(void **state)
{
    (void)state;
    queue_free(sched_queue);
    sched_queue = queue_new();
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        p->enabled = p->accepting = p->cups_accepting = true;
        p->pstate = 3;
        p->preasons[0] = '\0';
        p->inflight = 0;
        p->pages_inflight = 0;
        p->last_order[0] = '\0';
        p->blocked_since = 0;
        p->retry_after = 0;
    }
    return 0;
}

static void add(int64_t id, int64_t due, int prio, const char *order, const char *media,
                const char *color, const char *sides, int pages, const char *pin)
{
    struct job j;
    job_init(&j);
    j.id = id;
    j.state = JOB_STATE_QUEUED;
    j.due = due;
    j.priority = prio;
    j.pages = pages;
    j.copies = 1;
    xstrlcpy(j.order, order, sizeof j.order);
    xstrlcpy(j.media, media, sizeof j.media);
    xstrlcpy(j.color, color, sizeof j.color);
    xstrlcpy(j.sides, sides, sizeof j.sides);
    xstrlcpy(j.printer, pin ? pin : "", sizeof j.printer);
    queue_update(sched_queue, &j);
    job_clear(&j);
}

#define A4 "iso_a4_210x297mm"
#define A3 "iso_a3_297x420mm"

static struct printer *P(const char *name)
{
    return printer_find(name);
}

/* The next decision as "id@printer", or "none". */
static const char *next(void)
{
    static char buf[96];
    int64_t id;
    const char *pr;
    if (!sched_peek_decision(&id, &pr))
        return "none";
    snprintf(buf, sizeof buf, "%lld@%s", (long long)id, pr);
    return buf;
}

/* ------------------------------------------------------------ queue */

static int collect(const struct qjob *qj, void *arg)
{
    char *s = arg;
    char one[24];
    snprintf(one, sizeof one, "%s%lld", *s ? "," : "", (long long)qj->id);
    strcat(s, one);
    return 0;
}

static void test_queue_order(void **state)
{
    (void)state;
    add(1, 300, 50, "a", A4, "monochrome", "one-sided", 1, NULL);
    add(2, 100, 50, "b", A4, "monochrome", "one-sided", 1, NULL);
    add(3, 100, 90, "c", A4, "color", "one-sided", 1, NULL);    /* other class */
    add(4, 100, 50, "d", A4, "monochrome", "one-sided", 1, NULL);
    assert_int_equal(queue_count(sched_queue), 4);
    assert_int_equal(queue_nclasses(sched_queue), 2);
    char s[128] = "";
    queue_each(sched_queue, collect, s);
    assert_string_equal(s, "3,2,4,1");        /* due, then priority desc, then id */
    /* an update moves a job; a job leaving queued leaves the index */
    add(1, 50, 50, "a", A4, "monochrome", "one-sided", 1, NULL);
    struct job j;
    job_init(&j);
    j.id = 4;
    j.state = JOB_STATE_HELD;
    queue_update(sched_queue, &j);
    s[0] = '\0';
    queue_each(sched_queue, collect, s);
    assert_string_equal(s, "1,3,2");
    assert_null(queue_get(sched_queue, 4));
    queue_remove(sched_queue, 3);
    assert_int_equal(queue_count(sched_queue), 2);
    assert_int_equal(queue_class_count(sched_queue, 1), 0);
}

static void test_queue_orders_and_pins(void **state)
{
    (void)state;
    add(1, 100, 50, "X", A4, "monochrome", "one-sided", 1, NULL);
    add(2, 100, 50, "X", A4, "color", "one-sided", 1, NULL);
    add(3, 100, 50, "Y", A4, "monochrome", "one-sided", 1, "mono");
    char s[64] = "";
    queue_each_of_order(sched_queue, "X", collect, s);
    assert_true(strcmp(s, "1,2") == 0 || strcmp(s, "2,1") == 0);
    assert_int_equal(queue_nclasses(sched_queue), 3);   /* a pin is its own class */
    assert_string_equal(queue_get(sched_queue, 3)->cls->pinned, "mono");
}

/* ------------------------------------------------------------ decisions */

static void test_capability(void **state)
{
    (void)state;
    add(1, 100, 50, "a", A4, "color", "one-sided", 1, NULL);
    assert_string_equal(next(), "1@colour");
    reset(NULL);
    add(2, 100, 50, "a", A4, "monochrome", "two-sided-long-edge", 1, NULL);
    assert_string_equal(next(), "2@colour");
    reset(NULL);
    add(3, 100, 50, "a", A3, "monochrome", "one-sided", 1, NULL);
    assert_string_equal(next(), "3@colour");
    reset(NULL);
    add(4, 100, 50, "a", "na_letter_8.5x11in", "monochrome", "one-sided", 1, NULL);
    assert_string_equal(next(), "none");      /* nobody has letter */
}

static void test_deadline_order(void **state)
{
    (void)state;
    add(1, 500, 100, "a", A4, "monochrome", "one-sided", 1, NULL);
    add(2, 100, 10, "b", A4, "color", "one-sided", 1, NULL);
    add(3, 100, 20, "c", A4, "monochrome", "one-sided", 1, NULL);
    /* earliest due first (across classes), then priority */
    assert_string_equal(next(), "3@fast");
    queue_remove(sched_queue, 3);
    assert_string_equal(next(), "2@colour");
}

static void test_soonest_finish(void **state)
{
    (void)state;
    add(1, 100, 50, "a", A4, "monochrome", "one-sided", 30, NULL);
    /* idle: fast (60 ppm) finishes 30 pages before mono (30 ppm) */
    assert_string_equal(next(), "1@fast");
    /* fast has 60 pages in flight: 90/60 = 1.5 min > mono's 30/30 = 1 min */
    P("fast")->inflight = 1;
    P("fast")->pages_inflight = 60;
    assert_string_equal(next(), "1@mono");
    /* the colour printer can print it too but is slow: 30/20 = 1.5 min */
    P("mono")->inflight = 1;
    P("mono")->pages_inflight = 30;
    assert_string_equal(next(), "1@fast");   /* 90/60 = 1.5 ties, first listed wins over colour */
}

static void test_full_printer_waits(void **state)
{
    (void)state;
    add(1, 100, 50, "a", A4, "monochrome", "one-sided", 1, NULL);
    P("fast")->inflight = 2;                  /* full, but still the soonest */
    P("fast")->pages_inflight = 2;
    P("mono")->inflight = 1;
    P("mono")->pages_inflight = 30;
    P("colour")->inflight = 1;
    P("colour")->pages_inflight = 60;
    assert_string_equal(next(), "none");      /* it waits for fast */
    add(2, 200, 50, "b", A4, "color", "one-sided", 1, NULL);
    assert_string_equal(next(), "2@colour");  /* another class is not blocked */
    P("fast")->inflight = 1;
    assert_string_equal(next(), "1@fast");
}

static void test_order_affinity(void **state)
{
    (void)state;
    add(1, 100, 50, "X", A4, "monochrome", "one-sided", 1, NULL);
    add(2, 100, 50, "Y", A4, "monochrome", "one-sided", 1, NULL);
    add(3, 900, 50, "X", A4, "monochrome", "one-sided", 1, NULL);
    /* mono prints order X: X's next job goes there, even before Y's */
    xstrlcpy(P("mono")->last_order, "X", sizeof P("mono")->last_order);
    P("mono")->inflight = 1;
    P("mono")->pages_inflight = 1;
    assert_string_equal(next(), "1@mono");
    queue_remove(sched_queue, 1);
    assert_string_equal(next(), "3@mono");
    queue_remove(sched_queue, 3);
    assert_string_equal(next(), "2@fast");
    /* when mono is full, X's job waits for it rather than split the order */
    add(4, 50, 50, "X", A4, "monochrome", "one-sided", 1, NULL);
    P("mono")->inflight = 2;
    assert_string_equal(next(), "2@fast");
}

static void test_pin(void **state)
{
    (void)state;
    add(1, 100, 50, "a", A4, "monochrome", "one-sided", 1, "colour");
    assert_string_equal(next(), "1@colour");
    P("colour")->enabled = false;
    assert_string_equal(next(), "none");
}

static void test_unavailable(void **state)
{
    (void)state;
    add(1, 100, 50, "a", A4, "monochrome", "one-sided", 1, NULL);
    P("fast")->enabled = false;
    assert_string_equal(next(), "1@mono");
    P("mono")->accepting = false;
    assert_string_equal(next(), "1@colour");
    P("colour")->pstate = 5;                        /* stopped in CUPS */
    assert_string_equal(next(), "none");
    reset(NULL);
    add(1, 100, 50, "a", A4, "monochrome", "one-sided", 1, NULL);
    strcpy(P("fast")->preasons, "media-empty-error");
    assert_string_equal(next(), "1@mono");
    strcpy(P("fast")->preasons, "toner-low-warning");  /* a warning still prints */
    assert_string_equal(next(), "1@fast");
    /* connecting-to-device counts only after five polls */
    strcpy(P("fast")->preasons, "connecting-to-device");
    P("fast")->blocked_since = mono_ms();
    assert_string_equal(next(), "1@fast");
    P("fast")->blocked_since = mono_ms() - 5 * D.conf->poll_interval_ms;
    assert_string_equal(next(), "1@mono");
}

/* ------------------------------------------------------------ cover */

static void test_cover(void **state)
{
    (void)state;
    struct job j;
    job_init(&j);
    j.id = 4242;
    j.copies = 3;
    j.pages = 12;
    j.due = 1795600800;
    xstrlcpy(j.order, "ORD-SECRET-77", sizeof j.order);
    xstrlcpy(j.media, A3, sizeof j.media);
    char buf[4096];
    int n = cover_sheet_render(&j, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "(copees job 4242)"));
    assert_non_null(strstr(buf, "Copies: 3    Pages: 12"));
    assert_null(strstr(buf, "ORD-SECRET"));
    assert_non_null(strstr(buf, "/MediaBox [0 0 841.89 1190.55]"));
    /* every xref offset points at its object */
    char *x = strstr(buf, "xref\n0 6\n");
    assert_non_null(x);
    char *line = x + strlen("xref\n0 6\n") + 20;
    for (int i = 1; i <= 5; i++, line += 20) {
        long off = strtol(line, NULL, 10);
        char want[16];
        snprintf(want, sizeof want, "%d 0 obj", i);
        assert_memory_equal(buf + off, want, strlen(want));
    }
    char *sx = strstr(buf, "startxref\n");
    assert_int_equal(strtol(sx + 10, NULL, 10), x - buf);
    double w, h;
    assert_int_equal(cover_media_points("na_letter_8.5x11in", &w, &h), 0);
    assert_true(w > 611.9 && w < 612.1 && h > 791.9 && h < 792.1);
    assert_int_equal(cover_media_points("custom", &w, &h), -1);
    assert_true(cover_sheet_render(&j, buf, 100) < 0);
    job_clear(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_queue_order, reset),
        cmocka_unit_test_setup(test_queue_orders_and_pins, reset),
        cmocka_unit_test_setup(test_capability, reset),
        cmocka_unit_test_setup(test_deadline_order, reset),
        cmocka_unit_test_setup(test_soonest_finish, reset),
        cmocka_unit_test_setup(test_full_printer_waits, reset),
        cmocka_unit_test_setup(test_order_affinity, reset),
        cmocka_unit_test_setup(test_pin, reset),
        cmocka_unit_test_setup(test_unavailable, reset),
        cmocka_unit_test(test_cover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
