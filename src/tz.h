/* tz.h - IANA time zones from the system's TZif files, without touching TZ or libc's
 * global time-zone state (which is process-wide and not thread-safe).
 *
 * A loaded zone is immutable and may be shared by every worker thread. */
#ifndef SG_TZ_H
#define SG_TZ_H

#include <stddef.h>
#include <stdint.h>

struct sg_tz;

/* Loads zone `name` ("UTC", "Etc/UTC", "Europe/Berlin", …) from $TZDIR or
 * /usr/share/zoneinfo. "UTC" and "Z" need no file. Names that are absolute or contain
 * ".." are refused. Returns a new zone, or NULL with a reason in err. */
struct sg_tz *sg_tz_load(const char *name, char *err, size_t errlen);
void sg_tz_free(struct sg_tz *tz);
const char *sg_tz_name(const struct sg_tz *tz);

/* UTC offset in seconds in force at the UTC instant `utc`. */
int32_t sg_tz_offset_at(const struct sg_tz *tz, int64_t utc);

/* Converts a wall-clock time in this zone (seconds since 1970-01-01T00:00:00 read as if it
 * were UTC) to a UTC instant. Rule for the two awkward cases, as Python's fold=0 does:
 * an ambiguous time (clocks set back) takes the earlier instant, the offset in force
 * before the transition; a non-existent time (clocks set forward) is read with the
 * offset in force before the gap, so it lands after the gap. */
int64_t sg_tz_local_to_utc(const struct sg_tz *tz, int64_t local);

#endif
