/* client.c - blocking authenticated connection with timeouts. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/addr.h"
#include "rtcms_error.h"

struct net_client {
	int fd;
	int timeout_ms;
	uint32_t next_request;
	struct proto_session session;
	struct proto_error last_error;
	uint8_t *rbuf;   /* one received frame, opened in place */
	uint8_t *wbuf;   /* one frame to send (a raw tail is sent from where
			  * it is: proto_session_seal_parts) */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return RTCMS_ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == 0)
			return RTCMS_ETIMEDOUT;
		if (errno != EINTR)
			return RTCMS_ECONN;
	}
}

/* Send or receive (events POLLOUT or POLLIN) all len bytes of buf within
 * the client's timeout: 0, RTCMS_ETIMEDOUT, or RTCMS_ECONN (an error or
 * the peer's end of the stream). */
static int io_all(struct net_client *c, uint8_t *buf, size_t len, short events, int more)
{
	uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;

	while (len > 0) {
		ssize_t n = events == POLLOUT
				    ? send(c->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0))
				    : recv(c->fd, buf, len, 0);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c->fd, events, deadline);
			if (rc)
				return rc;
			continue;
		}
		return RTCMS_ECONN;
	}
	return 0;
}

static int write_all(struct net_client *c, const uint8_t *buf, size_t len)
{
	return io_all(c, (uint8_t *)buf, len, POLLOUT, 0);
}

static int read_all(struct net_client *c, uint8_t *buf, size_t len)
{
	return io_all(c, buf, len, POLLIN, 0);
}

/* Seal a message into c->wbuf and send it: whole, or (a raw tail) its
 * header and head, the tail from where it is, then the tag. */
static int seal_send(struct net_client *c, uint8_t type, uint16_t flags, uint32_t request,
		     const union proto_msg *msg)
{
	struct proto_frame_parts f;
	int rc = proto_session_seal_parts(&c->session, type, flags, 0, request, msg, c->wbuf,
					  PROTO_MAX_FRAME, &f);
	if (rc)
		return rc;
	if (!f.tail_len)
		return write_all(c, c->wbuf, f.head_len + PROTO_TAG_SIZE);
	if ((rc = io_all(c, c->wbuf, f.head_len, POLLOUT, 1)) != 0 ||
	    (rc = io_all(c, (uint8_t *)f.tail, f.tail_len, POLLOUT, 1)) != 0)
		return rc;
	return write_all(c, c->wbuf + f.head_len, PROTO_TAG_SIZE);
}

/* Read one whole frame into c->rbuf; returns its size or an error. */
static int read_frame(struct net_client *c, struct proto_header *hdr)
{
	int rc = read_all(c, c->rbuf, PROTO_HEADER_SIZE);
	if (rc)
		return rc;
	rc = proto_header_decode(c->rbuf, PROTO_HEADER_SIZE, hdr);
	if (rc < 0)
		return rc;
	size_t total = proto_frame_size(hdr->length);
	rc = read_all(c, c->rbuf + PROTO_HEADER_SIZE, total - PROTO_HEADER_SIZE);
	if (rc)
		return rc;
	return (int)total;
}

static struct net_client *conn_alloc(int timeout_ms);

static int dial(const char *addr, int timeout_ms, int *out)
{
	struct sockaddr_storage ss;
	int rc = net_addr_parse(addr, 0, &ss);
	if (rc)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return RTCMS_ECONN;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	socklen_t sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6);
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		if (errno != EINPROGRESS) {
			close(fd);
			return RTCMS_ECONN;
		}
		rc = wait_fd(fd, POLLOUT, now_ms() + (uint64_t)timeout_ms);
		int soerr = 0;
		socklen_t el = sizeof(soerr);
		if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 ||
				soerr != 0))
			rc = RTCMS_ECONN;
		if (rc) {
			close(fd);
			errno = soerr; /* why, for the caller's log (client.h) */
			return rc;
		}
	}
	*out = fd;
	return 0;
}

int net_client_connect(const char *addr, const struct proto_key *key,
		       uint8_t role, const char *name, int timeout_ms,
		       struct net_client **out)
{
	struct net_client *c;
	struct proto_header hdr;
	int rc;

	*out = NULL;
	c = conn_alloc(timeout_ms);
	if (!c)
		return RTCMS_ENOMEM;
	rc = dial(addr, timeout_ms, &c->fd);
	if (rc) {
		int e = errno; /* why the connect failed (client.h) */
		net_client_free(c);
		errno = e;
		return rc;
	}
	errno = 0;
	proto_session_init(&c->session, key, true, 0);
	rc = proto_session_hello(&c->session, role, name, c->wbuf, PROTO_MAX_FRAME);
	if (rc < 0)
		goto fail;
	rc = write_all(c, c->wbuf, (size_t)rc);
	if (rc)
		goto fail;
	rc = read_frame(c, &hdr);
	if (rc < 0)
		goto fail;
	rc = proto_session_finish(&c->session, c->rbuf, (size_t)rc);
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail:
	net_client_free(c);
	return rc;
}

static struct net_client *conn_alloc(int timeout_ms)
{
	struct net_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	c->next_request = 1;
	c->rbuf = malloc(PROTO_MAX_FRAME);
	c->wbuf = malloc(PROTO_MAX_FRAME);
	if (!c->rbuf || !c->wbuf) {
		net_client_free(c);
		return NULL;
	}
	return c;
}

/* Server side: a connection over fd (closed on failure) whose handshake
 * is still to be answered. */
static int accept_setup(int fd, const struct proto_key *key, int timeout_ms,
			struct net_client **out)
{
	struct net_client *c = conn_alloc(timeout_ms);
	if (!c) {
		close(fd);
		return RTCMS_ENOMEM;
	}
	c->fd = fd;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	proto_session_init(&c->session, key, false, 0);
	*out = c;
	return 0;
}

/* Answer the HELLO in c->rbuf (len bytes): HELLO_ACK, or a plain ERROR. */
static int accept_answer(struct net_client *c, const struct proto_key *key, size_t len,
			 uint8_t role, const char *name)
{
	int n = proto_session_accept(&c->session, c->rbuf, len, role, name,
				     c->wbuf, PROTO_MAX_FRAME);
	if (n < 0) {
		int m = proto_session_plain_error(key, n, n == RTCMS_EAUTH ?
						  "handshake failed: wrong cluster key" :
						  "handshake failed: malformed HELLO",
						  c->wbuf, PROTO_MAX_FRAME);
		if (m > 0)
			write_all(c, c->wbuf, (size_t)m);
		return n;
	}
	return write_all(c, c->wbuf, (size_t)n);
}

int net_client_accept(int fd, const struct proto_key *key, uint8_t role,
		      const char *name, int timeout_ms, struct net_client **out)
{
	struct net_client *c;
	struct proto_header hdr;

	*out = NULL;
	int rc = accept_setup(fd, key, timeout_ms, &c);
	if (rc)
		return rc;
	rc = read_frame(c, &hdr);
	if (rc < 0)
		goto fail;
	rc = accept_answer(c, key, (size_t)rc, role, name);
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail:
	net_client_free(c);
	return rc;
}

int net_client_accept_hello(int fd, const uint8_t *hello, size_t len,
			    const struct proto_key *key, uint8_t role, const char *name,
			    int timeout_ms, struct net_client **out)
{
	struct net_client *c;

	*out = NULL;
	if (len > PROTO_MAX_FRAME) {
		close(fd);
		return RTCMS_EPROTO;
	}
	int rc = accept_setup(fd, key, timeout_ms, &c);
	if (rc)
		return rc;
	memcpy(c->rbuf, hello, len);
	rc = accept_answer(c, key, len, role, name);
	if (rc) {
		net_client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int net_client_reply(struct net_client *c, uint8_t type, uint16_t flags,
		     uint32_t request, const union proto_msg *msg)
{
	return seal_send(c, type, flags | PROTO_F_REPLY, request, msg);
}

int net_client_reply_error(struct net_client *c, uint32_t request, int code,
			   uint64_t detail, const char *text)
{
	union proto_msg m;
	memset(&m, 0, sizeof(m));
	m.error.code = code < 0 && code >= RTCMS_EINTERNAL ? code : RTCMS_EINTERNAL;
	m.error.detail = detail;
	snprintf(m.error.text, sizeof(m.error.text), "%s", text ? text : rtcms_strerror(code));
	return net_client_reply(c, PROTO_ERROR, 0, request, &m);
}

int net_client_fd(const struct net_client *c)
{
	return c->fd;
}

void net_client_free(struct net_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	sodium_memzero(&c->session, sizeof(c->session));
	free(c);
}

int net_client_send(struct net_client *c, uint8_t type, uint16_t flags,
		    const union proto_msg *msg, uint32_t *request)
{
	uint32_t req = c->next_request++;
	if (request)
		*request = req;
	return seal_send(c, type, flags, req, msg);
}

int net_client_recv(struct net_client *c, struct proto_header *hdr,
		    union proto_msg *msg)
{
	int n = read_frame(c, hdr);
	if (n < 0)
		return n;
	return proto_session_open_inplace(&c->session, c->rbuf, (size_t)n, hdr, msg);
}

int net_client_call(struct net_client *c, uint8_t type,
		    const union proto_msg *req, uint8_t expect,
		    struct proto_header *hdr, union proto_msg *reply)
{
	uint32_t id;
	int rc = net_client_send(c, type, 0, req, &id);
	if (rc)
		return rc;
	rc = net_client_recv(c, hdr, reply);
	if (rc)
		return rc;
	if (hdr->type == PROTO_ERROR) {
		c->last_error = reply->error;
		return reply->error.code < 0 ? reply->error.code : RTCMS_EPROTO;
	}
	if (hdr->type != expect || hdr->request != id)
		return RTCMS_EPROTO;
	return 0;
}

const struct proto_error *net_client_last_error(const struct net_client *c)
{
	return &c->last_error;
}

void net_client_set_error(struct net_client *c, const struct proto_error *e)
{
	c->last_error = *e;
}

const char *net_client_peer(const struct net_client *c)
{
	return c->session.peer_name;
}

void net_client_set_timeout(struct net_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

int net_client_send_raw(struct net_client *c, const void *buf, size_t len)
{
	return write_all(c, buf, len);
}

struct proto_session *net_client_session(struct net_client *c)
{
	return &c->session;
}
