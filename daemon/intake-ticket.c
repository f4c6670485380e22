/* intake-ticket.c - the ticket of POST /v1/jobs: query fields into a job
 * (see intake-ticket.h).  The patterns are compiled once, on first use. */
#include "config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "daemon.h"
#include "http.h"
#include "intake-ticket.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* The ticket's patterns, compiled once. */
enum rx_id { RX_DIGITS, RX_ORDER, RX_MEDIA, RX_KEY, RX_COUNT };

static const char *const rx_src[RX_COUNT] = {
    [RX_DIGITS] = "^[0-9]+$",
    [RX_ORDER] = "^[A-Za-z0-9._-]{1,64}$",
    [RX_MEDIA] = "^[a-z0-9]+_[a-z0-9.-]+_[0-9.]+x[0-9.]+(mm|in)$",
    [RX_KEY] = "^[!-~]+$",
};
static regex_t rx[RX_COUNT];
static bool rx_ready;

static bool matches(enum rx_id id, const char *s)
{
    if (!rx_ready) {
        for (int i = 0; i < RX_COUNT; i++)
            if (regcomp(&rx[i], rx_src[i], REG_EXTENDED | REG_NOSUB) != 0)
                fatal("intake: cannot compile a ticket pattern");
        rx_ready = true;
    }
    return regexec(&rx[id], s, 0, NULL, 0) == 0;
}

static bool int_in(const char *s, int lo, int hi, int *out)
{
    char *end;
    if (!s || !*s || !matches(RX_DIGITS, s))
        return false;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

bool intake_ticket_parse(struct http_req *req, struct job *j)
{
    static const char *fields[] = {"order", "copies", "sides", "color", "media", "due",
                                   "priority", "hold"};
    char *v[8];
    bool bad = false, ok = false;
    const char *field = NULL, *rule = NULL;

    for (int i = 0; i < 8; i++) {
        bool b;
        v[i] = http_query_get(req->query, fields[i], &b);
        if (b && !bad) {
            bad = true;
            field = fields[i];
            rule = "is not correctly percent-encoded";
        }
    }
    if (bad)
        goto out;
    field = "order";
    rule = "is required: 1 to 64 characters from A-Z a-z 0-9 . _ -";
    if (!v[0] || !matches(RX_ORDER, v[0]))
        goto out;
    xstrlcpy(j->order, v[0], sizeof j->order);
    field = "copies";
    rule = "must be an integer from 1 to 999";
    if (v[1] && !int_in(v[1], 1, 999, &j->copies))
        goto out;
    field = "sides";
    rule = "must be one-sided, two-sided-long-edge or two-sided-short-edge";
    if (v[2]) {
        if (strcmp(v[2], "one-sided") && strcmp(v[2], "two-sided-long-edge") &&
            strcmp(v[2], "two-sided-short-edge"))
            goto out;
        xstrlcpy(j->sides, v[2], sizeof j->sides);
    }
    field = "color";
    rule = "must be monochrome or color";
    if (v[3]) {
        if (strcmp(v[3], "monochrome") && strcmp(v[3], "color"))
            goto out;
        xstrlcpy(j->color, v[3], sizeof j->color);
    }
    field = "media";
    rule = "must be a PWG self-describing media name such as iso_a4_210x297mm";
    if (v[4] && !matches(RX_MEDIA, v[4]))
        goto out;
    if (v[4])                    /* (absent: left empty, the caller's default) */
        xstrlcpy(j->media, v[4], sizeof j->media);
    field = "due";
    rule = "must be an RFC 3339 date-time such as 2026-11-24T17:30:00+01:00";
    if (v[5] && time_parse_rfc3339(v[5], &j->due) < 0)
        goto out;
    field = "priority";
    rule = "must be an integer from 1 to 100";
    if (v[6] && !int_in(v[6], 1, 100, &j->priority))
        goto out;
    field = "hold";
    rule = "must be true or false";
    if (v[7]) {
        if (strcmp(v[7], "true") && strcmp(v[7], "false"))
            goto out;
        j->hold = strcmp(v[7], "true") == 0;
    }
    ok = true;
out:
    for (int i = 0; i < 8; i++)
        free(v[i]);
    if (!ok) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s %s", field, rule);
        metrics_upload_rejected("bad-ticket");
        http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-ticket",
                                              "field", field, "message", msg));
    }
    return ok;
}

bool intake_key_valid(const char *key)
{
    return matches(RX_KEY, key);
}
