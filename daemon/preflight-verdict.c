/* preflight-verdict.c - findings, ticket and printers to a verdict (see
 * preflight-verdict.h).
 *
 * Design notes:
 * - The helper reports facts (pages, distinct sizes, colour pages) and the
 *   findings it can make alone; what depends on the ticket or on the
 *   configured printers is decided here, so a SIGHUP that changes printers
 *   or policies needs no new helper.
 * - Two sizes are "the same" when they are within 2 mm of each other in
 *   either orientation: a portrait and a landscape A4 page are one size
 *   (CUPS turns pages to fit), so neither media-mismatch nor
 *   mixed-page-sizes fires for them.
 * - page-too-large: a page over 125% of every medium of every configured
 *   printer, in either orientation; skipped without printers.
 * - Whatever the helper wrote is input from a process that read a hostile
 *   file: only known keys are taken, numbers are checked, arrays bounded
 *   by the page count, details go to the log only.
 * - Codes marked fixed in pfcodes.c reject whatever on_<code> says; the log
 *   line says so when on_<code> asked for a warning.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "pfcodes.h"
#include "preflight-verdict.h"

#define MM_PT (72.0 / 25.4)

int pf_media_size_pt(const char *pwg, double *w, double *h)
{
    const char *dim = pwg ? strrchr(pwg, '_') : NULL;
    double a, b;
    char unit[3], extra;

    if (!dim || sscanf(dim + 1, "%lfx%lf%2[a-z]%c", &a, &b, unit, &extra) != 3 || !(a > 0 && b > 0))
        return -1;
    if (strcmp(unit, "mm") == 0) {
        *w = a * MM_PT;
        *h = b * MM_PT;
    } else if (strcmp(unit, "in") == 0) {
        *w = a * 72;
        *h = b * 72;
    } else {
        return -1;
    }
    return 0;
}

/* |a - b| <= tol */
static bool near(double a, double b, double tol)
{
    return a - b <= tol && b - a <= tol;
}

/* Are sizes (w, h) and (mw, mh) within the tolerance, either orientation? */
static bool same_size(double w, double h, double mw, double mh)
{
    const double tol = PF_MEDIA_TOLERANCE_MM * MM_PT + 0.125;  /* + the helper's rounding */
    return (near(w, mw, tol) && near(h, mh, tol)) || (near(w, mh, tol) && near(h, mw, tol));
}

/* Does (w, h) fit within PF_TOO_LARGE_FACTOR x (mw, mh), either orientation? */
static bool fits(double w, double h, double mw, double mh)
{
    const double f = PF_TOO_LARGE_FACTOR, e = 0.05;
    return (w <= mw * f + e && h <= mh * f + e) || (w <= mh * f + e && h <= mw * f + e);
}

/* Does any medium of any configured printer take (w, h)?  true without
 * printers. */
static bool printable_size(const struct conf *c, double w, double h)
{
    if (!c || c->nprinters == 0)
        return true;
    for (size_t i = 0; i < c->nprinters; i++) {
        char *const *m = c->printers[i].media, *const fallback[] = {c->default_media, NULL};
        for (m = m ? m : fallback; *m; m++) {
            double mw, mh;
            if (pf_media_size_pt(*m, &mw, &mh) == 0 && fits(w, h, mw, mh))
                return true;
        }
    }
    return false;
}

struct verdict {
    int64_t job_id;
    const struct conf *c;
    json_t *reasons, *warnings;
    bool reject;
    unsigned seen;             /* bit per code: each code is listed once */
};

/* One finding: a reason or a warning by the policy; detail to the log. */
static void add(struct verdict *v, int code, const char *detail)
{
    bool reject, fixed;

    if (code < 0 || code >= PF_CODE_COUNT) {
        log_job(LOG_LVL_WARN, v->job_id, NULL, "preflight: the helper named an unknown code");
        code = PF_PREFLIGHT_CRASHED;
    }
    if (v->seen & (1u << code))
        return;
    v->seen |= 1u << code;
    fixed = pf_codes[code].fixed;
    reject = fixed || (v->c ? v->c->reject[code] : pf_codes[code].reject);
    log_job(LOG_LVL_INFO, v->job_id, NULL, "preflight: %s (%s)%s%s%s", pf_codes[code].name,
            reject ? "reject" : "warning", detail && *detail ? ": " : "", detail ? detail : "",
            fixed && v->c && !v->c->reject[code] ? "; on_ asks for a warning but this code always rejects" : "");
    json_array_append_new(reject ? v->reasons : v->warnings,
                          json_pack("{s:s, s:s}", "code", pf_codes[code].name,
                                    "message", pf_codes[code].message));
    v->reject |= reject;
}

/* A number from JSON as a double: 0 / -1 when it is none or not sane. */
static int num(const json_t *j, double *out)
{
    if (!json_is_number(j))
        return -1;
    *out = json_number_value(j);
    return *out >= 0 && *out < 1e7 ? 0 : -1;     /* false for NaN too */
}

/* The size checks over the helper's distinct sizes; fills out's page_sizes. */
static void check_sizes(struct verdict *v, const json_t *sizes, const json_t *first_pages, int pages,
                        const struct pf_ticket *t, json_t *out)
{
    double mw = 0, mh = 0, w0 = 0, h0 = 0, w, h;
    bool media_known = t && pf_media_size_pt(t->media, &mw, &mh) == 0;
    size_t i;
    json_t *s;
    char detail[160];

    json_array_foreach(sizes, i, s) {
        int page = (int)json_integer_value(json_array_get(first_pages, i));
        if ((int)i >= pages || !json_is_array(s) || num(json_array_get(s, 0), &w) < 0 ||
            num(json_array_get(s, 1), &h) < 0)
            break;
        json_array_append_new(json_object_get(out, "page_sizes"), json_pack("[f, f]", w, h));
        if (i == 0) {
            w0 = w;
            h0 = h;
        } else if (!same_size(w, h, w0, h0)) {
            snprintf(detail, sizeof detail, "page %d is %.1f x %.1f pt, page 1 %.1f x %.1f pt",
                     page, w, h, w0, h0);
            add(v, PF_MIXED_PAGE_SIZES, detail);
        }
        if (media_known && !same_size(w, h, mw, mh)) {
            snprintf(detail, sizeof detail, "page %d is %.1f x %.1f pt, the ticket's media %.1f x "
                     "%.1f pt", page, w, h, mw, mh);
            add(v, PF_MEDIA_MISMATCH, detail);
        }
        if (w < PF_MIN_SIDE_MM * MM_PT || h < PF_MIN_SIDE_MM * MM_PT) {
            snprintf(detail, sizeof detail, "page %d is %.1f x %.1f pt", page, w, h);
            add(v, PF_PAGE_TOO_SMALL, detail);
        }
        if (!printable_size(v->c, w, h)) {
            snprintf(detail, sizeof detail, "page %d is %.1f x %.1f pt", page, w, h);
            add(v, PF_PAGE_TOO_LARGE, detail);
        }
    }
}

/* Copy the helper's colour pages (ascending, 1..pages) into out. */
static void check_colors(struct verdict *v, const json_t *list, int pages, const struct pf_ticket *t,
                         json_t *out)
{
    json_t *dst = json_object_get(out, "color_page_list"), *p;
    json_int_t last = 0;
    size_t i;
    char detail[80];

    json_array_foreach(list, i, p) {
        json_int_t n = json_integer_value(p);
        if (!json_is_integer(p) || n <= last || n > pages)
            break;
        json_array_append_new(dst, json_integer(n));
        last = n;
    }
    json_object_set_new(out, "color_pages", json_integer((json_int_t)json_array_size(dst)));
    if (t && !t->color && json_array_size(dst) > 0) {
        snprintf(detail, sizeof detail, "%zu of %d pages in colour, first page %lld",
                 json_array_size(dst), pages, (long long)json_integer_value(json_array_get(dst, 0)));
        add(v, PF_COLOR_ON_MONOCHROME, detail);
    }
}

json_t *pf_verdict_build(int64_t job_id, const json_t *report, const char *failure, int pages,
                         const struct pf_ticket *t, const struct conf *c, bool *reject)
{
    struct verdict v = {.job_id = job_id, .c = c, .reasons = json_array(), .warnings = json_array()};
    json_t *out = json_pack("{s:i, s:[], s:i, s:[]}", "pages", 0, "page_sizes", "color_pages", 0,
                            "color_page_list");
    json_t *f;
    size_t i;

    if (report && !failure) {
        json_int_t n = json_integer_value(json_object_get(report, "pages"));
        pages = n >= 0 && n <= 1000000000 ? (int)n : 0;
        json_array_foreach(json_object_get(report, "findings"), i, f) {
            const char *code = json_string_value(json_object_get(f, "code"));
            add(&v, code ? pf_code_lookup(code) : -1,
                json_string_value(json_object_get(f, "detail")));
        }
        check_sizes(&v, json_object_get(report, "page_sizes"), json_object_get(report, "size_pages"),
                    pages, t, out);
        check_colors(&v, json_object_get(report, "color_page_list"), pages, t, out);
    } else {
        add(&v, pf_code_lookup(failure ? failure : "preflight-crashed"), NULL);
    }
    json_object_set_new(out, "pages", json_integer(pages > 0 ? pages : 0));
    json_object_set_new(out, "warnings", v.warnings);
    json_object_set_new(out, "reasons", v.reasons);
    *reject = v.reject;
    return out;
}
