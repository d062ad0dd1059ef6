/* hbthread.c - a heartbeat thread with its own UDP socket (hbthread.h). */
#include "hbthread.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "net/addr.h"
#include "rtcms_error.h"
#include "util/tsan.h"

struct hb_thread {
	struct hb_thread_options o;
	int fd;
	pthread_t thread;
	atomic_int stop;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool rt_thread_promote(const char *who, int prio)
{
	static atomic_int warned;
	struct sched_param sp = { .sched_priority = prio };
	int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	if (e == 0) {
		log_info("%s: real-time priority (SCHED_FIFO %d)", who, prio);
		return true;
	}
	if (atomic_exchange(&warned, 1) == 0)
		log_warn("%s: no real-time priority (%s; needs root or CAP_SYS_NICE, e.g. "
			 "LimitRTPRIO= in the unit): they run at normal priority and a "
			 "loaded machine can delay them", who, strerror(e));
	return false;
}

int rt_mutex_init(uv_mutex_t *m)
{
	/* on Unix a uv_mutex_t is a pthread_mutex_t: libuv's lock, unlock and
	 * condition waits work on it whatever its attributes */
	pthread_mutexattr_t attr;
	int ok = pthread_mutexattr_init(&attr) == 0;
	if (ok) {
		ok = pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT) == 0 &&
		     pthread_mutex_init(m, &attr) == 0;
		pthread_mutexattr_destroy(&attr);
	}
	if (ok)
		return 0;
	uv_mutex_init(m);
	return RTCMS_EINTERNAL;
}

/* ThreadSanitizer reserves terabytes of shadow memory and gives pages of
 * it back with madvise(MADV_DONTNEED), which locked pages refuse: with
 * MCL_FUTURE every shadow page touched would stay resident for good. A
 * TSan build never locks its memory. */
void rt_lock_memory(const char *who)
{
#ifdef RTCMS_THREAD_SANITIZER
	log_info("%s: memory not locked (a ThreadSanitizer build never locks it)", who);
#else
#ifdef MCL_ONFAULT
	int flags = MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT;
#else
	int flags = MCL_CURRENT | MCL_FUTURE;
#endif
	struct rlimit rl;
	if (geteuid() != 0 && (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur != RLIM_INFINITY)) {
		/* a bounded limit would make later allocations fail */
		log_info("%s: memory not locked (not root and LimitMEMLOCK is not infinity)",
			 who);
		return;
	}
	if (mlockall(flags) == 0)
		log_info("%s: memory locked (mlockall): no page of it is swapped out", who);
	else
		log_warn("%s: memory not locked (mlockall: %s; needs root, CAP_IPC_LOCK or "
			 "LimitMEMLOCK=infinity)", who, strerror(errno));
#endif
}

static void *run(void *arg)
{
	struct hb_thread *t = arg;
	uint8_t buf[2048];
	uint64_t next = mono_ms();

	rt_thread_promote(t->o.who, 50);
	while (!atomic_load(&t->stop)) {
		uint64_t now = mono_ms();
		if (t->o.interval_ms && now >= next) {
			t->o.tick(t->o.ctx, t);
			next += t->o.interval_ms;
			if (next <= now) /* stalled (SIGSTOP): no burst of catch-ups */
				next = now + t->o.interval_ms;
			continue;
		}
		int wait = t->o.interval_ms ? (int)(next - now) : 100;
		if (wait > 100)
			wait = 100; /* look at stop now and then */
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		if (poll(&p, 1, wait) <= 0)
			continue;
		for (;;) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(t->fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fl);
			if (n < 0)
				break;
			t->o.recv(t->o.ctx, t, buf, (size_t)n, (struct sockaddr *)&from, fl);
		}
	}
	return NULL;
}

int hb_thread_start(const struct hb_thread_options *o, struct hb_thread **out)
{
	struct sockaddr_storage ss;
	*out = NULL;
	if (net_addr_parse(o->bind, 1, &ss) != 0)
		return RTCMS_EINVAL;
	if (o->any_port && ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else if (o->any_port)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	struct hb_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return RTCMS_ENOMEM;
	t->o = *o;
	t->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	socklen_t sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6);
	if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&ss, sl) != 0) {
		log_error("cannot open a UDP socket on %s for %s: %s", o->bind, o->who,
			  strerror(errno));
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		return RTCMS_EIO;
	}
	if (pthread_create(&t->thread, NULL, run, t) != 0) {
		close(t->fd);
		free(t);
		return RTCMS_ENOMEM;
	}
	*out = t;
	return 0;
}

void hb_thread_stop(struct hb_thread *t)
{
	if (!t)
		return;
	atomic_store(&t->stop, 1);
	pthread_join(t->thread, NULL);
	close(t->fd);
	free(t);
}

int hb_thread_send(struct hb_thread *t, const void *buf, size_t len,
		   const struct sockaddr *to)
{
	socklen_t sl = to->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);
	return sendto(t->fd, buf, len, MSG_DONTWAIT, to, sl) == (ssize_t)len ? 0 : RTCMS_EIO;
}
