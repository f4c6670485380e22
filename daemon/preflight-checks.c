/* preflight-checks.c - the checks the helper's children run on one PDF
 * (see preflight-checks.h): poppler-glib opens it, every page is loaded,
 * measured and rendered at 18 dpi into a colour map, fonts and actions
 * are listed.  The daemon (preflight-verdict.c) turns the findings into
 * reasons and warnings; nothing here knows the ticket or the printers.
 *
 * Design notes:
 * - pfc_init() checks a built-in document that takes every path the real
 *   checks take (a non-embedded font, link actions, rendering), so that
 *   poppler's globals, fontconfig's configuration and caches, FreeType and
 *   cairo are loaded before the server installs its system call filter.
 *   poppler builds its globals for the first open document and drops them
 *   with the last: that document stays open for the server's life.
 * - Poppler prints "Out of memory" (libstdc++ "std::bad_alloc") on stderr
 *   and may go on, e.g. rendering a JBIG2 bomb as a blank page.  glibc
 *   lets us replace the stderr stream: ours counts those lines, and GLib's
 *   log handler counts its messages.  The first out-of-memory line also
 *   writes "oom" to the stream at once, because an abort() may follow.
 * - Nothing here writes to fd 2: diagnostics can quote the document.
 * - Sizes: poppler_page_get_size() is the crop box after /Rotate.  Sizes
 *   are rounded to a quarter point and listed once each, in order of first
 *   appearance, with the first page that has each.
 * - The colour map renders each page at 18 dpi (at most 2048 pixels a
 *   side) for printing on white; a page is in colour when one pixel's
 *   channels differ by more than COLOR_CHROMA (of 255).  At 18 dpi a thin
 *   coloured line blends with the paper but stays well above that.
 * - The document is mapped and poppler reads it from memory: its fd
 *   stream reads 256 bytes per system call (81 calls for a 5 KB file, and
 *   every call passes two seccomp filters).  A file larger than a quarter
 *   of the address-space limit is read through the fd instead.  Only a
 *   truncation while the check runs could fault the mapping (SIGBUS:
 *   preflight-crashed); the daemon truncates a document only to shred it,
 *   and then the job's verdict no longer matters.
 * - poppler-glib does not see every action (document-level /OpenAction
 *   JavaScript, for one), so the raw bytes are scanned too
 *   (preflight-scan.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>
#include <glib.h>
#include <poppler.h>

#include "pfcodes.h"
#include "preflight-checks.h"
#include "preflight-proto.h"
#include "preflight-scan.h"

#define RENDER_DPI 18.0
#define RENDER_MAX_SIDE 2048   /* pixels */
#define MAP_MAX_NO_LIMIT (1ULL << 30)   /* mapped at most, with no address-space limit */
#define COLOR_CHROMA 32        /* max - min channel above this: a colour pixel */

static struct {
    unsigned messages;         /* GLib log messages and stderr writes */
    unsigned oom;              /* those that said memory ran out */
    int out_fd;                /* where "oom" goes, -1: nowhere */
} diag = {.out_fd = -1};
static char diag_buf[1024];    /* the stderr stream's buffer: no malloc under OOM */
static PopplerDocument *warm_doc;

/* ------------------------------------------------------------ diagnostics */

/* write(2) all of buf, retrying EINTR: 0 / -1. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Count one diagnostic; say "oom" on the stream the first time. */
static void diag_note(bool oom)
{
    diag.messages++;
    if (oom && diag.oom++ == 0 && diag.out_fd >= 0)
        write_all(diag.out_fd, PFC_OOM "\n", sizeof PFC_OOM);
}

/* The stderr stream's write function (see the design notes). */
static ssize_t diag_stderr_write(void *cookie, const char *buf, size_t len)
{
    diag_note(memmem(buf, len, "Out of memory", 13) || memmem(buf, len, "bad_alloc", 9) ||
              memmem(buf, len, "out of memory", 13));
    return (ssize_t)len;
}

/* GLib's log (poppler-glib's errors, GLib's own) goes here. */
static void diag_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer p)
{
    diag_note(msg && strcasestr(msg, "out of memory") != NULL);
}

void pfc_diag_reset(void)
{
    diag.messages = diag.oom = 0;
}

/* ------------------------------------------------------------ the report */

/* Append finding code with a printf-style detail to report. */
static void G_GNUC_PRINTF(3, 4) finding_add(json_t *report, enum pf_code code, const char *fmt, ...)
{
    char detail[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_array_append_new(json_object_get(report, "findings"),
                          json_pack("{s:s, s:s}", "code", pf_codes[code].name, "detail", detail));
}

int pfc_report_write(int fd, const json_t *report)
{
    char *text = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(10));
    char *line = text ? g_strconcat(PFC_REPORT, text, "\n", NULL) : NULL;
    int rc = line ? write_all(fd, line, strlen(line)) : -1;   /* one write: one relay */

    g_free(line);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ pages */

struct pages {
    json_t *report;
    GArray *sizes;             /* struct size, distinct */
    int missing, first_missing;
    int links_js, links_launch, annots_file;
    bool stop_render;
};
struct size { double w, h; };

/* A length in points rounded to a quarter point (no libm); 0 for
 * nonsense.  Quarters are exact in binary, so JSON prints them as they
 * are ("595.25", not "595.29999999999995"). */
static double round_quarter(double v)
{
    return v > 0 && v < 1e9 ? (double)(long long)(v * 4 + 0.5) / 4 : 0;
}

/* Note page i's size in the distinct list. */
static void page_size_note(struct pages *ps, PopplerPage *page, int i)
{
    struct size sz;
    guint j;

    poppler_page_get_size(page, &sz.w, &sz.h);
    sz.w = round_quarter(sz.w);
    sz.h = round_quarter(sz.h);
    for (j = 0; j < ps->sizes->len; j++)     /* rounded sizes compare exactly */
        if (!memcmp(&g_array_index(ps->sizes, struct size, j), &sz, sizeof sz))
            return;
    g_array_append_val(ps->sizes, sz);
    json_array_append_new(json_object_get(ps->report, "page_sizes"), json_pack("[f, f]", sz.w, sz.h));
    json_array_append_new(json_object_get(ps->report, "size_pages"), json_integer(i + 1));
}

/* Count the actions and attachments page shows. */
static void page_actions_note(struct pages *ps, PopplerPage *page)
{
    GList *links = poppler_page_get_link_mapping(page), *annots = poppler_page_get_annot_mapping(page);

    for (GList *l = links; l; l = l->next) {
        PopplerAction *a = ((PopplerLinkMapping *)l->data)->action;
        if (a && a->type == POPPLER_ACTION_JAVASCRIPT)
            ps->links_js++;
        else if (a && a->type == POPPLER_ACTION_LAUNCH)
            ps->links_launch++;
    }
    for (GList *l = annots; l; l = l->next)
        if (poppler_annot_get_annot_type(((PopplerAnnotMapping *)l->data)->annot) ==
            POPPLER_ANNOT_FILE_ATTACHMENT)
            ps->annots_file++;
    poppler_page_free_link_mapping(links);
    poppler_page_free_annot_mapping(annots);
}

/* Render page i at 18 dpi for printing: 1 when it has colour, 0 when not,
 * -1 when the render failed (a too-complex finding is added). */
static int page_render(struct pages *ps, PopplerPage *page, int i)
{
    double w, h, scale = RENDER_DPI / 72.0;
    unsigned oom = diag.oom;
    int color = 0, pw, ph;

    poppler_page_get_size(page, &w, &h);
    if (!(w > 0 && h > 0 && w < 1e7 && h < 1e7))
        w = h = 1;
    if (MAX(w, h) * scale > RENDER_MAX_SIDE)
        scale = RENDER_MAX_SIDE / MAX(w, h);
    pw = MAX(1, (int)(w * scale + 0.999));
    ph = MAX(1, (int)(h * scale + 0.999));
    /* white paper: our own pixels set to 0xff in one pass, rather than
     * cairo's zeroed ones painted white in a second */
    int stride = cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, pw);
    unsigned char *pixels = stride > 0 ? malloc((size_t)stride * (size_t)ph) : NULL;
    if (!pixels) {
        finding_add(ps->report, PF_PREFLIGHT_TOO_COMPLEX, "page %d cannot be rendered: out of memory",
                    i + 1);
        return -1;
    }
    memset(pixels, 0xff, (size_t)stride * (size_t)ph);
    cairo_surface_t *s = cairo_image_surface_create_for_data(pixels, CAIRO_FORMAT_RGB24, pw, ph, stride);
    cairo_t *cr = cairo_create(s);
    cairo_scale(cr, scale, scale);
    poppler_page_render_for_printing(page, cr);
    cairo_status_t st = cairo_status(cr);
    cairo_surface_flush(s);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    if (st != CAIRO_STATUS_SUCCESS || diag.oom != oom) {
        finding_add(ps->report, PF_PREFLIGHT_TOO_COMPLEX, "page %d cannot be rendered: %s", i + 1,
                    diag.oom != oom ? "out of memory" : cairo_status_to_string(st));
        color = -1;
    } else {
        for (int y = 0; y < ph && !color; y++)
            color = pfc_row_has_color((const uint32_t *)(const void *)(pixels + (size_t)y * stride), pw,
                                      COLOR_CHROMA);
    }
    cairo_destroy(cr);
    cairo_surface_finish(s);      /* nothing may draw on pixels after this */
    cairo_surface_destroy(s);
    free(pixels);
    return color;
}

/* Load, measure, scan and render pages 0..n-1 into ps. */
static void check_pages(PopplerDocument *doc, int n, const struct pfc_opts *o, struct pages *ps)
{
    json_t *colors = json_object_get(ps->report, "color_page_list");

    for (int i = 0; i < n; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) {
            if (ps->missing++ == 0)
                ps->first_missing = i + 1;
            continue;
        }
        page_size_note(ps, page, i);
        page_actions_note(ps, page);
        if (o->render && !ps->stop_render) {
            int c = page_render(ps, page, i);
            if (c > 0)
                json_array_append_new(colors, json_integer(i + 1));
            ps->stop_render = c < 0;     /* one failed render is enough to tell */
        }
        g_object_unref(page);
    }
    json_object_set_new(ps->report, "color_pages", json_integer((json_int_t)json_array_size(colors)));
}

/* Count the fonts that are not embedded (a font used on many pages counts
 * once). */
static int fonts_not_embedded(PopplerDocument *doc, int n)
{
    PopplerFontInfo *info = poppler_font_info_new(doc);
    PopplerFontsIter *iter = NULL;
    int count = 0;

    if (info && poppler_font_info_scan(info, n, &iter) && iter) {
        do
            count += !poppler_fonts_iter_is_embedded(iter);
        while (poppler_fonts_iter_next(iter));
    }
    if (iter)
        poppler_fonts_iter_free(iter);
    if (info)
        poppler_font_info_free(info);
    return count;
}

/* ------------------------------------------------------------ the document */

/* The checks of an open document with n pages into report. */
static void check_open(PopplerDocument *doc, const struct pfc_opts *o, const struct pfc_scan *sc,
                       json_t *report)
{
    int n = poppler_document_get_n_pages(doc), nfonts;
    struct pages ps = {.report = report};

    if (!(poppler_document_get_permissions(doc) & POPPLER_PERMISSIONS_OK_TO_PRINT))
        finding_add(report, PF_PRINT_NOT_PERMITTED, "its permissions do not allow printing");
    n = MAX(n, 0);
    json_object_set_new(report, "pages", json_integer(n));
    if (o->out_fd >= 0) {
        char line[32];
        snprintf(line, sizeof line, PFC_PAGES "%d\n", n);
        write_all(o->out_fd, line, strlen(line));
    }
#ifdef COPEES_TEST_KNOBS
    if (o->knobs && sc->knob[0])       /* after the page count, for the deadline's sake */
        pfc_knob_run(sc->knob, o->memory);
#endif
    if (n == 0) {
        finding_add(report, PF_NO_PAGES, "the document has no pages");
        return;
    }
    if (n > o->max_pages) {
        finding_add(report, PF_TOO_MANY_PAGES, "%d pages, over the limit of %d", n, o->max_pages);
        return;
    }
    ps.sizes = g_array_new(FALSE, FALSE, sizeof(struct size));
    check_pages(doc, n, o, &ps);
    g_array_free(ps.sizes, TRUE);
    if (ps.missing)
        finding_add(report, PF_PAGE_MISSING, "page %d cannot be loaded (%d of %d pages)",
                    ps.first_missing, ps.missing, n);
    if ((nfonts = fonts_not_embedded(doc, n)) > 0)
        finding_add(report, PF_FONTS_NOT_EMBEDDED, "%d font%s not embedded", nfonts,
                    nfonts == 1 ? "" : "s");
    bool js = poppler_document_has_javascript(doc), files = poppler_document_has_attachments(doc);
    if (js || ps.links_js || sc->javascript)
        finding_add(report, PF_JAVASCRIPT, "poppler %s, %d links, bytes %s", js ? "yes" : "no",
                    ps.links_js, sc->javascript ? "yes" : "no");
    if (ps.links_launch || sc->launch)
        finding_add(report, PF_LAUNCH_ACTION, "%d links, bytes %s", ps.links_launch,
                    sc->launch ? "yes" : "no");
    if (files || ps.annots_file || sc->attachment)
        finding_add(report, PF_ATTACHMENTS, "embedded files %s, %d annotations, bytes %s",
                    files ? "yes" : "no", ps.annots_file, sc->attachment ? "yes" : "no");
}

/* Map the document on fd for reading, or NULL when it is not a regular
 * file, is empty, or is larger than a quarter of the address-space limit
 * (the mapping counts against it): then poppler reads the fd. */
static void *map_document(int fd, const struct pfc_opts *o, size_t *size)
{
    unsigned long long cap = o->memory ? o->memory / 4 : MAP_MAX_NO_LIMIT;
    struct stat st;
    void *p;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (unsigned long long)st.st_size > cap)
        return NULL;
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    *size = (size_t)st.st_size;
    return p;
}

json_t *pfc_check(int fd, const struct pfc_opts *o)
{
    json_t *report = json_pack("{s:i, s:[], s:[], s:i, s:[], s:[]}", "pages", 0, "page_sizes",
                               "size_pages", "color_pages", 0, "color_page_list", "findings");
    GError *err = NULL;
    PopplerDocument *doc;
    struct pfc_scan sc;
    size_t size;
    void *map;

    diag.out_fd = o->out_fd;
    if (!report) {
        close(fd);
        return NULL;
    }
    if ((map = map_document(fd, o, &size)) != NULL) {
        GBytes *bytes = g_bytes_new_static(map, size);
        memset(&sc, 0, sizeof sc);
        pfc_scan_chunk(map, size, o->knobs, &sc);
        close(fd);
        doc = poppler_document_new_from_bytes(bytes, NULL, &err);   /* holds bytes */
        g_bytes_unref(bytes);
    } else {
        pfc_scan_file(fd, o->knobs, &sc);
        if (fd <= STDERR_FILENO) {   /* given fd 0, poppler would read it into memory */
            int copy = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
            close(fd);
            fd = copy;
        }
        doc = fd < 0 ? NULL : poppler_document_new_from_fd(fd, NULL, &err);   /* owns fd */
    }
    if (!doc) {
        if (g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
            finding_add(report, PF_ENCRYPTED, "a user password is needed to open it");
        else
            finding_add(report, PF_NOT_A_PDF, "cannot open: %s", err ? err->message : "no reason");
        g_clear_error(&err);
    } else {
        check_open(doc, o, &sc, report);
        g_object_unref(doc);
    }
    if (diag.oom) {
        bool said = false;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(report, "findings"), i, f)
            said |= strcmp(json_string_value(json_object_get(f, "code")),
                           pf_codes[PF_PREFLIGHT_TOO_COMPLEX].name) == 0;
        if (!said)
            finding_add(report, PF_PREFLIGHT_TOO_COMPLEX, "the PDF library ran out of memory "
                        "(%u times)", diag.oom);
    }
    json_object_set_new(report, "diagnostics", json_integer(diag.messages));
    return report;
}

/* ------------------------------------------------------------ start-up */

/* A one-page PDF that takes every path of the checks: a non-embedded font
 * (fontconfig), text and colour to render, a JavaScript and a launch link.
 * Object offsets are computed here, so the xref is exact. */
static GBytes *warm_pdf(void)
{
    static const char content[] = "BT /F1 12 Tf 20 100 Td (Warm up) Tj ET 1 0 0 rg 10 10 40 40 re f";
    char stream[256];
    const char *objs[7];
    GString *s = g_string_new("%PDF-1.4\n");
    gsize off[8];

    snprintf(stream, sizeof stream, "<< /Length %zu >>\nstream\n%s\nendstream", strlen(content),
             content);
    objs[0] = "<< /Type /Catalog /Pages 2 0 R >>";
    objs[1] = "<< /Type /Pages /Kids [3 0 R] /Count 1 >>";
    objs[2] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << /Font "
              "<< /F1 4 0 R >> >> /Contents 5 0 R /Annots [6 0 R 7 0 R] >>";
    objs[3] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
    objs[4] = stream;
    objs[5] = "<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /JavaScript /JS (1) >> >>";
    objs[6] = "<< /Type /Annot /Subtype /Link /Rect [10 0 20 10] /A << /S /Launch /F (x) >> >>";
    for (int i = 0; i < 7; i++) {
        off[i] = s->len;
        g_string_append_printf(s, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
    }
    off[7] = s->len;
    g_string_append(s, "xref\n0 8\n0000000000 65535 f \n");
    for (int i = 0; i < 7; i++)
        g_string_append_printf(s, "%010zu 00000 n \n", (size_t)off[i]);
    g_string_append_printf(s, "trailer\n<< /Size 8 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                           (size_t)off[7]);
    return g_string_free_to_bytes(s);
}

int pfc_init(void)
{
    FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t){.write = diag_stderr_write});
    GBytes *bytes;
    PopplerPage *page;

    if (!f || setvbuf(f, diag_buf, _IOLBF, sizeof diag_buf) != 0)
        return -1;
    stderr = f;
    g_log_set_default_handler(diag_glib_log, NULL);
    bytes = warm_pdf();
    warm_doc = poppler_document_new_from_bytes(bytes, NULL, NULL);
    g_bytes_unref(bytes);
    page = warm_doc ? poppler_document_get_page(warm_doc, 0) : NULL;
    if (!page)
        return -1;
    g_object_unref(page);
    /* the whole check once (a report made here also seeds jansson's hashing) */
    return pfc_selftest();
}

int pfc_selftest(void)
{
    const struct pfc_opts o = {.max_pages = 1, .render = true, .out_fd = -1};
    struct pfc_scan sc = {0};
    json_t *report = json_pack("{s:i, s:[], s:[], s:i, s:[], s:[]}", "pages", 0, "page_sizes",
                               "size_pages", "color_pages", 0, "color_page_list", "findings");
    int rc = 0;

    if (!report || !warm_doc) {
        json_decref(report);
        return -1;
    }
    pfc_scan_chunk("/JS ", 4, false, &sc);
    check_open(warm_doc, &o, &sc, report);
    if (json_integer_value(json_object_get(report, "color_pages")) != 1 ||
        json_array_size(json_object_get(report, "findings")) < 3)
        rc = -1;
    json_decref(report);
    pfc_diag_reset();
    return rc;
}
