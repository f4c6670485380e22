/* cupslink.h - the door to CUPS.  cupslink.c is the only file that includes
 * libcups headers.  libcups calls block, so they run on one thread owning
 * its own http_t; the event loop hands it operations and gets each one back,
 * completed, through iopool_post() (the done callback runs on the loop).
 * When cupsd is unreachable an operation fails promptly with ok = false and
 * the loop goes on; the link reconnects on the next operation.
 */
#ifndef COPEES_CUPSLINK_H
#define COPEES_CUPSLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum cups_op_kind {
    CUPS_OP_SUBMIT,      /* create a job and send one document */
    CUPS_OP_JOB_STATE,   /* Get-Job-Attributes of one job */
    CUPS_OP_PURGE,       /* Cancel-Job with purge-job=true */
    CUPS_OP_PRINTER,     /* Get-Printer-Attributes of one queue */
    CUPS_OP_LIST,        /* our jobs in a queue: job-name starting with job_name */
    CUPS_OP_SETTINGS,    /* cupsd.conf settings: does CUPS keep job files? */
    CUPS_OP_PROBE,       /* is the device behind a queue answering? (device_uri) */
};

/* What CUPS says of a job, mapped to the IPP job-state enum values. */
enum cups_jstate {
    CUPS_J_UNKNOWN = 0, CUPS_J_PENDING = 3, CUPS_J_HELD = 4, CUPS_J_PROCESSING = 5,
    CUPS_J_STOPPED = 6, CUPS_J_CANCELED = 7, CUPS_J_ABORTED = 8, CUPS_J_COMPLETED = 9
};

/* Whether CUPS holds a job without its document: pending or held, with
 * job-incoming (still to come) or number-of-documents 0 (a restarted
 * cupsd restores so a job it was receiving or printing, without the
 * reason).  documents -1: not said, taken as present (a job adopted
 * wrongly waits; one purged wrongly could print twice).  The settle, the
 * start-up listing and the tracking of sent jobs all ask this. */
static inline bool cups_job_docless(enum cups_jstate st, int documents, const char *reasons)
{
    return (st == CUPS_J_PENDING || st == CUPS_J_HELD) &&
           (documents == 0 || strstr(reasons, "job-incoming") != NULL);
}

/* One CUPS job found by LIST. */
struct cups_found {
    int cups_job_id;
    int64_t job_id;            /* ours, parsed from the job-name */
    enum cups_jstate jstate;
    int documents;             /* number-of-documents, -1 when not given */
    bool started;              /* time-at-processing set: CUPS had begun printing it */
    bool cover;                /* a cover sheet job (job-name ends in -cover) */
    char jreasons[128];
};

struct cups_op {
    enum cups_op_kind kind;
    int64_t job_id;            /* ours, for the caller's bookkeeping */
    char queue[128];           /* CUPS queue name */
    /* SUBMIT in */
    char job_name[64];         /* copees-<instance>-<id>; LIST: the prefix; JOB_STATE: when
                                * set, a job of another name counts as not found */
    int doc_fd;                /* open O_RDONLY document; cupslink closes it */
    int cover_fd;              /* optional cover sheet, or -1: sent as its own
                                * CUPS job "<job_name>-cover" just before */
    int copies;
    char media[64], sides[24], color[16];
    /* SUBMIT out; JOB_STATE / PURGE in */
    int cups_job_id;
    int cover_job_id;          /* SUBMIT out: the cover sheet's CUPS job, 0 = none */
    /* SUBMIT out: CUPS refused the job for what it asks (an IPP client
     * error such as attributes-or-values-not-supported): retrying cannot
     * help.  substituted: attributes CUPS said it ignored or changed
     * (comma-separated; the job was created). */
    bool refused;
    /* SUBMIT in: called on the loop once CUPS has created the job
     * (cups_job_id set) and before its document goes: it returns whether
     * the hand-over is durably recorded.  false: the created job is
     * canceled and the op fails, as if CUPS had refused it for now.  The
     * link thread waits for the answer (or for cupslink_stop).  NULL: no
     * record. */
    bool (*created)(struct cups_op *op);
    /* SUBMIT out: the job's CUPS job (cups_job_id) certainly never got
     * its whole document (its record was refused, so nothing was sent;
     * or Send-Document failed without a stall before the end) */
    bool doc_unsent;
    const char *pause_point;   /* JOB_STATE in: test builds may pause there (fault_pause) */
    char substituted[128];
    /* LIST out (malloc'd, freed by cups_op_free) */
    struct cups_found *found;
    size_t nfound;
    /* JOB_STATE out */
    enum cups_jstate jstate;
    char jreasons[256];        /* job-state-reasons, comma-separated */
    int impressions;           /* job-impressions-completed (pages printed) */
    bool started;              /* time-at-processing set: CUPS had begun printing it */
    int jdocuments;            /* number-of-documents, -1 when not given */
    /* PRINTER out */
    int pstate;                /* printer-state: 3 idle, 4 processing, 5 stopped */
    char preasons[256];        /* printer-state-reasons, comma-separated */
    bool accepting;            /* printer-is-accepting-jobs */
    char pmessage[256];        /* printer-state-message */
    char media_sup[2048];      /* media-supported, comma-separated */
    char sides_sup[128];       /* sides-supported */
    char color_sup[128];       /* print-color-mode-supported */
    char device_uri[512];      /* PRINTER out (root/admins only), PROBE in */
    /* SETTINGS out: PreserveJobFiles is on (files of finished jobs are kept) */
    bool keeps_files;
    char keeps_setting[64];    /* its value as cupsd.conf has it */
    bool no_history;           /* PreserveJobHistory No: finished jobs forgotten at once */
    /* every op out */
    bool ok;                   /* the operation succeeded */
    bool unreachable;          /* cupsd could not be reached */
    char error[256];           /* why not, for logs (no customer data) */
    /* completion, called on the loop thread; it owns op afterwards */
    void (*done)(struct cups_op *op);
    void *arg;
    struct cups_op *next;      /* cupslink's queue link */
};

/* Start the link thread.  server: cupsd's domain socket path or
 * "host:port", NULL for libcups's default.  user: requesting-user-name.
 * 0 / -1. */
int cupslink_start(const char *server, const char *user);
/* Queue op (caller allocated; it is handed back to op->done). */
void cupslink_submit(struct cups_op *op);
/* Stop the thread: operations still queued complete with ok = false. */
void cupslink_stop(void);
/* New zeroed op of the kind (doc_fd = -1); never NULL. */
struct cups_op *cups_op_new(enum cups_op_kind kind);
void cups_op_free(struct cups_op *op);

#endif
