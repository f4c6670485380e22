/* unit-conf.c - copeesd.conf: defaults, a file setting every key, each kind
 * of refusal (with file, key and line in the message), printer defaults,
 * and the installed example file and man page against the list of keys. */
#include "config.h"

#include <ftw.h>
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
#include "sysres.h"

static char dir[64];

/* Every key of the design, section by section (on_<code> comes from pf_codes). */
static const char *const all_keys[] = {
    "spool_dir", "state_dir", "socket", "socket_mode", "socket_group", "submit_group",
    "admin_group", "max_upload", "min_free", "default_media", "default_due", "delivery_lead",
    "complaint_window", "complaint_max", "max_retention", "history_retention", "shred_passes",
    "workers", "timeout", "page_time", "memory", "max_pages",
    "server", "poll_interval",
    "listen", "certificate", "key", "client_ca", "submit_cn", "admin_cn",
    "queue", "media", "color", "duplex", "ppm", "max_inflight", "cover_sheet",
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    strcpy(dir, "/tmp/unit-conf.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Write text to DIR/name; returns the path (caller frees). */
static char *write_conf(const char *name, const char *text)
{
    char *path = malloc(PATH_MAX);
    assert_non_null(path);
    snprintf(path, PATH_MAX, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Read a file of the source tree, relative to $top_srcdir (set by make
 * check), else to this file's directory's parent; NULL if absent (caller frees). */
static char *read_src(const char *rel)
{
    char path[PATH_MAX], *buf = NULL;
    const char *top = getenv("top_srcdir");
    size_t len = 0;
    const char *slash = strrchr(__FILE__, '/');   /* __FILE__ is .../tests/unit-conf.c */
    if (top)
        snprintf(path, sizeof path, "%s/%s", top, rel);
    else
        snprintf(path, sizeof path, "%.*s/../%s", slash ? (int)(slash - __FILE__) : 1,
                 slash ? __FILE__ : ".", rel);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    FILE *m = open_memstream(&buf, &len);
    int ch;
    while ((ch = getc(f)) != EOF)
        putc(ch, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* twice the cores plus two, at most 64, and no more checks of 512 MiB
 * (the default memory) than half the memory holds: the cores and memory
 * this process may use (unit-sysres tests how they are read) */
static int default_workers(void)
{
    struct sysres r;
    sysres_get(&r);
    long n = 2 * r.cpus + 2;
    long fit = r.memory ? (long)(r.memory / 2 / (512 << 20)) : n;
    n = n > fit ? (fit < 1 ? 1 : fit) : n;
    return n > 64 ? 64 : (int)n;
}

/* The values of the design's defaults that do not depend on the build. */
static void assert_design_defaults(const struct conf *c)
{
    assert_string_equal(c->spool_dir, "/var/spool/copees");
    assert_string_equal(c->state_dir, "/var/lib/copees");
    assert_int_equal(c->socket_mode, 0660);
    assert_int_equal(c->max_upload, 256ULL << 20);
    assert_int_equal(c->min_free, 1ULL << 30);
    assert_string_equal(c->default_media, "iso_a4_210x297mm");
    assert_int_equal(c->default_due_ms, 4 * 3600 * 1000LL);
    assert_int_equal(c->delivery_lead_ms, 30 * 60 * 1000LL);
    assert_int_equal(c->complaint_window_ms, 12 * 3600 * 1000LL);
    assert_int_equal(c->complaint_max_ms, 7 * 86400 * 1000LL);
    assert_int_equal(c->max_retention_ms, 72 * 3600 * 1000LL);
    assert_int_equal(c->history_retention_ms, 90 * 86400 * 1000LL);
    assert_int_equal(c->shred_passes, 1);
    assert_int_equal(c->timeout_ms, 30000);
    assert_int_equal(c->page_time_ms, 50);
    assert_int_equal(c->memory, 512ULL << 20);
    assert_int_equal(c->max_pages, 2000);
    for (int i = 0; i < PF_CODE_COUNT; i++)
        assert_int_equal(c->reject[i], pf_codes[i].reject);
    assert_int_equal(c->poll_interval_ms, 2000);
}

static void test_defaults(void **state)
{
    char *err = NULL;
    struct conf *c = conf_load(NULL, &err);
    assert_non_null(c);
    assert_null(err);
    assert_null(c->path);
    assert_design_defaults(c);
    assert_string_equal(c->socket, COPEES_SOCKET_DEFAULT);
    assert_null(c->socket_group);
    assert_null(c->submit_group);
    assert_null(c->admin_group);
    assert_int_equal(c->workers, default_workers());
    assert_null(c->cups_server);
    assert_null(c->tls_listen);
    assert_null(c->tls_certificate);
    assert_null(c->tls_key);
    assert_null(c->tls_client_ca);
    assert_non_null(c->tls_submit_cn);
    assert_null(c->tls_submit_cn[0]);
    assert_non_null(c->tls_admin_cn);
    assert_null(c->tls_admin_cn[0]);
    assert_int_equal(c->nprinters, 0);
    assert_null(c->printers);
    assert_null(conf_printer_find(c, "any"));
    conf_free(c);
    conf_free(NULL);
}

/* workers as conf_load gives it for a file holding only [preflight] text */
static int workers_for(const char *text)
{
    char *path = write_conf("workers.conf", text), *err = NULL;
    struct conf *c = conf_load(path, &err);
    assert_non_null(c);
    assert_null(err);
    int w = c->workers;
    conf_free(c);
    free(path);
    return w;
}

/* Without workers in the file, a larger memory per check gives fewer
 * checks: never more than half the memory in all. */
static void test_workers_by_memory(void **state)
{
    struct sysres r;
    sysres_get(&r);
    unsigned long long half_k = r.memory / 2 >> 10;
    long cores = r.cpus;
    char text[128];

    /* each check may take all of that half: one at a time */
    snprintf(text, sizeof text, "[preflight]\nmemory = %lluK\n", half_k);
    assert_int_equal(workers_for(text), 1);
    /* a quarter of it each: two (the cores allow more) */
    snprintf(text, sizeof text, "[preflight]\nmemory = %lluK\n", half_k / 2);
    assert_int_equal(workers_for(text), 2 * cores + 2 < 2 ? 2 * cores + 2 : 2);
    /* a setting in the file wins over the bound */
    snprintf(text, sizeof text, "[preflight]\nmemory = %lluK\nworkers = 5\n", half_k);
    assert_int_equal(workers_for(text), 5);
}

static void test_empty_file(void **state)
{
    char *path = write_conf("empty.conf", "# nothing but a comment\n\n");
    char *err = NULL;
    struct conf *c = conf_load(path, &err);
    assert_non_null(c);
    assert_null(err);
    assert_string_equal(c->path, path);
    assert_design_defaults(c);
    assert_int_equal(c->nprinters, 0);
    conf_free(c);
    free(path);
}

static void test_every_key(void **state)
{
    char text[8192], verdicts[2048] = "";
    int workers = default_workers() == 3 ? 5 : 3;
    for (int i = 0; i < PF_CODE_COUNT; i++)   /* every verdict the opposite of its default */
        snprintf(verdicts + strlen(verdicts), sizeof verdicts - strlen(verdicts), "on_%s = %s\n",
                 pf_codes[i].name, pf_codes[i].reject ? "warn" : "reject");
    snprintf(text, sizeof text,
             "# every key, none at its default\n"
             "[daemon]\n"
             "spool_dir = /srv/copees/spool\n"
             "state_dir=/srv/copees/state\n"
             "socket = /run/test/copees.sock\n"
             "socket_mode = 0600\n"
             "socket_group = copees\n"
             "submit_group = webshop\n"
             "admin_group = print-admins\n"
             "max_upload = 64M\n"
             "min_free = 2G\n"
             "default_media = na_letter_8.5x11in\n"
             "default_due = 90m\n"
             "delivery_lead = 45m\n"
             "\n[retention]\n"
             "complaint_window = 6h\n"
             "complaint_max = 3d\n"
             "max_retention = 48h\n"
             "history_retention = 30d\n"
             "shred_passes = 3\n"
             "\n[preflight]\n"
             "workers = %d\n"
             "timeout = 45s\n"
             "page_time = 80ms\n"
             "memory = 1G\n"
             "max_pages = 500\n"
             "%s"
             "\n[cups]\n"
             "server = localhost:8631\n"
             "poll_interval = 500ms\n"
             "\n[tls]\n"
             "listen = *:8631\n"
             "certificate = /etc/copees/tls/cert.pem\n"
             "key = /etc/copees/tls/key.pem\n"
             "client_ca = /etc/copees/tls/ca.pem\n"
             "submit_cn = shop-web-1 ,  shop web 2\n"
             "admin_cn = ops\n"
             "\n[printer atelier-a4]\n"
             "queue = Atelier_A4\n"
             "media = iso_a4_210x297mm, iso_a3_297x420mm\n"
             "color = true\n"
             "duplex = true\n"
             "ppm = 45\n"
             "max_inflight = 3\n"
             "cover_sheet = true\n"
             "\n[printer letter.2]\n",
             workers, verdicts);
    char *path = write_conf("full.conf", text);
    char *err = NULL;
    struct conf *c = conf_load(path, &err);
    if (!c)
        fail_msg("refused: %s", err);
    assert_string_equal(c->spool_dir, "/srv/copees/spool");
    assert_string_equal(c->state_dir, "/srv/copees/state");
    assert_string_equal(c->socket, "/run/test/copees.sock");
    assert_int_equal(c->socket_mode, 0600);
    assert_string_equal(c->socket_group, "copees");
    assert_string_equal(c->submit_group, "webshop");
    assert_string_equal(c->admin_group, "print-admins");
    assert_int_equal(c->max_upload, 64ULL << 20);
    assert_int_equal(c->min_free, 2ULL << 30);
    assert_string_equal(c->default_media, "na_letter_8.5x11in");
    assert_int_equal(c->default_due_ms, 90 * 60000LL);
    assert_int_equal(c->delivery_lead_ms, 45 * 60000LL);
    assert_int_equal(c->complaint_window_ms, 6 * 3600000LL);
    assert_int_equal(c->complaint_max_ms, 3 * 86400000LL);
    assert_int_equal(c->max_retention_ms, 48 * 3600000LL);
    assert_int_equal(c->history_retention_ms, 30 * 86400000LL);
    assert_int_equal(c->shred_passes, 3);
    assert_int_equal(c->workers, workers);
    assert_int_equal(c->timeout_ms, 45000);
    assert_int_equal(c->page_time_ms, 80);
    assert_int_equal(c->memory, 1ULL << 30);
    assert_int_equal(c->max_pages, 500);
    for (int i = 0; i < PF_CODE_COUNT; i++)
        assert_int_equal(c->reject[i], !pf_codes[i].reject);
    assert_string_equal(c->cups_server, "localhost:8631");
    assert_int_equal(c->poll_interval_ms, 500);
    assert_string_equal(c->tls_listen, "*:8631");
    assert_string_equal(c->tls_certificate, "/etc/copees/tls/cert.pem");
    assert_string_equal(c->tls_key, "/etc/copees/tls/key.pem");
    assert_string_equal(c->tls_client_ca, "/etc/copees/tls/ca.pem");
    assert_string_equal(c->tls_submit_cn[0], "shop-web-1");
    assert_string_equal(c->tls_submit_cn[1], "shop web 2");
    assert_null(c->tls_submit_cn[2]);
    assert_string_equal(c->tls_admin_cn[0], "ops");
    assert_null(c->tls_admin_cn[1]);

    assert_int_equal(c->nprinters, 2);
    const struct conf_printer *p = conf_printer_find(c, "atelier-a4");
    assert_ptr_equal(p, &c->printers[0]);
    assert_string_equal(p->name, "atelier-a4");
    assert_string_equal(p->queue, "Atelier_A4");
    assert_string_equal(p->media[0], "iso_a4_210x297mm");
    assert_string_equal(p->media[1], "iso_a3_297x420mm");
    assert_null(p->media[2]);
    assert_true(p->color);
    assert_true(p->duplex);
    assert_int_equal(p->ppm, 45);
    assert_int_equal(p->max_inflight, 3);
    assert_true(p->cover_sheet);
    p = conf_printer_find(c, "letter.2");
    assert_ptr_equal(p, &c->printers[1]);
    assert_string_equal(p->media[0], "na_letter_8.5x11in");   /* default_media of this file */
    conf_free(c);
    free(path);
}

static void test_printer_defaults(void **state)
{
    /* The printer comes before [daemon]: its media still follows default_media. */
    char *path = write_conf("printer.conf",
                            "[printer front_desk]\n"
                            "\n[daemon]\n"
                            "default_media = iso_a5_148x210mm\n");
    char *err = NULL;
    struct conf *c = conf_load(path, &err);
    if (!c)
        fail_msg("refused: %s", err);
    assert_int_equal(c->nprinters, 1);
    const struct conf_printer *p = conf_printer_find(c, "front_desk");
    assert_non_null(p);
    assert_string_equal(p->name, "front_desk");
    assert_string_equal(p->queue, "front_desk");
    assert_string_equal(p->media[0], "iso_a5_148x210mm");
    assert_null(p->media[1]);
    assert_false(p->color);
    assert_false(p->duplex);
    assert_int_equal(p->ppm, 20);
    assert_int_equal(p->max_inflight, 2);
    assert_false(p->cover_sheet);
    assert_null(conf_printer_find(c, "front"));
    assert_null(conf_printer_find(c, NULL));
    assert_null(conf_printer_find(NULL, "front_desk"));
    conf_free(c);
    free(path);
}

static void test_unreadable(void **state)
{
    char path[PATH_MAX], *err = NULL;
    snprintf(path, sizeof path, "%s/no-such.conf", dir);
    assert_null(conf_load(path, &err));
    assert_non_null(err);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "No such file"));
    free(err);
    assert_null(conf_load(path, NULL));   /* no message wanted: nothing leaks */
}

struct bad {
    const char *what;     /* the test's name */
    const char *text;     /* the file */
    int line;             /* expected in "FILE:LINE: " */
    const char *needle;   /* expected in the message */
};

static const struct bad bads[] = {
    {"unknown section", "[daemon]\nspool_dir = /s\n\n[bogus]\nx = 1\n", 4, "[bogus]: unknown section"},
    {"unknown key", "[daemon]\nspool_dir = /s\nfrobnicate = yes\n", 3, "[daemon] frobnicate: unknown key"},
    {"bad boolean", "[printer p]\nqueue = q\ncolor = yes\n", 3, "[printer p] color: bad value \"yes\""},
    {"boolean 1 is not true", "[printer p]\nduplex = 1\n", 2, "[printer p] duplex"},
    {"bad size", "[daemon]\nmax_upload = 12Q\n", 2, "[daemon] max_upload: bad value"},
    {"size over 64 bits", "[daemon]\nmin_free = 99999999999999G\n", 2, "[daemon] min_free: 99999999999999G is out of range"},
    {"bad duration", "[retention]\n# the window\ncomplaint_window = 12 hours\n", 3,
     "[retention] complaint_window: bad value"},
    {"empty list item", "[tls]\nsubmit_cn = web1,,web2\n", 2, "[tls] submit_cn: item 2"},
    {"blank list item", "[tls]\nadmin_cn = ops, \n", 2, "[tls] admin_cn: item 2"},
    {"bad media in a list", "[printer p]\n\nmedia = iso_a4_210x297mm, A4\n", 3, "[printer p] media: bad value \"A4\""},
    {"bad media", "[daemon]\ndefault_media = A4\n", 2, "[daemon] default_media"},
    {"media of zero size", "[daemon]\ndefault_media = iso_a4_0x297mm\n", 2, "[daemon] default_media"},
    {"relative path", "[daemon]\nstate_dir = /s\nspool_dir = spool\n", 3, "[daemon] spool_dir: bad value \"spool\""},
    {"relative tls path", "[tls]\ncertificate = cert.pem\n", 2, "[tls] certificate"},
    {"socket path too long for sun_path",
     "[daemon]\nsocket = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
     2, "[daemon] socket"},
    {"shred_passes out of range", "[retention]\nshred_passes = 11\n", 2,
     "[retention] shred_passes: 11 is out of range (expected an integer from 1 to 10)"},
    {"shred_passes zero", "[retention]\nshred_passes = 0\n", 2, "[retention] shred_passes"},
    {"ppm out of range", "[printer p]\nppm = 10001\n", 2, "[printer p] ppm"},
    {"max_inflight out of range", "[printer p]\nmax_inflight = 0\n", 2, "[printer p] max_inflight"},
    {"max_pages out of range", "[preflight]\nmax_pages = 100001\n", 2, "[preflight] max_pages"},
    {"workers out of range", "[preflight]\nworkers = 65\n", 2, "[preflight] workers"},
    {"negative integer", "[preflight]\nworkers = -1\n", 2, "[preflight] workers: bad value"},
    {"on_<unknown-code>", "[preflight]\non_javascript = warn\non_frobnicated = warn\n", 3,
     "[preflight] on_frobnicated: unknown preflight code"},
    {"bad verdict", "[preflight]\non_javascript = ignore\n", 2, "[preflight] on_javascript: bad value \"ignore\""},
    {"duplicate printer", "[printer a]\nppm = 10\n\n[printer a]\nppm = 12\n", 4, "[printer a]: duplicate section (first at line 1)"},
    {"duplicate printer spelled apart", "[printer a]\n[printer   a]\n", 2, "duplicate printer \"a\""},
    {"bad printer name", "[printer a/b]\n", 1, "[printer a/b]: bad printer name"},
    {"printer without a name", "[daemon]\n[printer]\n", 2, "[printer]: bad printer name"},
    {"printer name too long",
     "[printer a234567890123456789012345678901234567890123456789012345678901234]\n", 1, "bad printer name"},
    {"tls listen without certificate", "[tls]\nkey = /k.pem\nlisten = *:8631\nclient_ca = /ca.pem\n", 3,
     "[tls] listen: a TLS listener needs certificate, key and client_ca (missing: certificate)"},
    {"bad tls listen", "[tls]\nlisten = 8631\n", 2, "[tls] listen: bad value"},
    {"duplicate key", "[daemon]\nsocket = /a\nsocket = /b\n", 3, "[daemon] socket: set twice (first at line 2)"},
    {"socket_mode not octal", "[daemon]\nsocket_mode = 0778\n", 2, "[daemon] socket_mode: bad value"},
    {"socket_mode with special bits", "[daemon]\nsocket_mode = 4660\n", 2, "[daemon] socket_mode: 4660 is out of range"},
    {"poll_interval under 100ms", "[cups]\npoll_interval = 50ms\n", 2, "[cups] poll_interval"},
    {"complaint_window zero", "[retention]\ncomplaint_window = 0\n", 2, "[retention] complaint_window"},
    {"bad cups server", "[cups]\nserver = host:0\n", 2, "[cups] server"},
    {"bad group name", "[daemon]\nadmin_group = print admins\n", 2, "[daemon] admin_group"},
    {"bad queue name", "[printer p]\nqueue = a#b\n", 2, "[printer p] queue"},
    {"empty value", "[daemon]\nsocket_group =\n", 2, "[daemon] socket_group: empty value"},
    {"line that is no key", "[daemon]\nspool_dir /s\n", 2, "bad line \"spool_dir /s\""},
    {"key before any section", "# hello\nspool_dir = /s\n", 2, "key before any section"},
    {"localised key", "[daemon]\nsocket[de] = /a\n", 2, "localised key"},
};

static void test_bad(void **state)
{
    const struct bad *b = *state;
    char *path = write_conf("bad.conf", b->text), *err = NULL, prefix[PATH_MAX + 16];
    struct conf *c = conf_load(path, &err);
    if (c)
        fail_msg("%s: accepted", b->what);
    assert_non_null(err);
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, b->line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", err, prefix);
    if (!strstr(err, b->needle))
        fail_msg("message \"%s\" lacks \"%s\"", err, b->needle);
    free(err);
    free(path);
}

/* Uncomment every "#key = value" and "#[section]" line of the example. */
static char *uncomment(const char *text)
{
    char *out = malloc(strlen(text) + 1), *o = out;
    assert_non_null(out);
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
        bool key = l[0] == '#' && ((l[1] >= 'a' && l[1] <= 'z') || l[1] == '[');
        memcpy(o, l + key, n - key);
        o += n - key;
        l += n;
    }
    *o = '\0';
    return out;
}

static void test_example(void **state)
{
    char *ex = read_src("conf/copeesd.conf");
    if (!ex)
        fail_msg("cannot read conf/copeesd.conf (set top_srcdir)");
    char *err = NULL, *path = write_conf("example.conf", ex);
    struct conf *c = conf_load(path, &err);
    if (!c)
        fail_msg("the example as installed is refused: %s", err);
    assert_design_defaults(c);
    assert_int_equal(c->nprinters, 0);
    conf_free(c);
    free(path);

    /* With every commented key set, the defaults it shows are the real ones. */
    char *on = uncomment(ex);
    path = write_conf("example-on.conf", on);
    c = conf_load(path, &err);
    if (!c)
        fail_msg("the example with every key uncommented is refused: %s", err);
    assert_design_defaults(c);
    assert_int_equal(c->nprinters, 1);
    assert_non_null(c->tls_listen);
    conf_free(c);
    free(path);
    free(on);

    for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n#%s = ", all_keys[i]);
        if (!strstr(ex, needle))
            fail_msg("the example lacks \"#%s = ...\"", all_keys[i]);
    }
    for (int i = 0; i < PF_CODE_COUNT; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n#on_%s = %s", pf_codes[i].name,
                 pf_codes[i].reject ? "reject" : "warn");
        if (!strstr(ex, needle))
            fail_msg("the example lacks \"%s\"", needle + 1);
    }
    free(ex);
}

static void test_man_page(void **state)
{
    char *man = read_src("docs/copeesd.conf.5");
    if (!man)
        fail_msg("cannot read docs/copeesd.conf.5 (set top_srcdir)");
    for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n.BI \"%s = \" ", all_keys[i]);
        if (!strstr(man, needle))
            fail_msg("the man page lacks an entry \".BI \"%s = \" ...\"", all_keys[i]);
    }
    for (int i = 0; i < PF_CODE_COUNT; i++) {
        char code[64], *o = code;   /* roff writes a hyphen as \- */
        for (const char *p = pf_codes[i].name; *p && o < code + sizeof code - 3; p++) {
            if (*p == '-')
                *o++ = '\\';
            *o++ = *p;
        }
        *o = '\0';
        if (!strstr(man, code))
            fail_msg("the man page lacks the code %s", pf_codes[i].name);
    }
    free(man);
}

int main(void)
{
    static struct CMUnitTest tests[7 + sizeof bads / sizeof bads[0]] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_workers_by_memory),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_printer_defaults),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_man_page),
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
        tests[7 + i] = (struct CMUnitTest){bads[i].what, test_bad, NULL, NULL, (void *)&bads[i]};
    return cmocka_run_group_tests_name("unit-conf", tests, group_setup, group_teardown);
}
