/* http.c - copeesctl's client for copeesd's socket (see ctl.h).
 *
 * Design notes: one libcurl easy handle for the whole run (a command over
 * several ids reuses the connection).  Requests have no body; a POST is
 * sent with an empty body and no Content-Type, since copeesd's actions
 * take their arguments in the path and query.  The exit code is decided
 * here, once: a connect() refused for permissions (EACCES/EPERM) is "not
 * allowed" like a 403, any other failure to connect is "unreachable", and
 * the HTTP status maps 404/403/409 to their codes; everything else is a
 * plain error carrying copeesd's own message when it gave one.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "ctl.h"

static CURL *curl;
static const char *sock_path;

int ctl_http_open(const char *path)
{
    sock_path = path;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(curl = curl_easy_init()))
        return -1;
    return 0;
}

void ctl_http_close(void)
{
    if (curl)
        curl_easy_cleanup(curl);
    curl = NULL;
    curl_global_cleanup();
}

char *ctl_escape(const char *s)
{
    char *e = curl_easy_escape(curl, s, 0), *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

/* The exit code and message for a failed transfer. */
static int transfer_error(CURLcode cc, const char *cerr, const char *method, const char *path,
                          char *err, size_t errlen)
{
    long oserr = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
    if (cc == CURLE_COULDNT_CONNECT && (oserr == EACCES || oserr == EPERM)) {
        snprintf(err, errlen, "cannot connect to copeesd at %s: %s", sock_path, strerror((int)oserr));
        return CTL_EXIT_FORBIDDEN;
    }
    if (cc == CURLE_COULDNT_CONNECT) {
        snprintf(err, errlen, "cannot connect to copeesd at %s: %s (is copeesd running?)", sock_path,
                 oserr ? strerror((int)oserr) : *cerr ? cerr : curl_easy_strerror(cc));
        return CTL_EXIT_UNREACHABLE;
    }
    snprintf(err, errlen, "%s %s: %s", method, path, *cerr ? cerr : curl_easy_strerror(cc));
    return CTL_EXIT_ERROR;
}

int ctl_api_call(const char *method, const char *path, json_t **out, char *err, size_t errlen)
{
    char url[2048], cerr[CURL_ERROR_SIZE] = "", *body = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&body, &len);   /* the answer's body */
    struct curl_slist *hdr = NULL;
    long status = 0;
    json_error_t jerr;
    json_t *j;
    CURLcode cc;
    int rc = CTL_EXIT_ERROR;

    *out = NULL;
    if (!mem) {
        snprintf(err, errlen, "out of memory");
        return CTL_EXIT_ERROR;
    }
    snprintf(url, sizeof url, "http://localhost%s", path);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    hdr = curl_slist_append(hdr, "Content-Type:");   /* no form type on bodiless POSTs */
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock_path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "copeesctl/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, mem);   /* curl's default writer: fwrite */
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(curl);
    curl_slist_free_all(hdr);
    fclose(mem);
    if (cc != CURLE_OK) {
        rc = transfer_error(cc, cerr, method, path, err, errlen);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    j = json_loadb(body, len, 0, &jerr);
    if (status >= 200 && status < 300) {
        if (!(*out = j))
            snprintf(err, errlen, "%s %s: copeesd's answer is not JSON", method, path);
        rc = j ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        goto out;
    }
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg && *msg)
        snprintf(err, errlen, "%s", msg);
    else
        snprintf(err, errlen, "%s %s: copeesd answered HTTP %ld", method, path, status);
    json_decref(j);
    rc = status == 404 ? CTL_EXIT_NOT_FOUND : status == 403 ? CTL_EXIT_FORBIDDEN
       : status == 409 ? CTL_EXIT_CONFLICT : CTL_EXIT_ERROR;
out:
    free(body);
    return rc;
}
