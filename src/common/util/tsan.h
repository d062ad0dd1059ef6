/*
 * tsan.h - what a ThreadSanitizer build (RTCMS_TSAN) does differently.
 *
 * RTCMS_THREAD_SANITIZER is defined in a TSan build (gcc or clang).
 * TSAN_IGNORE_READS_BEGIN/END bracket the optimistic copy of a seqlock
 * reader and nothing else: that copy races with the writer by design and
 * is thrown away when the generation shows the writer came by, which TSan
 * cannot know. Every path out of the bracket must pass through END. In
 * other builds both expand to nothing.
 */
#ifndef RTCMS_TSAN_H
#define RTCMS_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define RTCMS_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RTCMS_THREAD_SANITIZER 1
#endif
#endif

#ifdef RTCMS_THREAD_SANITIZER
/* the TSan runtime's dynamic annotations */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define TSAN_IGNORE_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define TSAN_IGNORE_READS_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define TSAN_IGNORE_READS_BEGIN() ((void)0)
#define TSAN_IGNORE_READS_END() ((void)0)
#endif

#endif
