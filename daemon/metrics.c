/* metrics.c - Prometheus text exposition (see metrics.h).
 *
 * Design notes: counters live in RAM since start (Prometheus handles
 * resets); gauges are read from the store at scrape time, so they cannot
 * drift from the truth, each by one COUNT query answered from an index
 * (never by loading rows).  Histograms use fixed buckets chosen for what they
 * measure: preflight in milliseconds to tens of seconds, dispatch latency
 * in milliseconds (the next free slot) to hours (a printer down).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "job.h"
#include "metrics.h"
#include "retention.h"
#include "sched.h"
#include "store.h"
#include "util.h"

#define MAX_REASONS 48

struct hist {
    const double *bounds;
    int nb;
    uint64_t counts[16];     /* per bound, non-cumulative; [nb] = +Inf */
    double sum;
    uint64_t n;
};

static const double pf_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double dl_bounds[] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2, 10, 60, 300, 1800, 3600, 14400};
static struct hist pf_hist = {pf_bounds, sizeof pf_bounds / sizeof pf_bounds[0]};
static struct hist dl_hist = {dl_bounds, sizeof dl_bounds / sizeof dl_bounds[0]};
static uint64_t bytes_received;
static struct { char reason[40]; uint64_t n; } rejected[MAX_REASONS];

static void hist_add(struct hist *h, double v)
{
    int i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

void metrics_bytes_received(uint64_t n)
{
    bytes_received += n;
}

void metrics_upload_rejected(const char *reason)
{
    for (int i = 0; i < MAX_REASONS; i++) {
        if (!rejected[i].reason[0])
            xstrlcpy(rejected[i].reason, reason, sizeof rejected[i].reason);
        if (strcmp(rejected[i].reason, reason) == 0) {
            rejected[i].n++;
            return;
        }
    }
}

void metrics_preflight_ms(int64_t ms)
{
    hist_add(&pf_hist, (double)ms / 1000.0);
}

void metrics_dispatch_latency(int64_t ms)
{
    hist_add(&dl_hist, (double)ms / 1000.0);
}

/* A growing text buffer. */
struct buf { char *p; size_t len, cap; };

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
}

static void hist_render(struct buf *b, const char *name, const char *help, const struct hist *h)
{
    uint64_t cum = 0;
    out(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < h->nb; i++) {
        cum += h->counts[i];
        out(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->nb];
    out(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
        (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

char *metrics_render(void)
{
    struct buf b = {malloc(4096), 0, 4096};
    int64_t counts[JOB_STATE_COUNT] = {0};

    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    store_count_states(D.store, counts);
    out(&b, "# HELP copees_jobs Jobs in the store, by state.\n# TYPE copees_jobs gauge\n");
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        out(&b, "copees_jobs{state=\"%s\"} %lld\n", job_state_name(s), (long long)counts[s]);
    out(&b, "# HELP copees_upload_bytes_total Bytes of documents received.\n"
            "# TYPE copees_upload_bytes_total counter\ncopees_upload_bytes_total %llu\n",
        (unsigned long long)bytes_received);
    out(&b, "# HELP copees_uploads_rejected_total Uploads refused, by reason.\n"
            "# TYPE copees_uploads_rejected_total counter\n");
    for (int i = 0; i < MAX_REASONS && rejected[i].reason[0]; i++)
        out(&b, "copees_uploads_rejected_total{reason=\"%s\"} %llu\n", rejected[i].reason,
            (unsigned long long)rejected[i].n);
    hist_render(&b, "copees_preflight_duration_seconds", "Time to a preflight verdict.", &pf_hist);
    hist_render(&b, "copees_dispatch_latency_seconds",
                "Time from a job being queued to CUPS having it (Create-Job and its document sent).", &dl_hist);
    int64_t present = store_count_present(D.store);
    out(&b, "# HELP copees_documents_present Documents kept in the spool.\n"
            "# TYPE copees_documents_present gauge\ncopees_documents_present %lld\n",
        (long long)(present < 0 ? 0 : present));
    struct store_stats ss;
    store_get_stats(D.store, &ss);
    out(&b, "# HELP copees_store_commits_total Store transactions committed (one may hold "
            "many writes).\n# TYPE copees_store_commits_total counter\n"
            "copees_store_commits_total %llu\n", (unsigned long long)ss.commits);
    out(&b, "# HELP copees_store_writes_total Job rows and events written to the store.\n"
            "# TYPE copees_store_writes_total counter\ncopees_store_writes_total %llu\n",
        (unsigned long long)ss.writes);
    out(&b, "# HELP copees_store_commit_failures_total Store commits that failed (their "
            "writes rolled back).\n# TYPE copees_store_commit_failures_total counter\n"
            "copees_store_commit_failures_total %llu\n", (unsigned long long)ss.commit_failures);
    int64_t next = store_next_retain(D.store, 0), overdue = 0;
    if (next > 0 && next < now_s())
        overdue = now_s() - next;
    out(&b, "# HELP copees_oldest_overdue_document_seconds Age past retain_until of the oldest "
            "document still kept (0 when none is overdue).\n"
            "# TYPE copees_oldest_overdue_document_seconds gauge\n"
            "copees_oldest_overdue_document_seconds %lld\n", (long long)overdue);
    uint64_t sh_done, sh_failed;
    retention_counts(&sh_done, &sh_failed);
    out(&b, "# HELP copees_shreds_total Documents shredded since start, and shreds that failed "
            "(each failure is retried).\n"
            "# TYPE copees_shreds_total counter\n"
            "copees_shreds_total{result=\"done\"} %llu\ncopees_shreds_total{result=\"failed\"} %llu\n",
        (unsigned long long)sh_done, (unsigned long long)sh_failed);
    out(&b, "# HELP copees_cups_up Whether cupsd answered the last operation.\n"
            "# TYPE copees_cups_up gauge\ncopees_cups_up %d\n", sched_cups_ok() ? 1 : 0);
    return b.p;
}
