/* preflight-verdict.h - from the helper's findings to the job's verdict:
 * the checks that need the ticket or the printers (media, mixed sizes,
 * page size limits, colour on a monochrome ticket) and the policy
 * ([preflight] on_<code>).  Pure: no processes, no I/O but log lines. */
#ifndef COPEES_PREFLIGHT_VERDICT_H
#define COPEES_PREFLIGHT_VERDICT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

struct conf;

#define PF_MEDIA_TOLERANCE_MM 2.0   /* a page "is" a media within this, either orientation */
#define PF_TOO_LARGE_FACTOR 1.25    /* over this times every printer's media: too large */
#define PF_MIN_SIDE_MM 20.0         /* under this on a side: too small */

/* What the ticket says that preflight looks at. */
struct pf_ticket {
    char media[64];            /* PWG self-describing name */
    bool color;                /* true: colour ordered; false: monochrome */
};

/* The size of a PWG self-describing media name ("iso_a4_210x297mm",
 * "na_letter_8.5x11in") in points: 0 / -1 when it names no size. */
int pf_media_size_pt(const char *pwg, double *w, double *h);

/* The job's "preflight" object (new reference): pages, page_sizes,
 * color_pages, color_page_list, warnings, reasons.  report is the helper's
 * report, or NULL when there is none; failure, when not NULL, is the code
 * of why the check did not finish (preflight-timeout, -crashed,
 * -too-complex), and pages the count the helper announced before (0:
 * none).  *reject says whether the document is refused under c's policy. */
json_t *pf_verdict_build(int64_t job_id, const json_t *report, const char *failure, int pages,
                         const struct pf_ticket *t, const struct conf *c, bool *reject);

#endif
