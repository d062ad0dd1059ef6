/* addr.c - parse and format numeric host:port addresses. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtcms_error.h"

int net_addr_parse(const char *s, int allow_port0, struct sockaddr_storage *out)
{
	char host[64];
	const char *colon;
	char *end;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return RTCMS_EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			return RTCMS_EINVAL;
		memcpy(host, s + 1, hlen);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return RTCMS_EINVAL;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host))
			return RTCMS_EINVAL;
		memcpy(host, s, hlen);
	}
	host[hlen] = '\0';
	if (colon[1] == '\0')
		return RTCMS_EINVAL;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535 || (port == 0 && !allow_port0))
		return RTCMS_EINVAL;

	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return RTCMS_EINVAL;
}

static int addr_check(const char *s, int allow_port0, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	if (net_addr_parse(s, allow_port0, &ss) == 0)
		return 0;
	snprintf(why, whylen, "\"%s\" is not a numeric host:port (e.g. 127.0.0.1:7400 "
		 "or [::1]:7400%s)", s, allow_port0 ? "; port 0 picks a free port" : "");
	return RTCMS_ECONFIG;
}

int net_addr_check_listen(const char *s, char *why, size_t whylen)
{
	return addr_check(s, 1, why, whylen);
}

int net_addr_check_peer(const char *s, char *why, size_t whylen)
{
	return addr_check(s, 0, why, whylen);
}

char *net_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "unknown");
	}
	return buf;
}
