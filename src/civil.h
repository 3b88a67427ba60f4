/* civil.h - proleptic Gregorian calendar arithmetic on plain integers: days since
 * 1970-01-01 and back, leap years, month lengths, weekdays.
 *
 * A leaf: no state, no libc time functions, and no other module of the gateway, so that
 * timeutil.c (RFC 3339) and tz.c (TZif zones) can both build on it without depending on
 * each other. Dates are not range-checked here; callers validate what they parse. */
#ifndef SG_CIVIL_H
#define SG_CIVIL_H

#include <stdbool.h>
#include <stdint.h>

/* a / b rounded towards negative infinity, for b > 0: an instant before the epoch still
 * falls into the day (or second) that contains it. */
int64_t sg_floor_div(int64_t a, int64_t b);

/* Leap years: every 4th, except centuries, except every 400th (so 0 and 2000 are). */
bool sg_is_leap(int64_t y);

/* Days in month m (1..12) of year y. */
unsigned sg_days_in_month(int64_t y, unsigned m);

/* Days since 1970-01-01 of the date y-m-d (m 1..12, d 1..31). */
int64_t sg_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The inverse: the date of day z since 1970-01-01. Any of y, m, d may be NULL. */
void sg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Day of the week of day z since 1970-01-01: 0 = Sunday .. 6 = Saturday. */
unsigned sg_weekday_from_days(int64_t z);

#endif
