/* test_image.c - checkpoint images: capture, parse, install, and refusal
 * of malformed images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "area/image.h"
#include "rtcms_error.h"

#define CAP (64 * 1024)

static void *new_area(size_t *len)
{
	*len = area_size_for(CAP);
	void *m = calloc(1, *len);
	area_format(m, *len);
	return m;
}

#define DATA ((int)AREA_BLOCK + 904)

static void fill(void *mem, uint64_t seq)
{
	struct area_slot *s = area_write_begin(mem);
	uint8_t *d = area_slot_data(mem, s);
	s->region_count = 2;
	s->regions[0] = (struct area_region){ 1, 0, 8, 0 };
	s->regions[1] = (struct area_region){ 2, 0, 1000, 64 };
	/* more data than one block: larger than the smallest area */
	for (int i = 0; i < DATA; i++)
		d[i] = (uint8_t)(i * 3 + seq);
	s->data_size = DATA;
	area_write_commit(mem, s, seq);
}

static void test_capture_install_roundtrip(void **state)
{
	(void)state;
	size_t la, lb;
	void *a = new_area(&la), *b = new_area(&lb);
	uint8_t *img = malloc(CAP * 2);
	struct area_region r[AREA_MAX_REGIONS];
	const uint8_t *data;
	uint64_t seq, size;
	uint32_t n;

	assert_int_equal(image_capture(a, img, CAP * 2), RTCMS_ENOENT);
	fill(a, 5);
	int64_t len = image_capture(a, img, CAP * 2);
	assert_int_equal(len, (int64_t)image_size(2, DATA));
	assert_int_equal(image_parse(img, (size_t)len, &seq, r, &n, &data, &size), 0);
	assert_int_equal(seq, 5);
	assert_int_equal(n, 2);
	assert_int_equal(r[1].offset, 64);
	assert_int_equal(data[100], (uint8_t)(300 + 5));
	/* installed elsewhere, it reads back identical */
	assert_int_equal(image_install(b, img, (size_t)len), 0);
	uint8_t *img2 = malloc(CAP * 2);
	assert_int_equal(image_capture(b, img2, CAP * 2), len);
	assert_memory_equal(img, img2, (size_t)len);
	free(img2);
	free(img);
	free(a);
	free(b);
}

static void test_malformed_images(void **state)
{
	(void)state;
	size_t la;
	void *a = new_area(&la);
	uint8_t *img = malloc(CAP * 2);
	struct area_region r[AREA_MAX_REGIONS];
	const uint8_t *data;
	uint64_t seq, size;
	uint32_t n;

	fill(a, 9);
	int64_t len = image_capture(a, img, CAP * 2);
	/* every truncation is refused */
	for (int64_t cut = 0; cut < len; cut++)
		assert_true(image_parse(img, (size_t)cut, &seq, r, &n, &data, &size) < 0);
	/* a region pointing outside the data */
	img[32 + 24 + 16 + 6] = 0xff; /* offset of region 2: 64 + 0xff00 */
	assert_int_equal(image_parse(img, (size_t)len, &seq, r, &n, &data, &size), RTCMS_EPROTO);
	assert_int_equal(image_install(a, img, (size_t)len), RTCMS_EPROTO);
	img[32 + 24 + 16 + 6] = 0;
	/* too many regions */
	img[19] = AREA_MAX_REGIONS + 1;
	assert_int_equal(image_parse(img, (size_t)len, &seq, r, &n, &data, &size), RTCMS_ETOOBIG);
	img[19] = 2;
	/* a duplicate region id */
	img[32 + 24 + 3] = 1;
	assert_int_equal(image_parse(img, (size_t)len, &seq, r, &n, &data, &size), RTCMS_EPROTO);
	img[32 + 24 + 3] = 2;
	assert_int_equal(image_parse(img, (size_t)len, &seq, r, &n, &data, &size), 0);
	/* an image larger than the area */
	size_t small_len = area_size_for(512);
	void *small = calloc(1, small_len);
	area_format(small, small_len);
	assert_int_equal(image_install(small, img, (size_t)len), RTCMS_ENOSPC);
	free(small);
	free(img);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_install_roundtrip),
		cmocka_unit_test(test_malformed_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
