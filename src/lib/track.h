/*
 * track.h - write-fault dirty tracking for librtcms (internal).
 *
 * A tracked range is write-protected (mprotect PROT_READ) after each
 * checkpoint; the first write to one of its pages raises SIGSEGV, whose
 * handler records the page's blocks (AREA_BLOCK units counted from the
 * AREA_BLOCK boundary at or below the range's start) as dirty in a bitmap and makes the page writable again. The next
 * checkpoint takes the bitmap and protects the range again.
 *
 * Only the page-aligned interior of a range is protected: the pages at
 * either end may be shared with memory that is not the program's region,
 * so track_take() always reports the blocks they touch as dirty.
 *
 * The handler is async-signal-safe (atomics and mprotect; sigaction,
 * pthread_sigmask and raise when it chains), lock-free against the
 * checkpoint, and gives every SIGSEGV that is not a write fault in a
 * tracked range - faults elsewhere, and signals sent with kill(), raise()
 * or sigqueue() - to the SIGSEGV action that was installed before: that
 * handler, ignoring, or the default, which kills the process.
 * Callers serialise track_add/track_take/track_remove (librtcms' mutex).
 */
#ifndef RTCMS_LIB_TRACK_H
#define RTCMS_LIB_TRACK_H

#include <stddef.h>
#include <stdint.h>

/* Words of a bitmap of blocks covering size bytes (for a range that does
 * not start on a block: its offset in the block plus its size). */
size_t track_words(size_t size);

/*
 * Start tracking [ptr, ptr + size): install the SIGSEGV handler if it is
 * not (or no longer) installed. The range is not protected until the
 * first track_take(). Returns a handle >= 0, or a negative RTCMS_E* code
 * if write faults cannot be used for it (RTCMS_EBUSY: no free slot;
 * RTCMS_EINVAL: a range without a whole page, or the calling thread's
 * stack; RTCMS_EIO: the handler cannot be installed; RTCMS_ENOMEM): the
 * caller falls back to comparing.
 */
int track_add(void *ptr, size_t size);

/*
 * Take the blocks written since the last take (or since track_add) into
 * out (track_words(ptr % AREA_BLOCK + size) words, overwritten) and write-protect the range
 * again. Every write completed before the call is in out or, if it races
 * with the call, in the next take. Returns 0, or RTCMS_EIO if the range can no
 * longer be tracked (mprotect failed now or in the handler): the range is
 * writable again, tracking of it has ended (the handle is released), and
 * out marks every block dirty.
 */
int track_take(int handle, uint64_t *out);

/*
 * Leave the range writable until the next track_take() (writes are not
 * recorded meanwhile: the caller copies the range whole at the next
 * checkpoint). 0, or RTCMS_EIO if mprotect failed (the range is then partly
 * protected and still tracked: marks stay exact).
 */
int track_pause(int handle);

/* Stop tracking: the range becomes writable; the handle is released. */
void track_remove(int handle);

/*
 * Failure injection (tests): when set, asked before every mprotect that
 * protects a range (write == 0) or unprotects a page in the handler
 * (write == 1); non-zero makes that mprotect fail. Must be
 * async-signal-safe.
 */
extern int (*track_fault_hook)(void *addr, size_t len, int write);

#endif
