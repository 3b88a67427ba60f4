/* timeutil.h - RFC 3339 parsing and formatting, in microseconds since the epoch (UTC). */
#ifndef SG_TIMEUTIL_H
#define SG_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

struct sg_tz;

/* Enough for "YYYY-MM-DDTHH:MM:SS.ffffffZ" and its NUL. */
#define SG_TIME_BUFSZ 32

/* Parses an RFC 3339 date-time with a 'Z' or ±HH:MM offset ('T' or 't' or ' ' between
 * date and time, 'z' accepted, any number of fraction digits, beyond 6 truncated).
 * Years 0001..9999; fields range-checked (no Feb 30, seconds 0..60 where 60 is read as 59).
 * Returns 0 and sets *us, or -1. */
int sg_time_parse_rfc3339(const char *s, int64_t *us);

/* Parses a naive local ISO 8601 timestamp as AgentScope writes it
 * ("2026-06-05T14:03:11.123456", also without fraction, and with ' ' for 'T') in zone tz.
 * A timestamp that carries its own 'Z' or offset is honoured as such and tz is ignored.
 * Returns 0 and sets *us, or -1. */
int sg_time_parse_local(const char *s, const struct sg_tz *tz, int64_t *us);

/* Formats as RFC 3339 UTC with 'Z': "2026-06-05T06:03:11Z" when the fraction is zero,
 * else with exactly 6 fraction digits ("…11.123456Z"). buf needs SG_TIME_BUFSZ bytes.
 * Returns the length written, or -1 when us is out of the year 0001..9999 range. */
int sg_time_format(int64_t us, char *buf, size_t len);

/* Milliseconds of CLOCK_MONOTONIC: for timeouts, time to live and rates, never for dates. */
int64_t sg_mono_ms(void);

#endif
