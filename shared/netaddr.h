/*
 * netaddr.h - the numeric addresses daemons listen on ("127.0.0.1:8080", "[::1]:9000", port 0 allowed).
 */
#ifndef BGW_NETADDR_H
#define BGW_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Parse addr ("IPv4:PORT" or "[IPv6]:PORT", numeric, PORT 0-65535) into *ss and *len. Returns 0, or -1
 * with err set to one line naming the flag it came from ("--listen: \"x\" is not ADDR:PORT").
 */
int bgw_listen_addr(const char *flag, const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                    char *err, size_t errlen);

#endif
