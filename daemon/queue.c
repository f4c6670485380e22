/* queue.c - the scheduler's in-memory index of queued jobs (see queue.h).
 *
 * Design notes: each class is a GSequence (a balanced tree) sorted by the
 * deadline key, so insert, remove and head are O(log n); an id -> node hash
 * finds a job to update or remove; an order -> set-of-nodes hash finds the
 * siblings of an order (consecutive printing).  Classes are never freed
 * while the queue lives: there are only as many as distinct (media,
 * colour, duplex, pin) combinations ever queued, a handful in practice.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "job.h"
#include "log.h"
#include "queue.h"
#include "util.h"

struct qnode {
    struct qjob qj;
    size_t cls;
    GSequenceIter *it;
};

struct cls {
    struct qclass c;
    GSequence *seq;
};

struct queue {
    GPtrArray *classes;          /* struct cls * */
    GHashTable *by_id;           /* int64 id -> struct qnode * (owned) */
    GHashTable *by_order;        /* order -> GHashTable set of qnode * */
};

bool qjob_before(const struct qjob *a, const struct qjob *b)
{
    if (a->due != b->due)
        return a->due < b->due;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->id < b->id;
}

static gint node_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    const struct qjob *x = a, *y = b;   /* qj is the node's first member */
    (void)unused;
    if (x->id == y->id)
        return 0;
    return qjob_before(x, y) ? -1 : 1;
}

static void node_free(gpointer p)
{
    g_free(p);
}

struct queue *queue_new(void)
{
    struct queue *q = g_new0(struct queue, 1);
    q->classes = g_ptr_array_new();
    q->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, node_free);
    q->by_order = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)g_hash_table_unref);
    return q;
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    for (guint i = 0; i < q->classes->len; i++) {
        struct cls *c = g_ptr_array_index(q->classes, i);
        g_sequence_free(c->seq);
        g_free(c);
    }
    g_ptr_array_free(q->classes, TRUE);
    g_hash_table_destroy(q->by_order);
    g_hash_table_destroy(q->by_id);
    g_free(q);
}

static size_t class_for(struct queue *q, const struct job *j)
{
    struct qclass want = {0};
    xstrlcpy(want.media, j->media, sizeof want.media);
    want.color = strcmp(j->color, "color") == 0;
    want.duplex = strcmp(j->sides, "one-sided") != 0;
    xstrlcpy(want.pinned, j->printer, sizeof want.pinned);
    for (guint i = 0; i < q->classes->len; i++) {
        struct cls *c = g_ptr_array_index(q->classes, i);
        if (c->c.color == want.color && c->c.duplex == want.duplex &&
            strcmp(c->c.media, want.media) == 0 && strcmp(c->c.pinned, want.pinned) == 0)
            return i;
    }
    struct cls *c = g_new0(struct cls, 1);
    c->c = want;
    c->seq = g_sequence_new(NULL);
    g_ptr_array_add(q->classes, c);
    return q->classes->len - 1;
}

static void order_link(struct queue *q, struct qnode *n)
{
    GHashTable *set = g_hash_table_lookup(q->by_order, n->qj.order);
    if (!set) {
        set = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_insert(q->by_order, g_strdup(n->qj.order), set);
    }
    g_hash_table_add(set, n);
}

static void order_unlink(struct queue *q, struct qnode *n)
{
    GHashTable *set = g_hash_table_lookup(q->by_order, n->qj.order);
    if (!set)
        return;
    g_hash_table_remove(set, n);
    if (g_hash_table_size(set) == 0)
        g_hash_table_remove(q->by_order, n->qj.order);
}

void queue_remove(struct queue *q, int64_t id)
{
    struct qnode *n = g_hash_table_lookup(q->by_id, &id);
    if (!n)
        return;
    g_sequence_remove(n->it);
    order_unlink(q, n);
    g_hash_table_remove(q->by_id, &id);   /* frees n */
}

void queue_update(struct queue *q, const struct job *j)
{
    if (j->state != JOB_STATE_QUEUED || !j->document_present) {
        queue_remove(q, j->id);
        return;
    }
    const struct qjob *old = queue_get(q, j->id);
    int64_t since = old ? old->queued_ms : mono_ms();
    queue_remove(q, j->id);
    struct qnode *n = g_new0(struct qnode, 1);
    n->qj.queued_ms = since;
    n->qj.id = j->id;
    n->qj.due = j->due;
    n->qj.priority = j->priority;
    n->qj.pages = (int64_t)(j->pages > 0 ? j->pages : 1) * (j->copies > 0 ? j->copies : 1);
    xstrlcpy(n->qj.order, j->order, sizeof n->qj.order);
    n->cls = class_for(q, j);
    struct cls *c = g_ptr_array_index(q->classes, n->cls);
    n->qj.cls = &c->c;
    n->it = g_sequence_insert_sorted(c->seq, n, node_cmp, NULL);
    g_hash_table_insert(q->by_id, &n->qj.id, n);
    order_link(q, n);
}

size_t queue_count(const struct queue *q)
{
    return g_hash_table_size(q->by_id);
}

const struct qjob *queue_get(const struct queue *q, int64_t id)
{
    struct qnode *n = g_hash_table_lookup(q->by_id, &id);
    return n ? &n->qj : NULL;
}

size_t queue_nclasses(const struct queue *q)
{
    return q->classes->len;
}

const struct qclass *queue_class(const struct queue *q, size_t i)
{
    struct cls *c = g_ptr_array_index(q->classes, i);
    return &c->c;
}

size_t queue_class_count(const struct queue *q, size_t i)
{
    struct cls *c = g_ptr_array_index(q->classes, i);
    return (size_t)g_sequence_get_length(c->seq);
}

const struct qjob *queue_class_nth(const struct queue *q, size_t i, size_t k)
{
    struct cls *c = g_ptr_array_index(q->classes, i);
    GSequenceIter *it = g_sequence_get_begin_iter(c->seq);
    for (size_t n = 0; n < k && !g_sequence_iter_is_end(it); n++)
        it = g_sequence_iter_next(it);
    if (g_sequence_iter_is_end(it))
        return NULL;
    return g_sequence_get(it);
}

struct order_walk {
    int (*fn)(const struct qjob *, void *);
    void *arg;
    int stop;
};

void queue_each_of_order(const struct queue *q, const char *order,
                         int (*fn)(const struct qjob *qj, void *arg), void *arg)
{
    GHashTable *set = g_hash_table_lookup(q->by_order, order);
    if (!set)
        return;
    GHashTableIter hi;
    gpointer key;
    g_hash_table_iter_init(&hi, set);
    while (g_hash_table_iter_next(&hi, &key, NULL)) {
        struct qnode *n = key;
        if (fn(&n->qj, arg))
            return;
    }
}

void queue_each(const struct queue *q, int (*fn)(const struct qjob *qj, void *arg), void *arg)
{
    guint nc = q->classes->len;
    GSequenceIter **its = g_new(GSequenceIter *, nc ? nc : 1);
    for (guint i = 0; i < nc; i++) {
        struct cls *c = g_ptr_array_index(q->classes, i);
        its[i] = g_sequence_get_begin_iter(c->seq);
    }
    for (;;) {
        guint best = nc;
        const struct qjob *bq = NULL;
        for (guint i = 0; i < nc; i++) {
            if (g_sequence_iter_is_end(its[i]))
                continue;
            const struct qjob *x = g_sequence_get(its[i]);
            if (!bq || qjob_before(x, bq)) {
                bq = x;
                best = i;
            }
        }
        if (!bq || fn(bq, arg))
            break;
        its[best] = g_sequence_iter_next(its[best]);
    }
    g_free(its);
}
