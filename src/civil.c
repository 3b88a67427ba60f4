/* civil.c - see civil.h. */
#include "civil.h"

/* 400 Gregorian years are exactly 146097 days; the calendar repeats with that period. */
#define DAYS_PER_ERA 146097LL
/* Days from 0000-03-01 (the start of the era that contains 1970) to 1970-01-01. */
#define EPOCH_SHIFT 719468LL

int64_t sg_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

bool sg_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned sg_days_in_month(int64_t y, unsigned m)
{
	static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && sg_is_leap(y))
		return 29;
	return mdays[m - 1];
}

/* Counts days with years starting on March 1st, so that the leap day is the last day of
 * its year and month lengths follow a fixed 5-month pattern (153 days per 5 months); whole
 * 400-year eras are handled by one multiplication. This is the well-known era method that
 * Howard Hinnant describes in "chrono-Compatible Low-Level Date Algorithms". */
int64_t sg_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;
	unsigned mar_month;

	if (m <= 2)
		y--;
	era = sg_floor_div(y, 400);
	yoe = y - era * 400;               /* 0 .. 399 */
	mar_month = m > 2 ? m - 3 : m + 9; /* March = 0 .. February = 11 */
	doy = (153 * (int64_t)mar_month + 2) / 5 + (int64_t)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * DAYS_PER_ERA + doe - EPOCH_SHIFT;
}

/* The inverse of sg_days_from_civil, with the same March-based years. */
void sg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp, year;
	unsigned month;

	z += EPOCH_SHIFT;
	era = sg_floor_div(z, DAYS_PER_ERA);
	doe = z - era * DAYS_PER_ERA;                                /* 0 .. 146096 */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0 .. 399 */
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0 .. 365 */
	mp = (5 * doy + 2) / 153;                                    /* 0 .. 11 */
	year = yoe + era * 400;
	month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	if (month <= 2)
		year++;
	if (y)
		*y = year;
	if (m)
		*m = month;
	if (d)
		*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
}

/* 1970-01-01 was a Thursday (4). */
unsigned sg_weekday_from_days(int64_t z)
{
	return (unsigned)(z + 4 - 7 * sg_floor_div(z + 4, 7));
}
