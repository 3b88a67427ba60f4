/* timeutil.c - see timeutil.h.
 *
 * Everything here but sg_mono_ms (which reads the monotonic clock) is plain integer
 * arithmetic on the proleptic Gregorian calendar: no libc time functions, so no dependence on
 * TZ, the locale or any process-wide state. */
#include "timeutil.h"

#include "civil.h"
#include "tz.h"

#include <stdbool.h>
#include <time.h>
#include <stdio.h>

#define US_PER_SEC 1000000LL
#define SECS_PER_DAY 86400LL

/* The fields of a date-time string, before any zone is applied. */
struct dt_fields {
	int year, month, day;
	int hour, minute, second;
	int32_t frac_us;
	bool has_offset;
	int32_t offset; /* seconds east of UTC, when has_offset */
};

/* Reads exactly n ASCII digits (never locale-dependent isdigit) and advances *p. */
static int read_digits(const char **p, int n, int *out)
{
	const char *s = *p;
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*p = s + n;
	*out = v;
	return 0;
}

static int expect_char(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* Parses "±HH:MM", "Z" or "z" up to the end of the string. Hours are limited to 23 so that
 * the offset stays a real-world one. */
static int parse_offset(const char *s, int32_t *offset)
{
	int sign, hh, mm;

	if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
		*offset = 0;
		return 0;
	}
	if (s[0] != '+' && s[0] != '-')
		return -1;
	sign = s[0] == '-' ? -1 : 1;
	s++;
	if (read_digits(&s, 2, &hh) < 0 || expect_char(&s, ':') < 0 ||
	    read_digits(&s, 2, &mm) < 0 || *s != '\0')
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	*offset = sign * (hh * 3600 + mm * 60);
	return 0;
}

/* The grammar shared by both parsers: "YYYY-MM-DD[Tt ]HH:MM:SS[.f+]" then either the end
 * of the string or a zone designator. Every field is range-checked here, so callers only
 * decide what a missing designator means. */
static int parse_fields(const char *s, struct dt_fields *f)
{
	if (!s)
		return -1;
	if (read_digits(&s, 4, &f->year) < 0 || expect_char(&s, '-') < 0 ||
	    read_digits(&s, 2, &f->month) < 0 || expect_char(&s, '-') < 0 ||
	    read_digits(&s, 2, &f->day) < 0)
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (read_digits(&s, 2, &f->hour) < 0 || expect_char(&s, ':') < 0 ||
	    read_digits(&s, 2, &f->minute) < 0 || expect_char(&s, ':') < 0 ||
	    read_digits(&s, 2, &f->second) < 0)
		return -1;

	f->frac_us = 0;
	if (*s == '.') {
		int ndig = 0;

		s++;
		for (; *s >= '0' && *s <= '9'; s++, ndig++) {
			if (ndig < 6)
				f->frac_us = f->frac_us * 10 + (*s - '0');
		}
		if (ndig == 0)
			return -1;
		for (; ndig < 6; ndig++)
			f->frac_us *= 10;
	}

	if (*s == '\0') {
		f->has_offset = false;
		f->offset = 0;
	} else {
		if (parse_offset(s, &f->offset) < 0)
			return -1;
		f->has_offset = true;
	}

	if (f->year < 1 || f->month < 1 || f->month > 12 || f->day < 1 ||
	    (unsigned)f->day > sg_days_in_month(f->year, (unsigned)f->month))
		return -1;
	if (f->hour > 23 || f->minute > 59 || f->second > 60)
		return -1;
	if (f->second == 60)
		f->second = 59; /* a leap second is read as the second before it */
	return 0;
}

/* Seconds since the epoch of the fields read as if they were UTC wall-clock time. */
static int64_t fields_wall_seconds(const struct dt_fields *f)
{
	int64_t days = sg_days_from_civil(f->year, (unsigned)f->month, (unsigned)f->day);

	return days * SECS_PER_DAY + f->hour * 3600 + f->minute * 60 + f->second;
}

int sg_time_parse_rfc3339(const char *s, int64_t *us)
{
	struct dt_fields f;

	if (!us || parse_fields(s, &f) < 0 || !f.has_offset)
		return -1;
	*us = (fields_wall_seconds(&f) - f.offset) * US_PER_SEC + f.frac_us;
	return 0;
}

/* A naive timestamp is wall-clock time in tz (UTC when tz is NULL); the zone decides what
 * happens in the hour that is skipped or repeated at a DST change (see sg_tz_local_to_utc). */
int sg_time_parse_local(const char *s, const struct sg_tz *tz, int64_t *us)
{
	struct dt_fields f;
	int64_t wall, utc;

	if (!us || parse_fields(s, &f) < 0)
		return -1;
	wall = fields_wall_seconds(&f);
	if (f.has_offset)
		utc = wall - f.offset;
	else if (tz)
		utc = sg_tz_local_to_utc(tz, wall);
	else
		utc = wall;
	*us = utc * US_PER_SEC + f.frac_us;
	return 0;
}

/* Also returns -1 when buf is NULL or shorter than SG_TIME_BUFSZ, so a caller's short buffer
 * is an error rather than a silently cut timestamp. */
int sg_time_format(int64_t us, char *buf, size_t len)
{
	/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z, in microseconds */
	const int64_t min_us = -62135596800LL * US_PER_SEC;
	const int64_t end_us = 253402300800LL * US_PER_SEC;
	int64_t secs, days, sod, year;
	unsigned month, day;
	int32_t frac;
	int n;

	if (!buf || len < SG_TIME_BUFSZ || us < min_us || us >= end_us)
		return -1;
	secs = sg_floor_div(us, US_PER_SEC);
	frac = (int32_t)(us - secs * US_PER_SEC);
	days = sg_floor_div(secs, SECS_PER_DAY);
	sod = secs - days * SECS_PER_DAY;
	sg_civil_from_days(days, &year, &month, &day);

	if (frac == 0)
		n = snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)year, month, day,
		             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
	else
		n = snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", (int)year, month, day,
		             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

int64_t sg_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
