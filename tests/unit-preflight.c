/* unit-preflight.c - the daemon's preflight verdict (preflight-verdict.c):
 * PWG media sizes, the 2 mm tolerance in either orientation, mixed sizes,
 * page-too-large against the configured printers, page-too-small, colour
 * on a monochrome ticket, the on_<code> policy and its fixed codes, the
 * failure codes, and a hostile report from the helper; and the helper's
 * colour test of a rendered row (preflight-scan.c). */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "pfcodes.h"
#include "preflight-scan.h"
#include "preflight-verdict.h"

static char path[64];
static struct conf *with_printers, *no_printers;

/* A config from text (a temporary file). */
static struct conf *conf_from(const char *text)
{
    char *err = NULL;
    FILE *f;
    struct conf *c;

    strcpy(path, "/tmp/unit-preflight.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    c = conf_load(path, &err);
    unlink(path);
    if (!c)
        fail_msg("conf: %s", err);
    return c;
}

static int setup(void **state)
{
    with_printers = conf_from("[printer a]\nmedia = iso_a4_210x297mm, iso_a3_297x420mm\n"
                              "[printer b]\nmedia = na_letter_8.5x11in\n");
    no_printers = conf_from("");
    return 0;
}

static int teardown(void **state)
{
    conf_free(with_printers);
    conf_free(no_printers);
    return 0;
}

/* The codes of the verdict's reasons (R) and warnings (W), "R:a,W:b". */
static char *codes(const json_t *v)
{
    static char buf[512];
    const char *lists[2] = {"reasons", "warnings"};
    size_t i;
    json_t *e;

    buf[0] = '\0';
    for (int l = 0; l < 2; l++)
        json_array_foreach(json_object_get(v, lists[l]), i, e) {
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%c:%s", buf[0] ? "," : "",
                     l == 0 ? 'R' : 'W', json_string_value(json_object_get(e, "code")));
            assert_non_null(json_string_value(json_object_get(e, "message")));
        }
    return buf;
}

/* The verdict on a report written as JSON text, for a ticket. */
static json_t *verdict(const char *report_text, const char *media, bool color, const struct conf *c,
                       bool *reject)
{
    json_error_t je;
    json_t *report = json_loads(report_text, 0, &je);
    struct pf_ticket t = {.color = color};

    if (!report)
        fail_msg("bad test JSON: %s", je.text);
    snprintf(t.media, sizeof t.media, "%s", media);
    json_t *v = pf_verdict_build(1, report, NULL, 0, &t, c, reject);
    json_decref(report);
    return v;
}

/* Expect the codes for a report with these page sizes on an A4 ticket. */
static void expect_sizes(const char *sizes, const struct conf *c, const char *want, bool want_reject)
{
    char text[512];
    bool reject;

    snprintf(text, sizeof text, "{\"pages\": 9, \"page_sizes\": %s, \"findings\": []}", sizes);
    json_t *v = verdict(text, "iso_a4_210x297mm", false, c, &reject);
    if (strcmp(codes(v), want) != 0)
        fail_msg("sizes %s: got '%s', expected '%s'", sizes, codes(v), want);
    assert_int_equal(reject, want_reject);
    json_decref(v);
}

static void test_media_names(void **state)
{
    double w, h;
    assert_int_equal(pf_media_size_pt("iso_a4_210x297mm", &w, &h), 0);
    assert_true(w > 595.27 && w < 595.28 && h > 841.88 && h < 841.9);
    assert_int_equal(pf_media_size_pt("na_letter_8.5x11in", &w, &h), 0);
    assert_true(w == 612 && h == 792);
    assert_int_equal(pf_media_size_pt("custom_foo_100x200mm", &w, &h), 0);
    assert_int_equal(pf_media_size_pt("iso_a4", &w, &h), -1);
    assert_int_equal(pf_media_size_pt("iso_a4_210x297cm", &w, &h), -1);
    assert_int_equal(pf_media_size_pt("iso_a4_210x297mmx", &w, &h), -1);
    assert_int_equal(pf_media_size_pt("x_y_0x297mm", &w, &h), -1);
    assert_int_equal(pf_media_size_pt(NULL, &w, &h), -1);
}

static void test_media_tolerance(void **state)
{
    expect_sizes("[[595.25, 842.0]]", no_printers, "", false);          /* A4 */
    expect_sizes("[[842.0, 595.25]]", no_printers, "", false);          /* A4 turned */
    expect_sizes("[[600.75, 836.25]]", no_printers, "", false);         /* 1.9 mm off */
    expect_sizes("[[601.5, 842.0]]", no_printers, "W:media-mismatch", false);   /* 2.2 mm */
    expect_sizes("[[612.0, 792.0]]", no_printers, "W:media-mismatch", false);   /* letter */
}

static void test_mixed_sizes(void **state)
{
    expect_sizes("[[595.25, 842.0], [842.0, 595.25]]", no_printers, "", false);
    expect_sizes("[[595.25, 842.0], [596.0, 841.0]]", no_printers, "", false);
    expect_sizes("[[595.25, 842.0], [419.5, 595.25]]", no_printers,
                 "W:mixed-page-sizes,W:media-mismatch", false);              /* A4 + A5 */
}

static void test_page_too_large(void **state)
{
    /* 125% of A3 is 1052.4 x 1488.2 pt */
    expect_sizes("[[1052.0, 1488.0]]", with_printers, "W:media-mismatch", false);
    expect_sizes("[[1488.0, 1052.0]]", with_printers, "W:media-mismatch", false);
    expect_sizes("[[1060.0, 1488.0]]", with_printers, "R:page-too-large,W:media-mismatch", true);
    expect_sizes("[[2000.0, 2000.0]]", no_printers, "W:media-mismatch", false);  /* no printers: skipped */
    expect_sizes("[[14400.0, 14400.0]]", with_printers, "R:page-too-large,W:media-mismatch", true);
}

static void test_page_too_small(void **state)
{
    expect_sizes("[[56.5, 600.0]]", no_printers, "R:page-too-small,W:media-mismatch", true);
    expect_sizes("[[57.0, 600.0]]", no_printers, "W:media-mismatch", false);
    expect_sizes("[[0, 0]]", no_printers, "R:page-too-small,W:media-mismatch", true);
}

static void test_colour(void **state)
{
    const char *r = "{\"pages\": 3, \"page_sizes\": [[595.25, 842.0]], "
                    "\"color_page_list\": [2, 3], \"findings\": []}";
    bool reject;
    json_t *v = verdict(r, "iso_a4_210x297mm", false, no_printers, &reject);
    assert_string_equal(codes(v), "W:color-on-monochrome");
    assert_int_equal(json_integer_value(json_object_get(v, "color_pages")), 2);
    assert_int_equal(json_array_size(json_object_get(v, "color_page_list")), 2);
    assert_false(reject);
    json_decref(v);
    v = verdict(r, "iso_a4_210x297mm", true, no_printers, &reject);
    assert_string_equal(codes(v), "");
    assert_int_equal(json_integer_value(json_object_get(v, "color_pages")), 2);
    json_decref(v);
}

static void test_policy(void **state)
{
    const char *r = "{\"pages\": 1, \"page_sizes\": [[612.0, 792.0]], \"findings\": ["
                    "{\"code\": \"javascript\", \"detail\": \"x\"},"
                    "{\"code\": \"print-not-permitted\", \"detail\": \"x\"},"
                    "{\"code\": \"no-pages\", \"detail\": \"x\"}]}";
    struct conf *c = conf_from("[preflight]\non_media-mismatch = reject\non_javascript = reject\n"
                               "on_print-not-permitted = warn\non_no-pages = warn\n");
    bool reject;
    json_t *v = verdict(r, "iso_a4_210x297mm", false, no_printers, &reject);
    assert_string_equal(codes(v), "R:print-not-permitted,R:no-pages,W:javascript,W:media-mismatch");
    assert_true(reject);
    json_decref(v);
    v = verdict(r, "iso_a4_210x297mm", false, c, &reject);
    /* no-pages is fixed: it rejects whatever on_no-pages says */
    assert_string_equal(codes(v), "R:javascript,R:no-pages,R:media-mismatch,W:print-not-permitted");
    assert_true(reject);
    json_decref(v);
    conf_free(c);
}

static void test_failures(void **state)
{
    struct pf_ticket t = {.media = "iso_a4_210x297mm"};
    const char *fails[] = {"preflight-timeout", "preflight-crashed", "preflight-too-complex"};
    struct conf *c = conf_from("[preflight]\non_preflight-timeout = warn\non_preflight-crashed = warn\n"
                               "on_preflight-too-complex = warn\n");
    bool reject;
    char want[64];

    for (int i = 0; i < 3; i++) {
        json_t *v = pf_verdict_build(1, NULL, fails[i], 42, &t, c, &reject);
        snprintf(want, sizeof want, "R:%s", fails[i]);
        assert_string_equal(codes(v), want);
        assert_true(reject);
        assert_int_equal(json_integer_value(json_object_get(v, "pages")), 42);
        json_decref(v);
    }
    conf_free(c);
}

static void test_hostile_report(void **state)
{
    const char *r = "{\"pages\": 3, \"page_sizes\": [[595.25, 842.0], [\"x\", 1], [1, 2]],"
                    "\"color_page_list\": [1, 1, 9], \"findings\": [{\"code\": \"frobnicated\"},"
                    "{\"code\": 7}], \"secret\": \"other customer's data\"}";
    bool reject;
    json_t *v = verdict(r, "iso_a4_210x297mm", true, no_printers, &reject);
    const char *k;
    json_t *x;

    assert_string_equal(codes(v), "R:preflight-crashed");
    assert_true(reject);
    assert_int_equal(json_array_size(json_object_get(v, "page_sizes")), 1);   /* up to the bad one */
    assert_int_equal(json_integer_value(json_object_get(v, "color_pages")), 1);
    json_object_foreach(v, k, x) {
        const char *known[] = {"pages", "page_sizes", "color_pages", "color_page_list", "warnings",
                               "reasons"};
        bool ok = false;
        for (size_t i = 0; i < 6; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            fail_msg("unexpected key %s in the verdict", k);
    }
    assert_int_equal(json_object_size(v), 6);
    json_decref(v);
}

static void test_codes_table(void **state)
{
    for (int i = 0; i < PF_CODE_COUNT; i++) {
        assert_non_null(pf_codes[i].name);
        assert_true(strlen(pf_codes[i].message) > 20);
        assert_int_equal(pf_code_lookup(pf_codes[i].name), i);
        if (pf_codes[i].fixed)
            assert_true(pf_codes[i].reject);
    }
}

/* The helper's colour test of a rendered row (preflight-scan.c): the
 * threshold's edge in each channel, the unused byte ignored, a colour
 * pixel in every position of rows of every length up to 40 (the vector
 * loop's tail included), and random rows against the plain loop. */
static void test_row_color(void **state)
{
    uint32_t row[40];
    const int chroma = 32;

    for (int shift = 0; shift <= 16; shift += 8) {
        uint32_t grey = 0x808080;
        uint32_t at = (grey & ~(0xffu << shift)) | (uint32_t)(0x80 + chroma) << shift;
        uint32_t over = (grey & ~(0xffu << shift)) | (uint32_t)(0x80 + chroma + 1) << shift;
        uint32_t under = (grey & ~(0xffu << shift)) | (uint32_t)(0x80 - chroma - 1) << shift;
        for (int n = 1; n <= 40; n++)
            for (int pos = 0; pos < n; pos++) {
                for (int x = 0; x < n; x++)
                    row[x] = 0xff000000u | grey;      /* the unused byte set: still grey */
                row[pos] = at;
                assert_false(pfc_row_has_color(row, n, chroma));
                assert_false(pfc_row_has_color_plain(row, n, chroma));
                row[pos] = over;
                assert_true(pfc_row_has_color(row, n, chroma));
                assert_true(pfc_row_has_color_plain(row, n, chroma));
                row[pos] = under;
                assert_true(pfc_row_has_color(row, n, chroma));
            }
    }
    assert_false(pfc_row_has_color(row, 0, chroma));
    for (int x = 0; x < 40; x++)
        row[x] = 0x00ffffffu;
    assert_false(pfc_row_has_color(row, 40, chroma));
    assert_true(pfc_row_has_color((uint32_t[]){0x00ff0000u}, 1, chroma));
    assert_true(pfc_row_has_color((uint32_t[]){0, 0, 0, 0, 0x000000ffu}, 5, chroma));
    srand(7);
    for (int i = 0; i < 20000; i++) {
        int n = 1 + rand() % 40;
        for (int x = 0; x < n; x++) {
            unsigned base = (unsigned)(rand() % 256), spread = (unsigned)(rand() % 48);
            unsigned c[3];
            for (int k = 0; k < 3; k++) {
                unsigned v = base + (unsigned)rand() % (spread + 1);
                c[k] = v > 255 ? 255 : v;
            }
            row[x] = (unsigned)rand() << 24 | c[2] << 16 | c[1] << 8 | c[0];
        }
        assert_int_equal(pfc_row_has_color(row, n, chroma), pfc_row_has_color_plain(row, n, chroma));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_names),
        cmocka_unit_test(test_media_tolerance),
        cmocka_unit_test(test_mixed_sizes),
        cmocka_unit_test(test_page_too_large),
        cmocka_unit_test(test_page_too_small),
        cmocka_unit_test(test_colour),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_hostile_report),
        cmocka_unit_test(test_codes_table),
        cmocka_unit_test(test_row_color),
    };
    return cmocka_run_group_tests_name("unit-preflight", tests, setup, teardown);
}
