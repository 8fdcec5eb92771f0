/*
 * config_syntax.c - lexical checks of the strings in a config document: object names, normalised paths,
 * host names and host patterns, "host:port", header names, CORS origins, URLs and Kubernetes names.
 *
 * Each check takes a NUL-terminated string and returns NULL when it is well formed, else a short static
 * text saying what is wrong ("must start with '/'"), which the caller puts after the field path.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define HOSTNAME_MAX 253
#define LABEL_MAX 63

static bool is_alpha(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_alnum(char ch) { return is_alpha(ch) || is_digit(ch); }

/* RFC 9110 tchar. */
static bool is_tchar(char ch)
{
    return is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Printable ASCII other than space. */
static bool is_visible(char ch) { return ch > 0x20 && ch < 0x7f; }

const char *bgw__check_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return "must not be empty";
    if (n > BGW_NAME_MAX)
        return "must be at most 128 characters";
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return "must contain only letters, digits, '.', '_' and '-'";
    return NULL;
}

static const char *path_char_problem(char ch)
{
    switch (ch) {
    case '%': return "must not contain '%' (write the path decoded)";
    case '?': return "must not contain '?' (a path has no query string)";
    case '#': return "must not contain '#'";
    case '\\': return "must not contain '\\'";
    default: return is_visible(ch) ? NULL : "must not contain spaces, control or non-ASCII characters";
    }
}

const char *bgw__check_path(const char *s)
{
    if (s[0] != '/')
        return "must start with '/'";
    for (const char *p = s; *p; p++) {
        const char *why = path_char_problem(*p);

        if (why)
            return why;
    }
    /* Segments: every '/' starts one; the first character is a '/' so seg is never empty at the start. */
    for (const char *seg = s + 1;; seg++) {
        size_t len = strcspn(seg, "/");

        if (len == 0 && seg[0] == '/')
            return "must be normalised (no \"//\")";
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return "must be normalised (no \".\" or \"..\" segments)";
        seg += len;
        if (!*seg)
            break;
    }
    return NULL;
}

const char *bgw__check_request_path(const char *s)
{
    if (s[0] != '/')
        return "must start with '/'";
    for (const char *p = s; *p; p++) {
        if (!is_visible(*p))
            return "must not contain spaces, control or non-ASCII characters";
        if (*p == '#')
            return "must not contain '#'";
    }
    return NULL;
}

const char *bgw__check_method(const char *s)
{
    if (!*s)
        return "must not be empty";
    for (const char *p = s; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return "must be an upper-case method name (A-Z)";
    return NULL;
}

const char *bgw__check_header_name(const char *s)
{
    if (!*s)
        return "must not be empty";
    for (const char *p = s; *p; p++)
        if (!is_tchar(*p))
            return "must be a header name (letters, digits and !#$%&'*+-.^_`|~)";
    return NULL;
}

const char *bgw__check_header_or_star(const char *s)
{
    return strcmp(s, "*") == 0 ? NULL : bgw__check_header_name(s);
}

const char *bgw__check_method_or_star(const char *s)
{
    if (strcmp(s, "*") == 0)
        return NULL;
    if (!*s)
        return "must not be empty";
    for (const char *p = s; *p; p++)
        if (!is_tchar(*p))
            return "must be a method name or \"*\"";
    return NULL;
}

/* A dotted quad, no leading zeros (inet_pton's rules). */
static bool is_ipv4(const char *s, size_t len)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a) == 1;
}

static bool is_ipv6(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* s[0..len): an IPv4 dotted quad or a host name of [A-Za-z0-9.-] with no empty labels. */
static const char *check_hostname(const char *s, size_t len)
{
    bool numeric = true;
    size_t label = 0;

    if (len == 0)
        return "missing host";
    if (len > HOSTNAME_MAX)
        return "host name is longer than 253 characters";
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];

        if (ch == '.') {
            if (label == 0)
                return "host name has an empty label";
            label = 0;
            continue;
        }
        if (!is_alnum(ch) && ch != '-')
            return "host name may contain only letters, digits, '.' and '-'";
        if (!is_digit(ch))
            numeric = false;
        if (++label > LABEL_MAX)
            return "host name has a label longer than 63 characters";
    }
    if (label == 0)
        return "host name has an empty label";
    if (numeric && !is_ipv4(s, len))
        return "invalid IPv4 address";
    return NULL;
}

/* A host without port: name, dotted quad or "[v6]". */
static const char *check_host(const char *s, size_t len)
{
    if (len > 0 && s[0] == '[') {
        if (s[len - 1] != ']')
            return "unterminated '[' in IPv6 address";
        return is_ipv6(s + 1, len - 2) ? NULL : "invalid IPv6 address";
    }
    if (memchr(s, ':', len))
        return "IPv6 addresses must be in brackets";
    return check_hostname(s, len);
}

const char *bgw__check_host_pattern(const char *s)
{
    size_t len = strlen(s);

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close && close[1])
            return "must be a host name without a port";
        return check_host(s, len);
    }
    if (strchr(s, ':'))
        return strchr(s, ':') == strrchr(s, ':') ? "must be a host name without a port"
                                                 : "IPv6 addresses must be in brackets";
    if (strncmp(s, "*.", 2) == 0) {
        s += 2;
        len -= 2;
    }
    if (strchr(s, '*'))
        return "a wildcard is allowed only as a leading \"*.\"";
    return check_hostname(s, len);
}

static const char *check_port(const char *s)
{
    unsigned long v = 0;
    size_t n = strlen(s);

    if (n == 0)
        return "missing port";
    if (n > 5)
        return "port must be between 1 and 65535";
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return "port must be a number";
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return "port must be between 1 and 65535";
    return NULL;
}

int bgw__hostport(const char *s, char *host, size_t hostcap, uint16_t *port, const char **why)
{
    const char *h = s, *sep;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (!close) {
            *why = "unterminated '[' in IPv6 address";
            return -1;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        sep = close + 1;
        if (*sep != ':') {
            *why = *sep ? "expected ':' after ']'" : "missing port (expected [address]:port)";
            return -1;
        }
        if (!is_ipv6(h, hlen)) {
            *why = "invalid IPv6 address";
            return -1;
        }
    } else {
        sep = strrchr(s, ':');
        if (!sep) {
            *why = "missing port (expected host:port)";
            return -1;
        }
        hlen = (size_t)(sep - s);
        if (memchr(s, ':', hlen)) {
            *why = "IPv6 addresses must be in brackets ([::1]:80)";
            return -1;
        }
        if ((*why = check_hostname(s, hlen)) != NULL)
            return -1;
    }
    if ((*why = check_port(sep + 1)) != NULL)
        return -1;
    if (host) {
        if (hlen + 1 > hostcap) {
            *why = "host is too long";
            return -1;
        }
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = (uint16_t)strtoul(sep + 1, NULL, 10);
    return 0;
}

int bgw_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port)
{
    const char *why;

    return bgw__hostport(s, host, hostcap, port, &why);
}

/* "host", "host:port", "[v6]" or "[v6]:port" - the authority of an origin or URL. */
static const char *check_authority(const char *s, size_t len)
{
    char buf[HOSTNAME_MAX + 16];
    const char *close = len && s[0] == '[' ? memchr(s, ']', len) : NULL;
    const char *why = NULL;
    bool has_port;

    if (len >= sizeof(buf))
        return "host name is longer than 253 characters";
    if (s[0] == '[')
        has_port = close && close + 1 < s + len;
    else
        has_port = memchr(s, ':', len) != NULL;
    if (!has_port)
        return check_host(s, len);
    memcpy(buf, s, len);
    buf[len] = '\0';
    bgw__hostport(buf, NULL, 0, NULL, &why);
    return why;
}

const char *bgw__check_origin(const char *s)
{
    const char *p = s;

    if (strcmp(s, "*") == 0)
        return NULL;
    if (!is_alpha(*p))
        return "must be \"*\" or scheme://host[:port]";
    while (is_alnum(*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return "must be \"*\" or scheme://host[:port]";
    p += 3;
    if (strpbrk(p, "/?#"))
        return "must be scheme://host[:port] without a path";
    return check_authority(p, strlen(p));
}

const char *bgw__check_http_url(const char *s)
{
    const char *p;
    size_t alen;

    if (strncmp(s, "https://", 8) == 0)
        p = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        p = s + 7;
    else
        return "must be an http:// or https:// URL";
    for (const char *q = p; *q; q++)
        if (!is_visible(*q))
            return "must not contain spaces, control or non-ASCII characters";
    alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen))
        return "must not contain user information";
    return check_authority(p, alen);
}

const char *bgw__check_dns_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return "must not be empty";
    if (n > LABEL_MAX)
        return "must be at most 63 characters";
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !is_digit(s[i]) && s[i] != '-')
            return "must contain only lower-case letters, digits and '-'";
    if (s[0] == '-' || s[n - 1] == '-')
        return "must start and end with a letter or digit";
    return NULL;
}

const char *bgw__check_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "must not contain control characters";
    return NULL;
}

const char *bgw__check_nonempty_printable(const char *s)
{
    return *s ? bgw__check_printable(s) : "must not be empty";
}
