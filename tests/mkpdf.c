/* mkpdf.c - write a test PDF with cairo's PDF surface.
 *
 *   mkpdf [--pages N] [--size WxH] [--color] [--marker TEXT] [--text TEXT] OUT.pdf
 *
 * Every page shows "page i of N" as real text, a rectangle (red with
 * --color, grey otherwise: without --color the document has no colour at
 * all), --text TEXT under the page line and --marker TEXT near the bottom.
 * --size is in points (default A4, 595.28x841.89).  cairo compresses the
 * content streams, so look for text with pdftotext, not grep.
 *
 * --landscape-rotate is refused (exit 2): cairo's PDF surface cannot write
 * a page's /Rotate.  Rotate a generated file with `qpdf --rotate=+90 IN OUT`.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <cairo.h>
#include <cairo-pdf.h>

#define MAX_SIDE 14400.0       /* the largest page PDF allows, in points */

static void usage(void)
{
    fputs("usage: mkpdf [--pages N] [--size WxH] [--color] [--marker TEXT] [--text TEXT] OUT.pdf\n",
          stderr);
    exit(2);
}

/* Draw one line of text at (x, y) in the current font and colour. */
static void draw_text(cairo_t *cr, double x, double y, const char *text)
{
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, text);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pages", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"color", no_argument, NULL, 'c'},
        {"marker", required_argument, NULL, 'm'},
        {"text", required_argument, NULL, 't'},
        {"landscape-rotate", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    double w = 595.28, h = 841.89, fs;
    const char *marker = NULL, *text = NULL;
    int pages = 1, color = 0, c;
    char extra, line[64];

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (sscanf(optarg, "%d%c", &pages, &extra) != 1 || pages < 1 || pages > 100000) {
                fprintf(stderr, "mkpdf: bad --pages '%s' (1-100000)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (sscanf(optarg, "%lfx%lf%c", &w, &h, &extra) != 2 || !(w >= 1 && w <= MAX_SIDE) ||
                !(h >= 1 && h <= MAX_SIDE)) {
                fprintf(stderr, "mkpdf: bad --size '%s' (WxH in points, 1-14400)\n", optarg);
                return 2;
            }
            break;
        case 'c':
            color = 1;
            break;
        case 'm':
            marker = optarg;
            break;
        case 't':
            text = optarg;
            break;
        case 'r':
            fputs("mkpdf: --landscape-rotate is not supported: cairo cannot write /Rotate; "
                  "use qpdf --rotate=+90 IN OUT\n", stderr);
            return 2;
        default:
            usage();
        }
    }
    if (optind != argc - 1)
        usage();

    cairo_surface_t *surface = cairo_pdf_surface_create(argv[optind], w, h);
    cairo_t *cr = cairo_create(surface);
    fs = (w < h ? w : h) / 20;
    if (fs > 18)
        fs = 18;
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs);
    for (int i = 1; i <= pages; i++) {
        if (color)
            cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
        else
            cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_rectangle(cr, w * 0.1, h * 0.3, w * 0.8, h * 0.3);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        snprintf(line, sizeof line, "page %d of %d", i, pages);
        draw_text(cr, w * 0.1, h * 0.1 + fs, line);
        if (text)
            draw_text(cr, w * 0.1, h * 0.1 + 2.5 * fs, text);
        if (marker)
            draw_text(cr, w * 0.1, h * 0.9, marker);
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    cairo_status_t st = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    if (st != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "mkpdf: %s: %s\n", argv[optind], cairo_status_to_string(st));
        return 1;
    }
    return 0;
}
