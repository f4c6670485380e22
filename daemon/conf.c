/* conf.c - copeesd.conf: read with GKeyFile, checked against one key table.
 *
 * Design notes: every key is a row of keys[] (section, name, type, offset,
 * default as written in the file, limits); every type a row of types[] (the
 * form of a value or list item as a regular expression, and what to say is
 * expected).  Defaults go through the same parser as the file, and
 * conf_free walks the same table.  GKeyFile gives no line numbers, merges a
 * repeated section and lets a repeated key win, so the text is read once and
 * indexed by line first ("[section]" and "[section]key" -> line), refusing
 * repeats and stray lines; GKeyFile then parses the same bytes.  An empty
 * value is refused (leave the key out instead).  Checks are of form only:
 * groups are not looked up nor certificates opened here.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "conf.h"
#include "sysres.h"
#include "util.h"

enum ktype {
    K_PATH, K_SOCKET, K_GROUP, K_SERVER, K_LISTEN, K_QUEUE, K_MEDIA,   /* char * */
    K_LIST, K_MEDIA_LIST,                                              /* char ** */
    K_MODE, K_SIZE, K_DURATION, K_INT, K_BOOL, K_VERDICT
};

#define PORT "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
#define HOST "([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])"
#define DIM "(?=[0-9.]*[1-9])[0-9]+(\\.[0-9]+)?"
#define MEDIA "[a-z0-9]+_[a-z0-9.-]+_" DIM "x" DIM "(mm|in)"

static const struct ktype_info {
    const char *re;        /* the form of a value or list item (bytes, not UTF-8) */
    const char *expect;    /* for "(expected ...)" */
} types[] = {
    [K_PATH] = {"^/", "an absolute path"},
    [K_SOCKET] = {"^/.{0,106}$", "an absolute path of at most 107 bytes"},
    [K_GROUP] = {"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\\$?$", "a group name such as copees"},
    [K_SERVER] = {"^(/.*|" HOST "(:" PORT ")?)$", "a socket path or HOST[:PORT]"},
    [K_LISTEN] = {"^(\\*|" HOST "):" PORT "$", "HOST:PORT such as *:8631, 192.0.2.1:8631 or [::1]:8631"},
    [K_QUEUE] = {"^[^\\x00-\\x20\\x7f/\\\\?'\"#]{1,127}$",
                 "a CUPS queue name: 1 to 127 bytes, none of space / \\ ? ' \" #"},
    [K_MEDIA] = {"^" MEDIA "$", "a PWG media name such as iso_a4_210x297mm or na_letter_8.5x11in"},
    [K_LIST] = {"", "a comma-separated list of names"},
    [K_MEDIA_LIST] = {"^" MEDIA "$",
                      "a comma-separated list of PWG media names such as iso_a4_210x297mm, na_letter_8.5x11in"},
    [K_MODE] = {"^[0-7]{1,4}$", "an octal mode from 0000 to 0777"},
    [K_SIZE] = {"^[0-9]+[KMG]?$", "a size: a number with an optional K, M or G suffix (1024-based)"},
    [K_DURATION] = {"^[0-9]+(ms|s|m|h|d)?$", "a duration: a number with ms, s, m, h or d"},
    [K_INT] = {"^[0-9]{1,15}$", "an integer"},
    [K_BOOL] = {"^(true|false)$", "true or false"},
    [K_VERDICT] = {"^(reject|warn)$", "reject or warn"},
};

struct key {
    const char *section;   /* "daemon", ...; "printer" for [printer NAME] */
    const char *name;      /* "on_" stands for the family on_<code> */
    enum ktype type;
    size_t off;            /* into struct conf, or struct conf_printer */
    const char *def;       /* default as written in the file; NULL: unset */
    int64_t min, max;      /* K_INT, K_MODE, K_SIZE, K_DURATION */
};

#define C(f) offsetof(struct conf, f)
#define P(f) offsetof(struct conf_printer, f)
#define DAY_MS (86400 * 1000LL)
#define DUR_MAX (3650 * DAY_MS)

static const struct key keys[] = {
    {"daemon", "spool_dir", K_PATH, C(spool_dir), "/var/spool/copees"},
    {"daemon", "state_dir", K_PATH, C(state_dir), "/var/lib/copees"},
    {"daemon", "socket", K_SOCKET, C(socket), COPEES_SOCKET_DEFAULT},
    {"daemon", "socket_mode", K_MODE, C(socket_mode), "0660", 0, 0777},
    {"daemon", "socket_group", K_GROUP, C(socket_group), NULL},
    {"daemon", "submit_group", K_GROUP, C(submit_group), NULL},
    {"daemon", "admin_group", K_GROUP, C(admin_group), NULL},
    {"daemon", "max_upload", K_SIZE, C(max_upload), "256M", 1, INT64_MAX},
    {"daemon", "min_free", K_SIZE, C(min_free), "1G", 0, INT64_MAX},
    {"daemon", "default_media", K_MEDIA, C(default_media), "iso_a4_210x297mm"},
    {"daemon", "default_due", K_DURATION, C(default_due_ms), "4h", 1, DUR_MAX},
    {"daemon", "delivery_lead", K_DURATION, C(delivery_lead_ms), "30m", 0, DUR_MAX},
    {"retention", "complaint_window", K_DURATION, C(complaint_window_ms), "12h", 1, DUR_MAX},
    {"retention", "complaint_max", K_DURATION, C(complaint_max_ms), "7d", 0, DUR_MAX},
    {"retention", "max_retention", K_DURATION, C(max_retention_ms), "72h", 1, DUR_MAX},
    {"retention", "history_retention", K_DURATION, C(history_retention_ms), "90d", 1, DUR_MAX},
    {"retention", "shred_passes", K_INT, C(shred_passes), "1", 1, 10},
    {"preflight", "workers", K_INT, C(workers), NULL, 1, 64},      /* default: conf_default_workers() */
    {"preflight", "timeout", K_DURATION, C(timeout_ms), "30s", 1000, DUR_MAX},
    {"preflight", "page_time", K_DURATION, C(page_time_ms), "50ms", 0, DUR_MAX},
    {"preflight", "memory", K_SIZE, C(memory), "512M", 16 << 20, INT64_MAX},
    {"preflight", "max_pages", K_INT, C(max_pages), "2000", 1, 100000},
    {"preflight", "on_", K_VERDICT, C(reject), NULL},              /* defaults: pf_codes[] */
    {"cups", "server", K_SERVER, C(cups_server), NULL},
    {"cups", "poll_interval", K_DURATION, C(poll_interval_ms), "2s", 100, DUR_MAX},
    {"tls", "listen", K_LISTEN, C(tls_listen), NULL},
    {"tls", "certificate", K_PATH, C(tls_certificate), NULL},
    {"tls", "key", K_PATH, C(tls_key), NULL},
    {"tls", "client_ca", K_PATH, C(tls_client_ca), NULL},
    {"tls", "submit_cn", K_LIST, C(tls_submit_cn), NULL},
    {"tls", "admin_cn", K_LIST, C(tls_admin_cn), NULL},
    {"printer", "queue", K_QUEUE, P(queue), NULL},                 /* default: NAME */
    {"printer", "media", K_MEDIA_LIST, P(media), NULL},            /* default: default_media */
    {"printer", "color", K_BOOL, P(color), "false"},
    {"printer", "duplex", K_BOOL, P(duplex), "false"},
    {"printer", "ppm", K_INT, P(ppm), "20", 1, 10000},
    {"printer", "max_inflight", K_INT, P(max_inflight), "2", 1, 100},
    {"printer", "cover_sheet", K_BOOL, P(cover_sheet), "false"},
};

struct loader {
    const char *path;
    GHashTable *lines;     /* "[section]" or "[section]key" -> line */
    char *err;             /* malloc'd message; the first one wins */
};

/* The line of a section header (key NULL) or of a key; 0 if unknown. */
static int line_of(struct loader *ld, const char *section, const char *key)
{
    if (!ld->lines || !section)
        return 0;
    char *k = g_strdup_printf("[%s]%s", section, key ? key : "");
    int line = GPOINTER_TO_INT(g_hash_table_lookup(ld->lines, k));
    g_free(k);
    return line;
}

/* Record "FILE:LINE: [section] key: what" (line 0: look it up, < 0: none);
 * returns -1. */
static int G_GNUC_PRINTF(5, 6)
fail(struct loader *ld, int line, const char *section, const char *key, const char *fmt, ...)
{
    if (ld->err)
        return -1;
    if (line == 0)
        line = line_of(ld, section, key);
    GString *s = g_string_new(ld->path);
    if (line > 0)
        g_string_append_printf(s, ":%d", line);
    g_string_append(s, ": ");
    if (section)
        g_string_append_printf(s, "[%s]%s%s: ", section, key ? " " : "", key ? key : "");
    va_list ap;
    va_start(ap, fmt);
    g_string_append_vprintf(s, fmt, ap);
    va_end(ap);
    ld->err = strdup(s->str);
    g_string_free(s, TRUE);
    return -1;
}

/* v in the file's own notation ("16M", "100ms"). */
static void amount(enum ktype t, int64_t v, char *buf, size_t len)
{
    static const struct { enum ktype t; int64_t mul; const char *unit; } units[] = {
        {K_SIZE, 1 << 30, "G"}, {K_SIZE, 1 << 20, "M"}, {K_SIZE, 1 << 10, "K"},
        {K_DURATION, DAY_MS, "d"}, {K_DURATION, 3600000, "h"}, {K_DURATION, 60000, "m"},
        {K_DURATION, 1000, "s"}, {K_DURATION, 1, "ms"}};
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++)
        if (units[i].t == t && v && v % units[i].mul == 0) {
            snprintf(buf, len, "%lld%s", (long long)(v / units[i].mul), units[i].unit);
            return;
        }
    snprintf(buf, len, "%lld", (long long)v);
}

/* What k expects, with its range (g_free). */
static char *expected(const struct key *k)
{
    char lo[32], hi[32];
    if (k->type != K_INT && k->type != K_SIZE && k->type != K_DURATION)
        return g_strdup(types[k->type].expect);
    amount(k->type, k->min, lo, sizeof lo);
    amount(k->type, k->max, hi, sizeof hi);
    const char *sep = k->type == K_INT ? " " : ", ";
    if (k->max == INT64_MAX)
        return g_strdup_printf("%s%sat least %s", types[k->type].expect, sep, lo);
    return g_strdup_printf("%s%sfrom %s to %s", types[k->type].expect, sep, lo, hi);
}

static bool is_string(enum ktype t) { return t <= K_MEDIA; }
static bool is_list(enum ktype t) { return t == K_LIST || t == K_MEDIA_LIST; }

/* Parse s (stripped) as the value of k (code: index for on_<code>) into the
 * field at base.  NULL on success, else what is wrong (g_free). */
static char *key_set(const struct key *k, int code, const char *s, void *base)
{
    void *field = (char *)base + k->off;
    char **items = g_strsplit(s, ",", is_list(k->type) ? -1 : 1);
    char *exp = expected(k), *what = NULL;
    uint64_t size = 0;
    int64_t v = 0;

    if (!*s)
        what = g_strdup_printf("empty value (expected %s; leave the key out for its default)", exp);
    for (int i = 0; items[i] && !what; i++) {
        if (!*g_strstrip(items[i]))
            what = g_strdup_printf("item %d of \"%s\" is empty (expected %s)", i + 1, s, exp);
        else if (!g_regex_match_simple(types[k->type].re, items[i], G_REGEX_RAW, 0))
            what = g_strdup_printf("bad value \"%s\" (expected %s)", items[i], exp);
    }
    if (what)
        goto out;
    switch (k->type) {
    case K_LIST: case K_MEDIA_LIST:
        g_strfreev(*(char ***)field);
        *(char ***)field = items;
        items = NULL;
        goto out;
    case K_BOOL:
        *(bool *)field = s[0] == 't';
        goto out;
    case K_VERDICT:
        ((bool *)field)[code] = s[0] == 'r';
        goto out;
    case K_MODE: case K_INT:
        v = strtoll(s, NULL, k->type == K_MODE ? 8 : 10);   /* the form bounds the digits */
        break;
    case K_SIZE:   /* overflow: out of range */
        size = parse_size(s, &size) < 0 ? UINT64_MAX : size;
        v = size > INT64_MAX ? INT64_MAX : (int64_t)size;
        break;
    case K_DURATION:
        v = parse_duration_ms(s, &v) < 0 ? INT64_MAX : v;
        break;
    default:       /* strings */
        g_free(*(char **)field);
        *(char **)field = g_strdup(s);
        goto out;
    }
    if (v < k->min || v > k->max || size > (uint64_t)k->max)
        what = g_strdup_printf("%s is out of range (expected %s)", s, exp);
    else if (k->type == K_MODE)
        *(mode_t *)field = (mode_t)v;
    else if (k->type == K_SIZE)
        *(uint64_t *)field = size;
    else if (k->type == K_DURATION)
        *(int64_t *)field = v;
    else
        *(int *)field = (int)v;
out:
    g_strfreev(items);
    g_free(exp);
    return what;
}

/* Set the defaults of the printer section, or of all others, in base; or
 * (set false) free their strings and lists. */
static void fields_walk(void *base, bool printer, bool set)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const struct key *k = &keys[i];
        void *field = (char *)base + k->off;
        if ((strcmp(k->section, "printer") == 0) != printer)
            continue;
        if (!set && is_string(k->type))
            g_free(*(char **)field);
        else if (!set && is_list(k->type))
            g_strfreev(*(char ***)field);
        else if (set && k->def && key_set(k, -1, k->def, base))
            g_error("conf: the built-in default of %s is refused", k->name);   /* aborts */
        else if (set && is_list(k->type))
            *(char ***)field = g_new0(char *, 1);
        for (int c = 0; set && k->type == K_VERDICT && c < PF_CODE_COUNT; c++)
            ((bool *)field)[c] = pf_codes[c].reject;
    }
}

/* Index section headers and keys by line; refuse what GKeyFile would hide.
 * 0 / -1. */
static int text_index(struct loader *ld, const char *text)
{
    char **lines = g_strsplit(text, "\n", -1);
    char *section = NULL;
    int rc = 0;

    for (int i = 0; lines[i] && rc == 0; i++) {
        char *l = g_strstrip(lines[i]), *idx = NULL;
        size_t n = strlen(l);
        int line = i + 1, first = 0;
        if (n == 0 || l[0] == '#')
            continue;
        if (l[0] == '[' && n >= 3 && l[n - 1] == ']' && strcspn(l + 1, "[]") == n - 2) {
            g_free(section);
            section = g_strndup(l + 1, n - 2);
            idx = g_strdup_printf("[%s]", section);
        } else if (l[0] == '[' || l[0] == '=' || !strchr(l, '=')) {
            rc = fail(ld, line, NULL, NULL,
                      "bad line \"%s\" (expected [section], key = value or # comment)", l);
        } else if (!section) {
            rc = fail(ld, line, NULL, NULL, "key before any section (expected a [section] first)");
        } else if (strcspn(l, "[]") < strcspn(l, "=")) {   /* GKeyFile would skip it */
            rc = fail(ld, line, section, NULL, "localised key in \"%s\" (expected key = value)", l);
        } else {
            l[strcspn(l, "=")] = '\0';
            idx = g_strdup_printf("[%s]%s", section, g_strchomp(l));
        }
        if (idx && (first = GPOINTER_TO_INT(g_hash_table_lookup(ld->lines, idx)))) {
            const char *key = strchr(idx, ']') + 1;
            rc = fail(ld, line, section, *key ? key : NULL, "%s (first at line %d)",
                      *key ? "set twice" : "duplicate section", first);
            g_free(idx);
        } else if (idx) {
            g_hash_table_insert(ld->lines, idx, GINT_TO_POINTER(line));
        }
    }
    g_free(section);
    g_strfreev(lines);
    return rc;
}

/* The row of key name in section; *code is the index for on_<code> (-1 if
 * no such code).  NULL if unknown. */
static const struct key *key_find(const char *section, const char *name, int *code)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].section, section))
            continue;
        if (keys[i].type == K_VERDICT && strncmp(name, "on_", 3) == 0) {
            *code = pf_code_lookup(name + 3);
            return &keys[i];
        }
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

/* Refuse key name of group, listing what its section has. -1. */
static int key_unknown(struct loader *ld, const char *group, const char *section, const char *name)
{
    bool code = strcmp(section, "preflight") == 0 && strncmp(name, "on_", 3) == 0;
    GString *s = g_string_new(code ? "on_ and one of: " : "one of: ");
    for (size_t i = 0; i < G_N_ELEMENTS(keys) && !code; i++)
        if (strcmp(keys[i].section, section) == 0)
            g_string_append_printf(s, "%s%s, ", keys[i].name, keys[i].type == K_VERDICT ? "<code>" : "");
    for (int c = 0; c < PF_CODE_COUNT && code; c++)
        g_string_append_printf(s, "%s, ", pf_codes[c].name);
    g_string_truncate(s, s->len - 2);
    fail(ld, 0, group, name, "unknown %s (expected %s)", code ? "preflight code" : "key", s->str);
    g_string_free(s, TRUE);
    return -1;
}

/* A [printer NAME] section: a new printer with its defaults; NULL if refused. */
static struct conf_printer *printer_add(struct loader *ld, struct conf *c, const char *group)
{
    const char *name = group + strlen("printer");
    name += strspn(name, " \t");
    if (!g_regex_match_simple("^[A-Za-z0-9_.-]{1,63}$", name, 0, 0)) {
        fail(ld, 0, group, NULL, "bad printer name \"%s\" (expected [printer NAME] with NAME "
             "of 1 to 63 letters, digits, _ . -)", name);
        return NULL;
    }
    for (size_t i = 0; i < c->nprinters; i++)
        if (strcmp(c->printers[i].name, name) == 0) {
            fail(ld, 0, group, NULL, "duplicate printer \"%s\"", name);
            return NULL;
        }
    c->printers = g_renew(struct conf_printer, c->printers, c->nprinters + 1);
    struct conf_printer *p = &c->printers[c->nprinters++];
    memset(p, 0, sizeof *p);
    p->name = g_strdup(name);
    fields_walk(p, true, true);
    return p;
}

/* Check and apply every key of one group. 0 / -1. */
static int group_load(struct loader *ld, GKeyFile *kf, const char *group, struct conf *c)
{
    bool printer = strncmp(group, "printer", 7) == 0 && strchr(" \t", group[7]);  /* also "" */
    const char *section = printer ? "printer" : group;
    void *base = c;
    bool known = false;

    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        known = known || strcmp(section, keys[i].section) == 0;
    if (!known)
        return fail(ld, 0, group, NULL, "unknown section (expected [daemon], [retention], "
                    "[preflight], [cups], [tls] or [printer NAME])");
    if (printer && !(base = printer_add(ld, c, group)))
        return -1;

    char **names = g_key_file_get_keys(kf, group, NULL, NULL);
    int rc = 0;
    for (int i = 0; names && names[i] && rc == 0; i++) {
        int code = 0;
        GError *ge = NULL;
        const struct key *k = key_find(section, names[i], &code);
        if (!k || code < 0) {
            rc = key_unknown(ld, group, section, names[i]);
            break;
        }
        char *v = g_key_file_get_string(kf, group, names[i], &ge);
        char *what = v ? key_set(k, code, g_strstrip(v), base) : g_strdup(ge->message);
        if (what)
            rc = fail(ld, 0, group, names[i], "%s", what);
        g_clear_error(&ge);
        g_free(what);
        g_free(v);
    }
    g_strfreev(names);
    return rc;
}

/* Printer defaults that depend on [daemon], and checks across keys. 0 / -1. */
static int conf_finish(struct loader *ld, struct conf *c)
{
    for (size_t i = 0; i < c->nprinters; i++) {
        struct conf_printer *p = &c->printers[i];
        if (!p->queue)
            p->queue = g_strdup(p->name);
        if (!p->media[0]) {
            g_free(p->media);
            p->media = g_strsplit(c->default_media, ",", -1);   /* one item */
        }
    }
    if (c->tls_listen && (!c->tls_certificate || !c->tls_key || !c->tls_client_ca))
        return fail(ld, 0, "tls", "listen", "a TLS listener needs certificate, key and "
                    "client_ca (missing:%s%s%s)", c->tls_certificate ? "" : " certificate",
                    c->tls_key ? "" : " key", c->tls_client_ca ? "" : " client_ca");
    return 0;
}

/* More checks than cores: a check spends part of its time off the CPU
 * (the helper server forks each child in turn, relays its report, and
 * the next document waits for the daemon to take the verdict), so with
 * one check a core the cores idle meanwhile, and with more checks in
 * flight the daemon commits more verdicts at once.  Measured on 2 cores
 * with bench/intake.sh's one-page uploads (bench/README.md): 3 checks
 * ~880 jobs/s, 4 ~920, 6 ~950, 8 ~940.  A check may take up to `memory`
 * of address space, so the default never lets them together claim more
 * than half the memory.  Cores and memory are what this process may use
 * (sysres.c): a unit's CPUQuota= or MemoryMax=, or a container's limits,
 * count, not only the machine's size. */
int conf_workers_within(long cpus, uint64_t total, uint64_t memory)
{
    uint64_t n = 2 * (uint64_t)(cpus < 1 ? 1 : cpus) + 2;

    if (total > 0 && memory > 0) {
        uint64_t fit = total / 2 / memory;
        if (n > fit)
            n = fit < 1 ? 1 : fit;
    }
    return n > 64 ? 64 : (int)n;
}

int conf_default_workers(uint64_t memory)
{
    struct sysres r;

    sysres_get(&r);
    return conf_workers_within(r.cpus, r.memory, memory);
}

struct conf *conf_load(const char *path, char **err)
{
    struct loader ld = {.path = path};
    struct conf *c = g_new0(struct conf, 1);
    GKeyFile *kf = NULL;
    GError *ge = NULL;
    char *text = NULL, **groups = NULL;
    gsize len = 0;

    if (err)
        *err = NULL;
    fields_walk(c, false, true);
    if (!path) {
        c->workers = conf_default_workers(c->memory);
        return c;
    }
    c->path = g_strdup(path);
    ld.lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    kf = g_key_file_new();
    /* A message of text_index stays: fail() keeps the first one. */
    if (!g_file_get_contents(path, &text, &len, &ge) || memchr(text, '\0', len) ||
        text_index(&ld, text) < 0 || !g_key_file_load_from_data(kf, text, len, 0, &ge)) {
        fail(&ld, -1, NULL, NULL, "%s", ge ? ge->message : "a NUL byte (expected a text file)");
        goto fail;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (int i = 0; groups[i]; i++)
        if (group_load(&ld, kf, groups[i], c) < 0)
            goto fail;
    if (conf_finish(&ld, c) == 0) {
        if (c->workers == 0)          /* (a value set is at least 1) */
            c->workers = conf_default_workers(c->memory);
        goto out;
    }
fail:
    conf_free(c);
    c = NULL;
    if (err)
        *err = ld.err;
    else
        free(ld.err);
out:
    g_clear_error(&ge);
    g_strfreev(groups);
    g_key_file_free(kf);
    g_free(text);
    g_hash_table_destroy(ld.lines);
    return c;
}

void conf_free(struct conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nprinters; i++) {
        fields_walk(&c->printers[i], true, false);
        g_free(c->printers[i].name);
    }
    g_free(c->printers);
    fields_walk(c, false, false);
    g_free(c->path);
    g_free(c);
}

const struct conf_printer *conf_printer_find(const struct conf *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->nprinters; i++)
        if (strcmp(c->printers[i].name, name) == 0)
            return &c->printers[i];
    return NULL;
}
