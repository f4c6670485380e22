/* conf.h - copeesd.conf: every section and key of the design.
 *
 * The file is INI read with GKeyFile.  Every key is recognised from the
 * first version on, even where its feature comes later; an unknown section
 * or key, or a bad value, is refused naming the file, the key and the line.
 * Durations are kept in milliseconds, sizes in bytes.
 */
#ifndef COPEES_CONF_H
#define COPEES_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "pfcodes.h"

struct conf_printer {
    char *name;           /* from "[printer NAME]" */
    char *queue;          /* CUPS queue; default: the printer's name */
    char **media;         /* NULL-terminated list of PWG media names; default {default_media} */
    bool color;           /* default false */
    bool duplex;          /* default false */
    int ppm;              /* pages per minute, default 20 */
    int max_inflight;     /* default 2 */
    bool cover_sheet;     /* default false */
};

struct conf {
    char *path;                 /* file read, or NULL for embedded defaults */
    /* [daemon] */
    char *spool_dir;            /* /var/spool/copees */
    char *state_dir;            /* /var/lib/copees */
    char *socket;               /* COPEES_SOCKET_DEFAULT */
    mode_t socket_mode;         /* 0660 (octal in the file) */
    char *socket_group;         /* NULL = unset */
    char *submit_group;         /* NULL = unset */
    char *admin_group;          /* NULL = unset */
    uint64_t max_upload;        /* 256M */
    uint64_t min_free;          /* 1G */
    char *default_media;        /* iso_a4_210x297mm */
    int64_t default_due_ms;     /* 4h */
    int64_t delivery_lead_ms;   /* 30m */
    /* [retention] */
    int64_t complaint_window_ms;  /* 12h */
    int64_t complaint_max_ms;     /* 7d */
    int64_t max_retention_ms;     /* 72h */
    int64_t history_retention_ms; /* 90d */
    int shred_passes;             /* 1 (1..10) */
    /* [preflight] */
    int workers;                /* default: conf_default_workers() */
    int64_t timeout_ms;         /* 30s */
    int64_t page_time_ms;       /* 50ms */
    uint64_t memory;            /* 512M */
    int max_pages;              /* 2000 */
    bool reject[PF_CODE_COUNT]; /* on_<code>: true = reject; defaults from pf_codes[] */
    /* [cups] */
    char *cups_server;          /* NULL = libcups's default */
    int64_t poll_interval_ms;   /* 2s */
    /* [tls] */
    char *tls_listen, *tls_certificate, *tls_key, *tls_client_ca;  /* NULL = unset */
    char **tls_submit_cn, **tls_admin_cn;   /* NULL-terminated lists, never NULL */
    /* [printer NAME] */
    struct conf_printer *printers;
    size_t nprinters;
};

/* Read path (NULL: embedded defaults only).  On error returns NULL and sets
 * *err (caller frees) to "FILE:LINE: [section] key: what is wrong" (LINE
 * omitted when unknown). */
struct conf *conf_load(const char *path, char **err);
/* [preflight] workers when the file does not set it: twice the cores
 * plus two, at most 64, and no more checks than half the memory holds at
 * `memory` each (at least 1); cores and memory as this process may use
 * them (sysres.h: affinity, cgroup limits). */
int conf_default_workers(uint64_t memory);
/* The same for cpus cores and total bytes of memory (0: unknown). */
int conf_workers_within(long cpus, uint64_t total, uint64_t memory);
void conf_free(struct conf *c);
/* The printer named name, or NULL (borrowed). */
const struct conf_printer *conf_printer_find(const struct conf *c, const char *name);

#endif
