/* test_overload_unit.c - the token bucket and the circuit breaker (src/overload.h) on a
 * clock the test drives: refill and waits, opening after failures in a row, one probe at a
 * time, a probe that closes or reopens, and a probe whose call was abandoned. */
#include <check.h>

#include "overload.h"

START_TEST(bucket_refills_at_its_rate)
{
	struct sg_bucket b;
	long wait = 0;

	sg_bucket_init(&b, 2.0, 3); /* 2 a second, bursts of 3 */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sg_bucket_take(&b, 1000000, &wait), 1);
	ck_assert_int_eq(sg_bucket_take(&b, 1000000, &wait), 0);
	ck_assert_int_eq(wait, 1); /* half a second, rounded up to whole seconds */
	ck_assert_int_eq(sg_bucket_take(&b, 1400000, &wait), 0);   /* 0.8 of a token */
	ck_assert_int_eq(sg_bucket_take(&b, 1600000, &wait), 1);   /* 1.2 */
	ck_assert_int_eq(sg_bucket_take(&b, 100000000, &wait), 1); /* refilled to the burst */
	ck_assert_int_eq(sg_bucket_take(&b, 100000000, &wait), 1);
	ck_assert_int_eq(sg_bucket_take(&b, 100000000, &wait), 1);
	ck_assert_int_eq(sg_bucket_take(&b, 100000000, &wait), 0);
	sg_bucket_destroy(&b);
}
END_TEST

START_TEST(breaker_opens_probes_and_closes)
{
	struct sg_breaker b;
	long retry = 0;

	sg_breaker_init(&b, 3, 1000);
	sg_breaker_report(&b, 0, 0, 0);
	sg_breaker_report(&b, 0, 0, 0);
	sg_breaker_report(&b, 1, 0, 0); /* a success breaks the run */
	sg_breaker_report(&b, 0, 0, 0);
	sg_breaker_report(&b, 0, 0, 0);
	ck_assert_int_eq(sg_breaker_admit(&b, 10, &retry), 1);
	sg_breaker_report(&b, 0, 0, 10); /* the third in a row: open until 1010 */
	ck_assert_int_eq(sg_breaker_admit(&b, 500, &retry), 0);
	ck_assert_int_eq(retry, 510);
	/* time is up: one probe, the others still refused */
	ck_assert_int_eq(sg_breaker_admit(&b, 1010, &retry), 2);
	ck_assert_int_eq(sg_breaker_admit(&b, 1011, &retry), 0);
	sg_breaker_report(&b, 0, 1, 1100); /* the probe failed: open again until 2100 */
	ck_assert_int_eq(sg_breaker_admit(&b, 2000, &retry), 0);
	ck_assert_int_eq(sg_breaker_admit(&b, 2100, &retry), 2);
	sg_breaker_abandon(&b); /* its client left: the next call probes */
	ck_assert_int_eq(sg_breaker_admit(&b, 2101, &retry), 2);
	sg_breaker_report(&b, 1, 1, 2200); /* the probe succeeded: closed */
	ck_assert_int_eq(sg_breaker_admit(&b, 2201, &retry), 1);
	ck_assert_int_eq(sg_breaker_admit(&b, 2202, &retry), 1);
}
END_TEST

START_TEST(breaker_off_never_opens)
{
	struct sg_breaker b;
	long retry = 0;

	sg_breaker_init(&b, 0, 1000);
	for (int i = 0; i < 100; i++)
		sg_breaker_report(&b, 0, 0, i);
	ck_assert_int_eq(sg_breaker_admit(&b, 100, &retry), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("overload");
	TCase *tc = tcase_create("guards");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, bucket_refills_at_its_rate);
	tcase_add_test(tc, breaker_opens_probes_and_closes);
	tcase_add_test(tc, breaker_off_never_opens);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
