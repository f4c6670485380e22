/* pfcodes.c - the preflight code table (see pfcodes.h). */
#include "config.h"
#include <string.h>
#include "pfcodes.h"

const struct pf_code_info pf_codes[PF_CODE_COUNT] = {
    [PF_NOT_A_PDF] = {"not-a-pdf", true,
        "The file is damaged or is not a PDF document.", true},
    [PF_ENCRYPTED] = {"encrypted", true,
        "The PDF is protected by a password, so it cannot be opened for printing.", true},
    [PF_PRINT_NOT_PERMITTED] = {"print-not-permitted", true,
        "The PDF's security settings forbid printing it."},
    [PF_NO_PAGES] = {"no-pages", true,
        "The PDF contains no pages.", true},
    [PF_PAGE_MISSING] = {"page-missing", true,
        "A page of the PDF is missing or cannot be read."},
    [PF_TOO_MANY_PAGES] = {"too-many-pages", true,
        "The PDF has more pages than this shop accepts in one document.", true},
    [PF_PAGE_TOO_LARGE] = {"page-too-large", true,
        "A page is larger than any paper this shop's printers can take."},
    [PF_PAGE_TOO_SMALL] = {"page-too-small", true,
        "A page is smaller than 20 mm on a side, too small to print."},
    [PF_PREFLIGHT_TIMEOUT] = {"preflight-timeout", true,
        "The PDF took too long to check; it may be damaged or far too complex.", true},
    [PF_PREFLIGHT_CRASHED] = {"preflight-crashed", true,
        "The PDF could not be checked because it is damaged.", true},
    [PF_PREFLIGHT_TOO_COMPLEX] = {"preflight-too-complex", true,
        "The PDF needs more memory or time to process than a print job may use.", true},
    [PF_MEDIA_MISMATCH] = {"media-mismatch", false,
        "The page size differs from the paper ordered; pages will be scaled to fit."},
    [PF_MIXED_PAGE_SIZES] = {"mixed-page-sizes", false,
        "The document mixes several page sizes."},
    [PF_FONTS_NOT_EMBEDDED] = {"fonts-not-embedded", false,
        "Some fonts are not embedded; the printed text may look different."},
    [PF_JAVASCRIPT] = {"javascript", false,
        "The PDF contains JavaScript; it is ignored and never run."},
    [PF_LAUNCH_ACTION] = {"launch-action", false,
        "The PDF contains an action that launches a program; it is ignored."},
    [PF_ATTACHMENTS] = {"attachments", false,
        "The PDF carries attached files; they are not printed."},
    [PF_COLOR_ON_MONOCHROME] = {"color-on-monochrome", false,
        "Some pages are in colour but black-and-white printing was ordered."},
};

int pf_code_lookup(const char *name)
{
    for (int i = 0; i < PF_CODE_COUNT; i++)
        if (strcmp(pf_codes[i].name, name) == 0)
            return i;
    return -1;
}
