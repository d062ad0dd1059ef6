/*
 * addr.h - "host:port" socket addresses (IPv4 "127.0.0.2:7400", IPv6
 * "[::1]:7400"). Numeric addresses only: rtcms never resolves names, so no
 * call can hang on DNS.
 */
#ifndef RTCMS_NET_ADDR_H
#define RTCMS_NET_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parse s into *out. Returns 0 or RTCMS_EINVAL. Port 0 is allowed
 * (the kernel picks one) only if allow_port0. */
int net_addr_parse(const char *s, int allow_port0, struct sockaddr_storage *out);

/* Config checks (util/config.h's check): a numeric host:port to listen
 * on (port 0 allowed) or to reach (a peer: port 0 refused). 0, or
 * RTCMS_ECONFIG with the problem in why. */
int net_addr_check_listen(const char *s, char *why, size_t whylen);
int net_addr_check_peer(const char *s, char *why, size_t whylen);

/* Format a socket address as "host:port" into buf. Returns buf. */
char *net_addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
