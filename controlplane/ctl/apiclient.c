/*
 * apiclient.c - HTTP calls to the admin API over libcurl (see apiclient.h).
 */
#include "apiclient.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fileio.h"

#define BGW__APICLIENT_MAX_BODY (64u << 20)     /* answers larger than this are refused */

struct bgw__sink {
    char *buf;
    size_t len, cap;
    int too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct bgw__sink *s = arg;
    size_t n = size * nmemb;

    if (s->len + n + 1 > BGW__APICLIENT_MAX_BODY) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1) cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

int bgw_apiclient_init(struct bgw_apiclient *c, const char *server, const char *token, double timeout_s, char *err,
                    size_t errlen)
{
    *c = (struct bgw_apiclient){0};
    if (!server || !*server) {
        snprintf(err, errlen, "no server given");
        return -1;
    }
    const char *scheme = strstr(server, "://") ? "" : "http://";
    size_t n = strlen(scheme) + strlen(server) + 1;
    c->base = malloc(n);
    if (!c->base) goto oom;
    snprintf(c->base, n, "%s%s", scheme, server);
    for (size_t l = strlen(c->base); l > 0 && c->base[l - 1] == '/'; l--) c->base[l - 1] = '\0';
    if (strncmp(c->base, "http://", 7) != 0 && strncmp(c->base, "https://", 8) != 0) {
        snprintf(err, errlen, "server %s: only http:// and https:// URLs are supported", server);
        bgw_apiclient_cleanup(c);
        return -1;
    }
    if (token) {
        n = strlen(token) + 32;
        c->auth_header = malloc(n);
        if (!c->auth_header) goto oom;
        snprintf(c->auth_header, n, "Authorization: Bearer %s", token);
    }
    c->timeout_ms = (long)(timeout_s * 1000.0);
    if (c->timeout_ms < 1) c->timeout_ms = 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init())) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    bgw_apiclient_cleanup(c);
    return -1;
}

int bgw_apiclient_call(struct bgw_apiclient *c, const char *method, const char *path, const char *body,
                    struct bgw_apiclient_response *resp, char *err, size_t errlen)
{
    CURL *curl = c->curl;
    struct curl_slist *headers = NULL;
    struct bgw__sink sink = {0};
    char curl_err[CURL_ERROR_SIZE] = "";
    size_t n = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(n);
    int rc = -1;

    *resp = (struct bgw_apiclient_response){0};
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(url, n, "%s%s", c->base, path);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "bgwctl/" BGW_VERSION);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (c->auth_header) headers = curl_slist_append(headers, c->auth_header);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        const char *why = curl_err[0] ? curl_err : curl_easy_strerror(res);
        long os_errno = 0;
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        if (sink.too_big)
            snprintf(err, errlen, "%s %s: the answer is larger than %u MiB", method, url, BGW__APICLIENT_MAX_BODY >> 20);
        else if (res == CURLE_OPERATION_TIMEDOUT)
            snprintf(err, errlen, "no answer from %s within the timeout (%s)", c->base, why);
        else if (res == CURLE_COULDNT_CONNECT && os_errno != 0)
            snprintf(err, errlen, "cannot connect to %s: %s", c->base, strerror((int)os_errno));
        else if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST)
            snprintf(err, errlen, "cannot connect to %s: %s", c->base, why);
        else
            snprintf(err, errlen, "%s %s failed: %s", method, url, why);
        free(sink.buf);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!sink.buf && !(sink.buf = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    resp->body = sink.buf;
    resp->len = sink.len;
    rc = 0;
out:
    curl_slist_free_all(headers);
    free(url);
    return rc;
}

char *bgw_apiclient_escape(const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(name) * 3 + 1);
    char *p = out;

    if (!out) return NULL;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if (isalnum(*s) || *s == '-' || *s == '.' || *s == '_' || *s == '~') {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    return out;
}

void bgw_apiclient_response_free(struct bgw_apiclient_response *resp)
{
    free(resp->body);
    *resp = (struct bgw_apiclient_response){0};
}

void bgw_apiclient_cleanup(struct bgw_apiclient *c)
{
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->auth_header);
    *c = (struct bgw_apiclient){0};
}

char *bgw_apiclient_read_token(const char *path, char *err, size_t errlen)
{
    char why[512];
    char *tok = bgw_read_token(path, 8190, why, sizeof why);
    if (!tok) snprintf(err, errlen, "token file %s", why);
    return tok;
}
