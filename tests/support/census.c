/* census.c - live instances of protected programs from /proc (census.h). */
#include "census.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define ENV_KEY "RTCMS_PROCESS="
#define FOUND_MAX 64
#define SEEN_SLOTS 4096

struct proc_stat {
	char state;
	char comm[32];
	unsigned long long start; /* clock ticks after boot: tells a reused pid */
};

static int read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static int stat_of(int pid, struct proc_stat *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_text(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -1;
	size_t len = (size_t)(close_paren - open_paren - 1);
	if (len >= sizeof(out->comm))
		len = sizeof(out->comm) - 1;
	memcpy(out->comm, open_paren + 1, len);
	out->comm[len] = '\0';
	/* fields after the name: state (3) ... starttime (22) */
	if (sscanf(close_paren + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
		   "%*d %*d %*d %*d %*d %*d %llu", &out->state, &out->start) != 2)
		return -1;
	return 0;
}

static bool is_live(char state)
{
	return state != 'Z' && state != 'X' && state != 'x';
}

static bool is_stopped(char state)
{
	return state == 'T' || state == 't';
}

/* Processes whose environment was read and is nobody's of ours, by pid,
 * start time and name (an exec changes the name, and the environment) */
struct seen {
	int pid;
	unsigned long long start;
	char comm[32];
};

struct scanner {
	struct seen seen[SEEN_SLOTS];
	int seen_count;
};

static struct seen *seen_slot(struct scanner *s, int pid)
{
	return &s->seen[(unsigned)pid * 2654435761u % SEEN_SLOTS];
}

/* The RTCMS_PROCESS of pid (into id), 1; 0 if it has none; -1 if gone. */
static int process_id_of(int pid, char *id, size_t cap)
{
	char path[64];
	static __thread char env[32768];
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	int len = read_text(path, env, sizeof(env));
	if (len < 0)
		return -1;
	for (int off = 0; off < len; off += (int)strlen(env + off) + 1)
		if (strncmp(env + off, ENV_KEY, strlen(ENV_KEY)) == 0) {
			snprintf(id, cap, "%s", env + off + strlen(ENV_KEY));
			return 1;
		}
	return 0;
}

struct found {
	int pid, which;
	unsigned long long start;
};

static int scan(struct scanner *s, const char *const *ids, int n, struct census_count *out)
{
	struct found found[FOUND_MAX];
	int nf = 0;
	char id[160];

	memset(out, 0, sizeof(*out) * (size_t)n);
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		struct proc_stat st;
		if (pid <= 0 || stat_of(pid, &st) != 0 || !is_live(st.state))
			continue;
		struct seen *slot = s ? seen_slot(s, pid) : NULL;
		if (slot && slot->pid == pid && slot->start == st.start &&
		    strcmp(slot->comm, st.comm) == 0)
			continue; /* read before: not one of ours */
		int r = process_id_of(pid, id, sizeof(id));
		if (r < 0)
			continue;
		int which = -1;
		for (int i = 0; r == 1 && i < n && which < 0; i++)
			if (strcmp(id, ids[i]) == 0)
				which = i;
		if (which < 0) {
			/* an exec between stat and environ gets a new name: it
			 * is read again at the next pass */
			if (slot) {
				slot->pid = pid;
				slot->start = st.start;
				snprintf(slot->comm, sizeof(slot->comm), "%s", st.comm);
			}
			continue;
		}
		if (nf < FOUND_MAX)
			found[nf++] = (struct found){ pid, which, st.start };
	}
	closedir(d);
	/* again: what still lives now was alive during the whole pass's end */
	for (int k = 0; k < nf; k++) {
		struct proc_stat st;
		if (stat_of(found[k].pid, &st) != 0 || st.start != found[k].start ||
		    !is_live(st.state))
			continue;
		struct census_count *c = &out[found[k].which];
		if (c->live < CENSUS_PIDS_MAX)
			c->pids[c->live] = found[k].pid;
		c->live++;
		c->stopped += is_stopped(st.state);
	}
	return 0;
}

int census_scan(const char *const *ids, int n, struct census_count *out)
{
	return scan(NULL, ids, n, out);
}

struct census {
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	int n, interval_ms;
	char ids[CENSUS_IDS_MAX][160];
	const char *idp[CENSUS_IDS_MAX];
	struct census_stats stats[CENSUS_IDS_MAX];
	uint64_t started_ms, last_ms;
	struct scanner scanner;
};

static void *census_thread(void *arg)
{
	struct census *c = arg;
	struct census_count now[CENSUS_IDS_MAX];
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		int rc = scan(&c->scanner, c->idp, c->n, now);
		uint64_t t = tu_now_ms();
		pthread_mutex_lock(&c->lock);
		for (int i = 0; rc == 0 && i < c->n; i++) {
			struct census_stats *s = &c->stats[i];
			int running = now[i].live - now[i].stopped;
			s->samples++;
			s->last_live = now[i].live;
			s->last_stopped = now[i].stopped;
			if (now[i].live > s->max_live)
				s->max_live = now[i].live;
			if (running > s->max_running)
				s->max_running = running;
			if (now[i].stopped)
				s->stopped_samples++;
			if (now[i].live == 0)
				s->zero_samples++;
			if (now[i].live >= 2) {
				if (!s->double_samples) {
					s->first_double_ms = t - c->started_ms;
					if (!s->first_double_ms)
						s->first_double_ms = 1;
					memcpy(s->double_pids, now[i].pids, sizeof(s->double_pids));
					s->double_stopped = now[i].stopped;
				}
				s->double_samples++;
			}
			if (c->last_ms && t - c->last_ms > s->max_gap_ms)
				s->max_gap_ms = t - c->last_ms;
		}
		c->last_ms = t;
		pthread_mutex_unlock(&c->lock);
		next.tv_nsec += (long)c->interval_ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		struct timespec mono;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		if (mono.tv_sec > next.tv_sec ||
		    (mono.tv_sec == next.tv_sec && mono.tv_nsec > next.tv_nsec))
			next = mono; /* late (a loaded machine): no catching up */
		else
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

int census_start(const char *const *ids, int n, int interval_ms, struct census **out)
{
	if (n < 1 || n > CENSUS_IDS_MAX || interval_ms < 1)
		return -1;
	struct census *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->n = n;
	c->interval_ms = interval_ms;
	for (int i = 0; i < n; i++) {
		snprintf(c->ids[i], sizeof(c->ids[i]), "%s", ids[i]);
		c->idp[i] = c->ids[i];
	}
	pthread_mutex_init(&c->lock, NULL);
	c->started_ms = tu_now_ms();
	if (pthread_create(&c->thread, NULL, census_thread, c) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void census_get(struct census *c, int i, struct census_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats[i];
	pthread_mutex_unlock(&c->lock);
}

void census_reset(struct census *c)
{
	pthread_mutex_lock(&c->lock);
	memset(c->stats, 0, sizeof(c->stats));
	c->started_ms = tu_now_ms();
	c->last_ms = 0;
	pthread_mutex_unlock(&c->lock);
}

void census_free(struct census *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
