/* preflight-checks.h - the document checks of the preflight helper: the
 * only code (with the helper's other files) that includes poppler.h.
 * Used by the helper server's children and by the fuzz target. */
#ifndef COPEES_PREFLIGHT_CHECKS_H
#define COPEES_PREFLIGHT_CHECKS_H

#include <stdbool.h>
#include <jansson.h>

struct pfc_opts {
    int max_pages;             /* more pages: too-many-pages, no page is loaded */
    bool render;               /* render every page at 18 dpi: bombs and the colour map */
    bool knobs;                /* honour "%copees-knob:" test markers (COPEES_TEST_KNOBS builds) */
    unsigned long long memory; /* the address-space limit in force (the oom knob's budget) */
    int out_fd;                /* where "pages N" and "oom" lines go at once; -1: nowhere */
};

/* Start poppler, fontconfig and cairo by checking a built-in document
 * (every code path the checks take), and route stderr and GLib's log
 * through the diagnostics counter.  Call once, before any sandbox filter.
 * 0 / -1. */
int pfc_init(void);
/* The whole check of pfc_init's built-in document again, in this process:
 * 0 when it gives the expected findings. */
int pfc_selftest(void);

/* Check the PDF on fd (taken over: closed when done) and return the
 * report (new reference; the stream line "report" carries it), or NULL
 * when no memory was left to make one.  Bad documents make findings, not
 * errors. */
json_t *pfc_check(int fd, const struct pfc_opts *o);

/* Write "report JSON\n" to fd with write(2): 0 / -1. */
int pfc_report_write(int fd, const json_t *report);

/* Forget the diagnostics counted so far (a fresh child). */
void pfc_diag_reset(void);

#endif
