/* http-query.c - query strings of API requests (see http.h,
 * http_query_get). */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

char *http_query_get(const char *query, const char *name, bool *bad)
{
    size_t nl = strlen(name);
    const char *p = query;
    *bad = false;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = seg - nl - 1;
            char *out = malloc(vl + 1), *o = out;
            if (!out)
                return NULL;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] == '%') {
                    int h, l;
                    if (i + 2 >= vl) {
                        *bad = true;
                        free(out);
                        return NULL;
                    }
                    h = hexval((unsigned char)v[i + 1]);
                    l = hexval((unsigned char)v[i + 2]);
                    if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                        *bad = true;
                        free(out);
                        return NULL;
                    }
                    *o++ = (char)(h * 16 + l);
                    i += 2;
                } else {
                    *o++ = v[i];
                }
            }
            *o = '\0';
            return out;
        }
        if (seg == nl && strncmp(p, name, nl) == 0)
            return strdup("");
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}
