/* netaddr.c - listen addresses (see netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int bgw_listen_addr(const char *flag, const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                    char *err, size_t errlen)
{
    memset(ss, 0, sizeof *ss);
    const char *given = addr;
    const char *colon = strrchr(addr, ':');
    char host[64];
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {   /* [v6] */
        addr++;
        hl -= 2;
    } else if (colon && memchr(addr, ':', hl)) {
        goto bad;                                           /* an IPv6 address needs its brackets */
    }
    unsigned long port = 0;
    const char *p = colon ? colon + 1 : "";
    if (!colon || hl == 0 || hl >= sizeof host || !*p || strlen(p) > 5) goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535) goto bad;
    memcpy(host, addr, hl);
    host[hl] = 0;
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    snprintf(err, errlen, "%s: \"%s\" is not a numeric IP address", flag, host);
    return -1;
bad:
    snprintf(err, errlen, "%s: \"%s\" is not ADDR:PORT", flag, given);
    return -1;
}
