/*
 * track.c - write-fault dirty tracking: the SIGSEGV handler, its table of
 * tracked ranges, and taking the dirty bitmaps at checkpoints.
 *
 * Races between the handler (any thread) and a checkpoint (track_take):
 *
 *   handler:  inflight++; mark the page's blocks; unprotect the page;
 *             inflight--
 *   take:     exchange the bitmap; busy = inflight; protect the range;
 *             if busy: wait for inflight to drain, protect it again
 *
 * A handler marks before it unprotects, so a write that completed before
 * take() was called - to a page that was writable with its mark set, or
 * one that faulted and was marked - is in the exchanged bitmap, and the
 * copy made after take() returns sees it. A handler that marked before
 * the exchange may unprotect its page after the first protect (it was in
 * flight, so busy was set): the second protect closes the page again, so
 * no page stays writable without a mark. A handler that marks after the
 * exchange marks for the next checkpoint.
 *
 * Removing a range: the slot becomes a tombstone first (a handler that
 * sees it only retries the access, a few times at most), then the range is
 * unprotected, then inflight drains, and only then the bitmap is freed.
 */
#include "track.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "area/area.h"
#include "rtcms_error.h"

#define SLOTS AREA_MAX_REGIONS

enum { FREE = 0, LIVE = 1, TOMB = 2 };

struct tslot {
	_Atomic int state;
	_Atomic int broken;          /* the handler could not unprotect a page */
	uintptr_t base;              /* block 0: the 4 KiB boundary at or below
				      * the region's start */
	uintptr_t lo, hi;            /* protected interior, page aligned */
	size_t size;                 /* from base to the region's end */
	_Atomic uint64_t *bits;      /* dirty blocks */
};

static struct tslot slots[SLOTS];
static _Atomic int inflight;
static struct sigaction prev_action;
static int installed;
static size_t page_size;

int (*track_fault_hook)(void *addr, size_t len, int write);

/* a thread that hits a tombstone retries its access a few times only */
static __thread int tomb_retries __attribute__((tls_model("initial-exec")));

static int protect(void *addr, size_t len, int write)
{
	if (track_fault_hook && track_fault_hook(addr, len, write))
		return RTCMS_EIO;
	if (mprotect(addr, len, write ? PROT_READ | PROT_WRITE : PROT_READ) != 0)
		return RTCMS_EIO;
	return 0;
}

size_t track_words(size_t size)
{
	size_t blocks = (size + AREA_BLOCK - 1) / AREA_BLOCK;
	return (blocks + 63) / 64;
}

/* The blocks of a region at base (size bytes) that [lo, hi) touches:
 * true and *first..*last, or false if none. */
static bool blocks_of(uintptr_t base, size_t size, uintptr_t lo, uintptr_t hi,
		     size_t *first, size_t *last)
{
	if (hi > base + size)
		hi = base + size;
	if (lo < base)
		lo = base;
	if (lo >= hi)
		return false;
	*first = (lo - base) / AREA_BLOCK;
	*last = (hi - 1 - base) / AREA_BLOCK;
	return true;
}

static void mark(_Atomic uint64_t *bits, uintptr_t base, size_t size, uintptr_t lo,
		 uintptr_t hi)
{
	size_t first, last;
	if (blocks_of(base, size, lo, hi, &first, &last))
		for (size_t b = first; b <= last; b++)
			atomic_fetch_or(&bits[b / 64], (uint64_t)1 << (b % 64));
}

/* mark() for a caller's own bitmap */
static void mark_plain(uint64_t *bits, uintptr_t base, size_t size, uintptr_t lo,
		       uintptr_t hi)
{
	size_t first, last;
	if (blocks_of(base, size, lo, hi, &first, &last))
		for (size_t b = first; b <= last; b++)
			bits[b / 64] |= (uint64_t)1 << (b % 64);
}

/*
 * A SIGSEGV that is not a write fault of ours gets the action the program
 * had before us (prev_action), as the kernel would have applied it:
 *
 *   a handler   called with the same arguments (three for SA_SIGINFO, else
 *               one), its sa_mask blocked meanwhile; SA_RESETHAND makes the
 *               default the action for the next one
 *   SIG_IGN     a sent signal (kill, raise, sigqueue: si_code <= 0) is
 *               ignored; a fault cannot be, so it gets the default
 *   SIG_DFL     the default is restored; a sent signal is raised again and
 *               kills the process now; a fault is left to happen again when
 *               the handler returns, so the process dies at the faulting
 *               access with the core it would have had without us
 *
 * SIGSEGV itself stays unblocked while the program's handler runs (our
 * handler is SA_NODEFER), so a write of that handler to a tracked page is
 * still served. Async-signal-safe: sigaction, pthread_sigmask, raise.
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction prev = prev_action;
	int sent = si->si_code <= 0;

	if (prev.sa_handler == SIG_IGN && sent)
		return;
	if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(sig, &dfl, NULL);
		if (sent)
			raise(sig);
		return;
	}
	if (prev.sa_flags & SA_RESETHAND) {
		prev_action.sa_flags &= ~SA_SIGINFO;
		prev_action.sa_handler = SIG_DFL;
	}
	sigset_t mask, old;
	mask = prev.sa_mask;
	sigdelset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (prev.sa_flags & SA_SIGINFO)
		prev.sa_sigaction(sig, si, uc);
	else
		prev.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	int saved = errno, tomb = 0;
	uintptr_t a = (uintptr_t)si->si_addr;

	atomic_fetch_add(&inflight, 1);
	for (int i = 0; si->si_code == SEGV_ACCERR && i < SLOTS; i++) {
		struct tslot *t = &slots[i];
		int st = atomic_load(&t->state);
		if (st == FREE || a < t->lo || a >= t->hi)
			continue;
		if (st == TOMB) {
			tomb = 1; /* a live range may still cover it: look on */
			continue;
		}
		uintptr_t page = a & ~(uintptr_t)(page_size - 1);
		mark(t->bits, t->base, t->size, page, page + page_size);
		if (protect((void *)page, page_size, 1) != 0) {
			/* cannot unprotect one page: give the whole range back to
			 * the program; the next checkpoint compares instead */
			atomic_store(&t->broken, 1);
			if (protect((void *)t->lo, t->hi - t->lo, 1) != 0 &&
			    mprotect((void *)t->lo, t->hi - t->lo, PROT_READ | PROT_WRITE) != 0)
				break;
		}
		tomb_retries = 0;
		goto retry;
	}
	/* a range removed while this fault was on its way: retry the access
	 * (it is writable now), a few times at most - after that it is a real
	 * fault in memory we no longer track */
	if (tomb && tomb_retries++ < 4)
		goto retry;
	atomic_fetch_sub(&inflight, 1);
	errno = saved;
	chain(sig, si, uc);
	return;
retry:
	atomic_fetch_sub(&inflight, 1);
	errno = saved;
}

/* Install the handler, or re-install it when the program replaced it
 * (the program's handler then becomes the one faults are chained to). */
static int install(void)
{
	struct sigaction cur;
	if (sigaction(SIGSEGV, NULL, &cur) != 0)
		return RTCMS_EIO;
	if (installed && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)
		return 0;
	if (!page_size)
		page_size = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	prev_action = cur;
	if (sigaction(SIGSEGV, &sa, NULL) != 0)
		return RTCMS_EIO;
	installed = 1;
	return 0;
}

/* Whether [lo, hi) overlaps the calling thread's stack. */
static bool on_my_stack(uintptr_t lo, uintptr_t hi)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;
	int hit = 0;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return 1; /* cannot tell: be safe */
	if (pthread_attr_getstack(&attr, &addr, &size) == 0)
		hit = lo < (uintptr_t)addr + size && (uintptr_t)addr < hi;
	else
		hit = 1;
	pthread_attr_destroy(&attr);
	return hit;
}

static void drain(void)
{
	while (atomic_load(&inflight) != 0)
		sched_yield();
}

int track_add(void *ptr, size_t size)
{
	if (install() != 0)
		return RTCMS_EIO;
	uintptr_t base = (uintptr_t)ptr;
	uintptr_t lo = (base + page_size - 1) & ~(uintptr_t)(page_size - 1);
	uintptr_t hi = (base + size) & ~(uintptr_t)(page_size - 1);
	if (size == 0 || hi <= lo || on_my_stack(base, base + size))
		return RTCMS_EINVAL;
	int pick = -1;
	for (int i = 0; i < SLOTS && pick < 0; i++)
		if (atomic_load(&slots[i].state) == FREE)
			pick = i;
	for (int i = 0; i < SLOTS && pick < 0; i++)
		if (atomic_load(&slots[i].state) == TOMB)
			pick = i;
	if (pick < 0)
		return RTCMS_EBUSY;
	_Atomic uint64_t *bits = calloc(track_words(size + base % AREA_BLOCK), sizeof(*bits));
	if (!bits)
		return RTCMS_ENOMEM;
	struct tslot *t = &slots[pick];
	atomic_store(&t->state, FREE);
	drain(); /* no handler still looks at the tombstone's range */
	/* blocks count from the 4 KiB boundary at or below the region */
	t->base = base & ~(uintptr_t)(AREA_BLOCK - 1);
	t->lo = lo;
	t->hi = hi;
	t->size = size + (base - t->base);
	t->bits = bits;
	atomic_store(&t->broken, 0);
	atomic_store(&t->state, LIVE);
	return pick;
}

static void release(struct tslot *t)
{
	atomic_store(&t->state, TOMB);
	if (protect((void *)t->lo, t->hi - t->lo, 1) != 0)
		mprotect((void *)t->lo, t->hi - t->lo, PROT_READ | PROT_WRITE);
	drain();
	free((void *)t->bits);
	t->bits = NULL;
}

static void take_bits(struct tslot *t, uint64_t *out, size_t words)
{
	for (size_t w = 0; w < words; w++)
		out[w] = atomic_exchange(&t->bits[w], 0);
}

int track_take(int handle, uint64_t *out)
{
	struct tslot *t = &slots[handle];
	size_t words = track_words(t->size);

	install(); /* the program may have replaced our handler */
	take_bits(t, out, words);
	int busy = atomic_load(&inflight) != 0;
	int ok = !atomic_load(&t->broken) &&
		 protect((void *)t->lo, t->hi - t->lo, 0) == 0;
	if (ok && busy) {
		drain();
		ok = protect((void *)t->lo, t->hi - t->lo, 0) == 0;
	}
	if (!ok || atomic_load(&t->broken)) {
		release(t);
		memset(out, 0xff, words * sizeof(*out));
		return RTCMS_EIO;
	}
	/* the partial pages at either end are never protected */
	mark_plain(out, t->base, t->size, t->base, t->lo);
	mark_plain(out, t->base, t->size, t->hi, t->base + t->size);
	return 0;
}

int track_pause(int handle)
{
	struct tslot *t = &slots[handle];
	return protect((void *)t->lo, t->hi - t->lo, 1);
}

void track_remove(int handle)
{
	struct tslot *t = &slots[handle];
	if (atomic_load(&t->state) == LIVE)
		release(t);
}
