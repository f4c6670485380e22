/* pfcodes.h - the preflight finding codes of the design, shared by the
 * helper (which reports findings) and the daemon (which turns each finding
 * into a reject reason or a warning according to [preflight] on_<code>).
 * The codes marked fixed reject whatever on_<code> says: the document could
 * not be read or was not checked to the end (docs/preflight.md). */
#ifndef COPEES_PFCODES_H
#define COPEES_PFCODES_H

#include <stdbool.h>

enum pf_code {
    PF_NOT_A_PDF, PF_ENCRYPTED, PF_PRINT_NOT_PERMITTED, PF_NO_PAGES,
    PF_PAGE_MISSING, PF_TOO_MANY_PAGES, PF_PAGE_TOO_LARGE, PF_PAGE_TOO_SMALL,
    PF_PREFLIGHT_TIMEOUT, PF_PREFLIGHT_CRASHED, PF_PREFLIGHT_TOO_COMPLEX,
    PF_MEDIA_MISMATCH, PF_MIXED_PAGE_SIZES, PF_FONTS_NOT_EMBEDDED,
    PF_JAVASCRIPT, PF_LAUNCH_ACTION, PF_ATTACHMENTS, PF_COLOR_ON_MONOCHROME,
    PF_CODE_COUNT
};

struct pf_code_info {
    const char *name;        /* "not-a-pdf" */
    bool reject;             /* default verdict: true = reject, false = warn */
    const char *message;     /* what a customer-service agent can read out */
    bool fixed;              /* always a reject: nothing checked is left to print */
};

/* The table, indexed by enum pf_code. */
extern const struct pf_code_info pf_codes[PF_CODE_COUNT];

/* Code by name, or -1. */
int pf_code_lookup(const char *name);

#endif
