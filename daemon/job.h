/* job.h - a print job as the daemon and the store see it, its states, its
 * JSON, and the one state-change function. */
#ifndef COPEES_JOB_H
#define COPEES_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

struct store;

enum job_state {
    JOB_STATE_PREFLIGHT, JOB_STATE_REJECTED, JOB_STATE_HELD, JOB_STATE_QUEUED,
    JOB_STATE_SENT, JOB_STATE_PRINTING, JOB_STATE_PRINTED, JOB_STATE_FAILED,
    JOB_STATE_CANCELED, JOB_STATE_COUNT
};

#define JOB_ORDER_MAX 64
#define JOB_NAME_MAX 40          /* spool file name: 32 hex + NUL fits */

struct job {
    int64_t id;                       /* 0 until inserted */
    char order[JOB_ORDER_MAX + 1];    /* customer data: never logged */
    char idem_key[129];               /* Idempotency-Key, "" = none */
    enum job_state state;
    char reasons[256];                /* comma-separated keywords, "" = none */
    int pages;                        /* 0 until preflighted */
    int pages_printed;
    int copies;
    char sides[24];                   /* one-sided | two-sided-long-edge | two-sided-short-edge */
    char color[16];                   /* monochrome | color */
    char media[64];                   /* PWG self-describing name */
    int64_t due;                      /* epoch s */
    int priority;                     /* 1..100 */
    bool hold;                        /* ticket's hold=true */
    char printer[64];                 /* config printer name, "" = unrouted */
    int cups_job_id;                  /* 0 = none */
    int reprints;
    int64_t bytes;
    char sha256[65];                  /* lowercase hex */
    char *preflight;                  /* preflight report JSON text (malloc'd) or NULL */
    int64_t created_at, printed_at, delivered_at, retain_until, shredded_at; /* epoch s, 0 = null */
    char complaint[8];                /* "" = null, "open", "closed" */
    int64_t complaint_opened_at;      /* epoch s, 0 = null */
    bool document_present;
    char doc_name[JOB_NAME_MAX];      /* random file name in spool jobs/ */
};

/* Name of a state ("queued"); state by name or -1. */
const char *job_state_name(enum job_state s);
int job_state_from_name(const char *name);
/* Printed, rejected, failed or canceled. */
bool job_state_is_completed(enum job_state s);

/* Initialise *j with the ticket defaults (copies 1, one-sided, monochrome,
 * priority 50, document present). */
void job_init(struct job *j);
/* Free what *j owns (the preflight text); *j may be reused after job_init. */
void job_clear(struct job *j);
/* Deep copy: dst gets its own preflight text. */
void job_copy(struct job *dst, const struct job *src);

/* Reason keywords: add (no duplicate) / remove / test. */
void job_reason_add(struct job *j, const char *kw);
void job_reason_remove(struct job *j, const char *kw);
bool job_reason_has(const struct job *j, const char *kw);

/* The job as the API's JSON object (new reference). */
json_t *job_to_json(const struct job *j);

/* Retention rules (seconds; set from the config at start and reload). */
struct retention_rules {
    int64_t complaint_window, complaint_max, max_retention;
};
void job_set_retention_rules(const struct retention_rules *r);
/* When j's document is due for shredding under the rules: an open
 * complaint holds it until complaint_opened_at + complaint_max; else a
 * printed job keeps it until max(printed_at, delivered_at) +
 * complaint_window, and no document outlives created_at + max_retention.
 * 0 while in preflight (no deadline yet), or when no rules were set. */
int64_t job_retention_deadline(const struct job *j);

/* The one state-change function: sets j->state (and retain_until by the
 * retention rules while the document is present), saves the whole row and
 * appends an audit event "state" with "<old> -> <new>: <detail>" in one
 * transaction.  uid is the actor (-1 = the daemon).  0 / -1. */
int job_set_state(struct store *st, struct job *j, enum job_state s, int64_t uid,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
