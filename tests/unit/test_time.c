/* test_time.c - RFC 3339 parsing and formatting, calendar arithmetic, and time zones read
 * from TZif files (the system's, and hand-built ones in a temporary $TZDIR).
 *
 * Expected zone conversions were computed with Python's zoneinfo (fold=0) against the same
 * tzdata, and for the footer rules against byte-identical hand-built TZif files; every
 * footer offset was cross-checked with glibc's own TZ parser. The two rules F_ZERO and F_J59
 * come from glibc alone: CPython's zoneinfo (3.11) reads the zero-based "n" form as one-based
 * and moves "J59" to Feb 29 in leap years, both against POSIX. */
#include "civil.h"
#include "timeutil.h"
#include "tz.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRLEN 256

/* Footer rules exercised through hand-built TZif files with no transitions. */
#define F_EU "CET-1CEST,M3.5.0,M10.5.0/3"
#define F_AU "AEST-10AEDT,M10.1.0,M4.1.0/3"
#define F_IE "IST-1GMT0,M10.5.0,M3.5.0/1"      /* negative DST */
#define F_GL "<-02>2<-01>,M3.5.0/-1,M10.5.0/0" /* negative time of day */
#define F_IL "IST-2IDT,M3.4.4/26,M10.5.0"      /* time of day past 24h */
#define F_PERM "EST5EDT,0/0,J365/25"           /* DST all year */
#define F_JUL "XXX3YYY,J60/2:30,J300/1:15:30"  /* Jn, with minutes and seconds */
#define F_ZERO "XXX3YYY,59,299"                /* zero-based n, counts Feb 29 */
#define F_J59 "XXX3YYY,J59,J300"               /* J59 is Feb 28 even in leap years */
#define F_NP "<+0545>-5:45"                    /* no DST, minutes in offset */
#define F_ODD "<-0330>3:30<-0230>2:30,M3.2.0/-1:30:15,M11.1.0/26:30"

struct off_case {
	const char *zone; /* a zone name, or a footer rule */
	const char *utc;  /* RFC 3339 instant */
	int32_t offset;
};

struct local_case {
	const char *zone;
	const char *local; /* naive wall-clock time */
	const char *utc;   /* the fold=0 instant */
};

/* clang-format off */
static const struct off_case footer_offsets[] = {
	{F_EU, "2028-03-26T00:59:59Z", 3600},
	{F_EU, "2028-03-26T01:00:00Z", 7200},
	{F_EU, "2028-10-29T00:59:59Z", 7200},
	{F_EU, "2028-10-29T01:00:00Z", 3600},
	{F_EU, "2090-03-26T00:59:59Z", 3600},
	{F_EU, "2090-03-26T01:00:00Z", 7200},
	{F_EU, "2090-10-29T00:59:59Z", 7200},
	{F_EU, "2090-10-29T01:00:00Z", 3600},
	{F_AU, "2028-04-01T15:59:59Z", 39600},
	{F_AU, "2028-04-01T16:00:00Z", 36000},
	{F_AU, "2028-09-30T15:59:59Z", 36000},
	{F_AU, "2028-09-30T16:00:00Z", 39600},
	{F_AU, "2090-04-01T15:59:59Z", 39600},
	{F_AU, "2090-04-01T16:00:00Z", 36000},
	{F_AU, "2090-09-30T15:59:59Z", 36000},
	{F_AU, "2090-09-30T16:00:00Z", 39600},
	{F_IE, "2028-03-26T00:59:59Z", 0},
	{F_IE, "2028-03-26T01:00:00Z", 3600},
	{F_IE, "2028-10-29T00:59:59Z", 3600},
	{F_IE, "2028-10-29T01:00:00Z", 0},
	{F_IE, "2090-03-26T00:59:59Z", 0},
	{F_IE, "2090-03-26T01:00:00Z", 3600},
	{F_IE, "2090-10-29T00:59:59Z", 3600},
	{F_IE, "2090-10-29T01:00:00Z", 0},
	{F_GL, "2028-03-26T00:59:59Z", -7200},
	{F_GL, "2028-03-26T01:00:00Z", -3600},
	{F_GL, "2028-10-29T00:59:59Z", -3600},
	{F_GL, "2028-10-29T01:00:00Z", -7200},
	{F_GL, "2090-03-26T00:59:59Z", -7200},
	{F_GL, "2090-03-26T01:00:00Z", -3600},
	{F_GL, "2090-10-29T00:59:59Z", -3600},
	{F_GL, "2090-10-29T01:00:00Z", -7200},
	{F_IL, "2028-03-23T23:59:59Z", 7200},
	{F_IL, "2028-03-24T00:00:00Z", 10800},
	{F_IL, "2028-10-28T22:59:59Z", 10800},
	{F_IL, "2028-10-28T23:00:00Z", 7200},
	{F_IL, "2090-03-23T23:59:59Z", 7200},
	{F_IL, "2090-03-24T00:00:00Z", 10800},
	{F_IL, "2090-10-28T22:59:59Z", 10800},
	{F_IL, "2090-10-28T23:00:00Z", 7200},
	{F_JUL, "2028-03-01T05:29:59Z", -10800},
	{F_JUL, "2028-03-01T05:30:00Z", -7200},
	{F_JUL, "2028-10-27T03:15:29Z", -7200},
	{F_JUL, "2028-10-27T03:15:30Z", -10800},
	{F_JUL, "2090-03-01T05:29:59Z", -10800},
	{F_JUL, "2090-03-01T05:30:00Z", -7200},
	{F_JUL, "2090-10-27T03:15:29Z", -7200},
	{F_JUL, "2090-10-27T03:15:30Z", -10800},
	{F_ODD, "2028-03-12T01:59:44Z", -12600},
	{F_ODD, "2028-03-12T01:59:45Z", -9000},
	{F_ODD, "2028-11-06T04:59:59Z", -9000},
	{F_ODD, "2028-11-06T05:00:00Z", -12600},
	{F_ODD, "2090-03-12T01:59:44Z", -12600},
	{F_ODD, "2090-03-12T01:59:45Z", -9000},
	{F_ODD, "2090-11-06T04:59:59Z", -9000},
	{F_ODD, "2090-11-06T05:00:00Z", -12600},
	{F_ZERO, "2026-03-01T04:59:59Z", -10800},
	{F_ZERO, "2026-03-01T05:00:00Z", -7200},
	{F_ZERO, "2026-10-27T03:59:59Z", -7200},
	{F_ZERO, "2026-10-27T04:00:00Z", -10800},
	{F_ZERO, "2028-02-29T04:59:59Z", -10800},
	{F_ZERO, "2028-02-29T05:00:00Z", -7200},
	{F_ZERO, "2028-10-26T03:59:59Z", -7200},
	{F_ZERO, "2028-10-26T04:00:00Z", -10800},
	{F_ZERO, "2090-03-01T04:59:59Z", -10800},
	{F_ZERO, "2090-03-01T05:00:00Z", -7200},
	{F_ZERO, "2090-10-27T03:59:59Z", -7200},
	{F_ZERO, "2090-10-27T04:00:00Z", -10800},
	{F_J59, "2026-02-28T04:59:59Z", -10800},
	{F_J59, "2026-02-28T05:00:00Z", -7200},
	{F_J59, "2026-10-27T03:59:59Z", -7200},
	{F_J59, "2026-10-27T04:00:00Z", -10800},
	{F_J59, "2028-02-28T04:59:59Z", -10800},
	{F_J59, "2028-02-28T05:00:00Z", -7200},
	{F_J59, "2028-10-27T03:59:59Z", -7200},
	{F_J59, "2028-10-27T04:00:00Z", -10800},
	{F_J59, "2090-02-28T04:59:59Z", -10800},
	{F_J59, "2090-02-28T05:00:00Z", -7200},
	{F_J59, "2090-10-27T03:59:59Z", -7200},
	{F_J59, "2090-10-27T04:00:00Z", -10800},
};

static const struct local_case footer_locals[] = {
	{F_EU, "2028-03-26T01:59:59", "2028-03-26T00:59:59Z"},
	{F_EU, "2028-03-26T02:00:00", "2028-03-26T01:00:00Z"},
	{F_EU, "2028-03-26T02:30:00", "2028-03-26T01:30:00Z"},
	{F_EU, "2028-03-26T02:59:59", "2028-03-26T01:59:59Z"},
	{F_EU, "2028-03-26T03:00:00", "2028-03-26T01:00:00Z"},
	{F_EU, "2028-10-29T02:00:00", "2028-10-29T00:00:00Z"},
	{F_EU, "2028-10-29T02:30:00", "2028-10-29T00:30:00Z"},
	{F_EU, "2028-10-29T02:59:59", "2028-10-29T00:59:59Z"},
	{F_EU, "2028-10-29T03:00:00", "2028-10-29T02:00:00Z"},
	{F_EU, "2090-03-26T01:59:59", "2090-03-26T00:59:59Z"},
	{F_EU, "2090-03-26T02:00:00", "2090-03-26T01:00:00Z"},
	{F_EU, "2090-03-26T02:30:00", "2090-03-26T01:30:00Z"},
	{F_EU, "2090-03-26T02:59:59", "2090-03-26T01:59:59Z"},
	{F_EU, "2090-03-26T03:00:00", "2090-03-26T01:00:00Z"},
	{F_EU, "2090-10-29T02:00:00", "2090-10-29T00:00:00Z"},
	{F_EU, "2090-10-29T02:30:00", "2090-10-29T00:30:00Z"},
	{F_EU, "2090-10-29T02:59:59", "2090-10-29T00:59:59Z"},
	{F_EU, "2090-10-29T03:00:00", "2090-10-29T02:00:00Z"},
	{F_EU, "2028-01-15T12:00:00", "2028-01-15T11:00:00Z"},
	{F_EU, "2028-07-15T12:00:00", "2028-07-15T10:00:00Z"},
	{F_AU, "2028-04-02T02:00:00", "2028-04-01T15:00:00Z"},
	{F_AU, "2028-04-02T02:30:00", "2028-04-01T15:30:00Z"},
	{F_AU, "2028-04-02T02:59:59", "2028-04-01T15:59:59Z"},
	{F_AU, "2028-04-02T03:00:00", "2028-04-01T17:00:00Z"},
	{F_AU, "2028-10-01T01:59:59", "2028-09-30T15:59:59Z"},
	{F_AU, "2028-10-01T02:00:00", "2028-09-30T16:00:00Z"},
	{F_AU, "2028-10-01T02:30:00", "2028-09-30T16:30:00Z"},
	{F_AU, "2028-10-01T02:59:59", "2028-09-30T16:59:59Z"},
	{F_AU, "2028-10-01T03:00:00", "2028-09-30T16:00:00Z"},
	{F_AU, "2090-04-02T02:00:00", "2090-04-01T15:00:00Z"},
	{F_AU, "2090-04-02T02:30:00", "2090-04-01T15:30:00Z"},
	{F_AU, "2090-04-02T02:59:59", "2090-04-01T15:59:59Z"},
	{F_AU, "2090-04-02T03:00:00", "2090-04-01T17:00:00Z"},
	{F_AU, "2090-10-01T01:59:59", "2090-09-30T15:59:59Z"},
	{F_AU, "2090-10-01T02:00:00", "2090-09-30T16:00:00Z"},
	{F_AU, "2090-10-01T02:30:00", "2090-09-30T16:30:00Z"},
	{F_AU, "2090-10-01T02:59:59", "2090-09-30T16:59:59Z"},
	{F_AU, "2090-10-01T03:00:00", "2090-09-30T16:00:00Z"},
	{F_AU, "2028-01-15T12:00:00", "2028-01-15T01:00:00Z"},
	{F_AU, "2028-07-15T12:00:00", "2028-07-15T02:00:00Z"},
	{F_IE, "2028-03-26T00:59:59", "2028-03-26T00:59:59Z"},
	{F_IE, "2028-03-26T01:00:00", "2028-03-26T01:00:00Z"},
	{F_IE, "2028-03-26T01:30:00", "2028-03-26T01:30:00Z"},
	{F_IE, "2028-03-26T01:59:59", "2028-03-26T01:59:59Z"},
	{F_IE, "2028-03-26T02:00:00", "2028-03-26T01:00:00Z"},
	{F_IE, "2028-10-29T01:00:00", "2028-10-29T00:00:00Z"},
	{F_IE, "2028-10-29T01:30:00", "2028-10-29T00:30:00Z"},
	{F_IE, "2028-10-29T01:59:59", "2028-10-29T00:59:59Z"},
	{F_IE, "2028-10-29T02:00:00", "2028-10-29T02:00:00Z"},
	{F_IE, "2090-03-26T00:59:59", "2090-03-26T00:59:59Z"},
	{F_IE, "2090-03-26T01:00:00", "2090-03-26T01:00:00Z"},
	{F_IE, "2090-03-26T01:30:00", "2090-03-26T01:30:00Z"},
	{F_IE, "2090-03-26T01:59:59", "2090-03-26T01:59:59Z"},
	{F_IE, "2090-03-26T02:00:00", "2090-03-26T01:00:00Z"},
	{F_IE, "2090-10-29T01:00:00", "2090-10-29T00:00:00Z"},
	{F_IE, "2090-10-29T01:30:00", "2090-10-29T00:30:00Z"},
	{F_IE, "2090-10-29T01:59:59", "2090-10-29T00:59:59Z"},
	{F_IE, "2090-10-29T02:00:00", "2090-10-29T02:00:00Z"},
	{F_IE, "2028-01-15T12:00:00", "2028-01-15T12:00:00Z"},
	{F_IE, "2028-07-15T12:00:00", "2028-07-15T11:00:00Z"},
	{F_GL, "2028-03-25T22:59:59", "2028-03-26T00:59:59Z"},
	{F_GL, "2028-03-25T23:00:00", "2028-03-26T01:00:00Z"},
	{F_GL, "2028-03-25T23:30:00", "2028-03-26T01:30:00Z"},
	{F_GL, "2028-03-25T23:59:59", "2028-03-26T01:59:59Z"},
	{F_GL, "2028-03-26T00:00:00", "2028-03-26T01:00:00Z"},
	{F_GL, "2028-10-28T23:00:00", "2028-10-29T00:00:00Z"},
	{F_GL, "2028-10-28T23:30:00", "2028-10-29T00:30:00Z"},
	{F_GL, "2028-10-28T23:59:59", "2028-10-29T00:59:59Z"},
	{F_GL, "2028-10-29T00:00:00", "2028-10-29T02:00:00Z"},
	{F_GL, "2090-03-25T22:59:59", "2090-03-26T00:59:59Z"},
	{F_GL, "2090-03-25T23:00:00", "2090-03-26T01:00:00Z"},
	{F_GL, "2090-03-25T23:30:00", "2090-03-26T01:30:00Z"},
	{F_GL, "2090-03-25T23:59:59", "2090-03-26T01:59:59Z"},
	{F_GL, "2090-03-26T00:00:00", "2090-03-26T01:00:00Z"},
	{F_GL, "2090-10-28T23:00:00", "2090-10-29T00:00:00Z"},
	{F_GL, "2090-10-28T23:30:00", "2090-10-29T00:30:00Z"},
	{F_GL, "2090-10-28T23:59:59", "2090-10-29T00:59:59Z"},
	{F_GL, "2090-10-29T00:00:00", "2090-10-29T02:00:00Z"},
	{F_GL, "2028-01-15T12:00:00", "2028-01-15T14:00:00Z"},
	{F_GL, "2028-07-15T12:00:00", "2028-07-15T13:00:00Z"},
	{F_IL, "2028-03-24T01:59:59", "2028-03-23T23:59:59Z"},
	{F_IL, "2028-03-24T02:00:00", "2028-03-24T00:00:00Z"},
	{F_IL, "2028-03-24T02:30:00", "2028-03-24T00:30:00Z"},
	{F_IL, "2028-03-24T02:59:59", "2028-03-24T00:59:59Z"},
	{F_IL, "2028-03-24T03:00:00", "2028-03-24T00:00:00Z"},
	{F_IL, "2028-10-29T01:00:00", "2028-10-28T22:00:00Z"},
	{F_IL, "2028-10-29T01:30:00", "2028-10-28T22:30:00Z"},
	{F_IL, "2028-10-29T01:59:59", "2028-10-28T22:59:59Z"},
	{F_IL, "2028-10-29T02:00:00", "2028-10-29T00:00:00Z"},
	{F_IL, "2090-03-24T01:59:59", "2090-03-23T23:59:59Z"},
	{F_IL, "2090-03-24T02:00:00", "2090-03-24T00:00:00Z"},
	{F_IL, "2090-03-24T02:30:00", "2090-03-24T00:30:00Z"},
	{F_IL, "2090-03-24T02:59:59", "2090-03-24T00:59:59Z"},
	{F_IL, "2090-03-24T03:00:00", "2090-03-24T00:00:00Z"},
	{F_IL, "2090-10-29T01:00:00", "2090-10-28T22:00:00Z"},
	{F_IL, "2090-10-29T01:30:00", "2090-10-28T22:30:00Z"},
	{F_IL, "2090-10-29T01:59:59", "2090-10-28T22:59:59Z"},
	{F_IL, "2090-10-29T02:00:00", "2090-10-29T00:00:00Z"},
	{F_IL, "2028-01-15T12:00:00", "2028-01-15T10:00:00Z"},
	{F_IL, "2028-07-15T12:00:00", "2028-07-15T09:00:00Z"},
	{F_PERM, "2028-01-15T12:00:00", "2028-01-15T16:00:00Z"},
	{F_PERM, "2028-07-15T12:00:00", "2028-07-15T16:00:00Z"},
	{F_JUL, "2028-03-01T02:29:59", "2028-03-01T05:29:59Z"},
	{F_JUL, "2028-03-01T02:30:00", "2028-03-01T05:30:00Z"},
	{F_JUL, "2028-03-01T03:00:00", "2028-03-01T06:00:00Z"},
	{F_JUL, "2028-03-01T03:29:59", "2028-03-01T06:29:59Z"},
	{F_JUL, "2028-03-01T03:30:00", "2028-03-01T05:30:00Z"},
	{F_JUL, "2028-10-27T00:15:30", "2028-10-27T02:15:30Z"},
	{F_JUL, "2028-10-27T00:45:30", "2028-10-27T02:45:30Z"},
	{F_JUL, "2028-10-27T01:15:29", "2028-10-27T03:15:29Z"},
	{F_JUL, "2028-10-27T01:15:30", "2028-10-27T04:15:30Z"},
	{F_JUL, "2090-03-01T02:29:59", "2090-03-01T05:29:59Z"},
	{F_JUL, "2090-03-01T02:30:00", "2090-03-01T05:30:00Z"},
	{F_JUL, "2090-03-01T03:00:00", "2090-03-01T06:00:00Z"},
	{F_JUL, "2090-03-01T03:29:59", "2090-03-01T06:29:59Z"},
	{F_JUL, "2090-03-01T03:30:00", "2090-03-01T05:30:00Z"},
	{F_JUL, "2090-10-27T00:15:30", "2090-10-27T02:15:30Z"},
	{F_JUL, "2090-10-27T00:45:30", "2090-10-27T02:45:30Z"},
	{F_JUL, "2090-10-27T01:15:29", "2090-10-27T03:15:29Z"},
	{F_JUL, "2090-10-27T01:15:30", "2090-10-27T04:15:30Z"},
	{F_JUL, "2028-01-15T12:00:00", "2028-01-15T15:00:00Z"},
	{F_JUL, "2028-07-15T12:00:00", "2028-07-15T14:00:00Z"},
	{F_ZERO, "2028-01-15T12:00:00", "2028-01-15T15:00:00Z"},
	{F_ZERO, "2028-07-15T12:00:00", "2028-07-15T14:00:00Z"},
	{F_NP, "2028-01-15T12:00:00", "2028-01-15T06:15:00Z"},
	{F_NP, "2028-07-15T12:00:00", "2028-07-15T06:15:00Z"},
	{F_ODD, "2028-03-11T22:29:44", "2028-03-12T01:59:44Z"},
	{F_ODD, "2028-03-11T22:29:45", "2028-03-12T01:59:45Z"},
	{F_ODD, "2028-03-11T22:59:45", "2028-03-12T02:29:45Z"},
	{F_ODD, "2028-03-11T23:29:44", "2028-03-12T02:59:44Z"},
	{F_ODD, "2028-03-11T23:29:45", "2028-03-12T01:59:45Z"},
	{F_ODD, "2028-11-06T01:30:00", "2028-11-06T04:00:00Z"},
	{F_ODD, "2028-11-06T02:00:00", "2028-11-06T04:30:00Z"},
	{F_ODD, "2028-11-06T02:29:59", "2028-11-06T04:59:59Z"},
	{F_ODD, "2028-11-06T02:30:00", "2028-11-06T06:00:00Z"},
	{F_ODD, "2090-03-11T22:29:44", "2090-03-12T01:59:44Z"},
	{F_ODD, "2090-03-11T22:29:45", "2090-03-12T01:59:45Z"},
	{F_ODD, "2090-03-11T22:59:45", "2090-03-12T02:29:45Z"},
	{F_ODD, "2090-03-11T23:29:44", "2090-03-12T02:59:44Z"},
	{F_ODD, "2090-03-11T23:29:45", "2090-03-12T01:59:45Z"},
	{F_ODD, "2090-11-06T01:30:00", "2090-11-06T04:00:00Z"},
	{F_ODD, "2090-11-06T02:00:00", "2090-11-06T04:30:00Z"},
	{F_ODD, "2090-11-06T02:29:59", "2090-11-06T04:59:59Z"},
	{F_ODD, "2090-11-06T02:30:00", "2090-11-06T06:00:00Z"},
	{F_ODD, "2028-01-15T12:00:00", "2028-01-15T15:30:00Z"},
	{F_ODD, "2028-07-15T12:00:00", "2028-07-15T14:30:00Z"},
	{F_ZERO, "2026-03-01T01:59:59", "2026-03-01T04:59:59Z"},
	{F_ZERO, "2026-03-01T02:00:00", "2026-03-01T05:00:00Z"},
	{F_ZERO, "2026-03-01T02:30:00", "2026-03-01T05:30:00Z"},
	{F_ZERO, "2026-03-01T02:59:59", "2026-03-01T05:59:59Z"},
	{F_ZERO, "2026-03-01T03:00:00", "2026-03-01T05:00:00Z"},
	{F_ZERO, "2026-10-27T01:00:00", "2026-10-27T03:00:00Z"},
	{F_ZERO, "2026-10-27T01:30:00", "2026-10-27T03:30:00Z"},
	{F_ZERO, "2026-10-27T01:59:59", "2026-10-27T03:59:59Z"},
	{F_ZERO, "2026-10-27T02:00:00", "2026-10-27T05:00:00Z"},
	{F_ZERO, "2028-02-29T01:59:59", "2028-02-29T04:59:59Z"},
	{F_ZERO, "2028-02-29T02:00:00", "2028-02-29T05:00:00Z"},
	{F_ZERO, "2028-02-29T02:30:00", "2028-02-29T05:30:00Z"},
	{F_ZERO, "2028-02-29T02:59:59", "2028-02-29T05:59:59Z"},
	{F_ZERO, "2028-02-29T03:00:00", "2028-02-29T05:00:00Z"},
	{F_ZERO, "2028-10-26T01:00:00", "2028-10-26T03:00:00Z"},
	{F_ZERO, "2028-10-26T01:30:00", "2028-10-26T03:30:00Z"},
	{F_ZERO, "2028-10-26T01:59:59", "2028-10-26T03:59:59Z"},
	{F_ZERO, "2028-10-26T02:00:00", "2028-10-26T05:00:00Z"},
	{F_ZERO, "2090-03-01T01:59:59", "2090-03-01T04:59:59Z"},
	{F_ZERO, "2090-03-01T02:00:00", "2090-03-01T05:00:00Z"},
	{F_ZERO, "2090-03-01T02:30:00", "2090-03-01T05:30:00Z"},
	{F_ZERO, "2090-03-01T02:59:59", "2090-03-01T05:59:59Z"},
	{F_ZERO, "2090-03-01T03:00:00", "2090-03-01T05:00:00Z"},
	{F_ZERO, "2090-10-27T01:00:00", "2090-10-27T03:00:00Z"},
	{F_ZERO, "2090-10-27T01:30:00", "2090-10-27T03:30:00Z"},
	{F_ZERO, "2090-10-27T01:59:59", "2090-10-27T03:59:59Z"},
	{F_ZERO, "2090-10-27T02:00:00", "2090-10-27T05:00:00Z"},
	{F_J59, "2026-02-28T01:59:59", "2026-02-28T04:59:59Z"},
	{F_J59, "2026-02-28T02:00:00", "2026-02-28T05:00:00Z"},
	{F_J59, "2026-02-28T02:30:00", "2026-02-28T05:30:00Z"},
	{F_J59, "2026-02-28T02:59:59", "2026-02-28T05:59:59Z"},
	{F_J59, "2026-02-28T03:00:00", "2026-02-28T05:00:00Z"},
	{F_J59, "2026-10-27T01:00:00", "2026-10-27T03:00:00Z"},
	{F_J59, "2026-10-27T01:30:00", "2026-10-27T03:30:00Z"},
	{F_J59, "2026-10-27T01:59:59", "2026-10-27T03:59:59Z"},
	{F_J59, "2026-10-27T02:00:00", "2026-10-27T05:00:00Z"},
	{F_J59, "2028-02-28T01:59:59", "2028-02-28T04:59:59Z"},
	{F_J59, "2028-02-28T02:00:00", "2028-02-28T05:00:00Z"},
	{F_J59, "2028-02-28T02:30:00", "2028-02-28T05:30:00Z"},
	{F_J59, "2028-02-28T02:59:59", "2028-02-28T05:59:59Z"},
	{F_J59, "2028-02-28T03:00:00", "2028-02-28T05:00:00Z"},
	{F_J59, "2028-10-27T01:00:00", "2028-10-27T03:00:00Z"},
	{F_J59, "2028-10-27T01:30:00", "2028-10-27T03:30:00Z"},
	{F_J59, "2028-10-27T01:59:59", "2028-10-27T03:59:59Z"},
	{F_J59, "2028-10-27T02:00:00", "2028-10-27T05:00:00Z"},
	{F_J59, "2090-02-28T01:59:59", "2090-02-28T04:59:59Z"},
	{F_J59, "2090-02-28T02:00:00", "2090-02-28T05:00:00Z"},
	{F_J59, "2090-02-28T02:30:00", "2090-02-28T05:30:00Z"},
	{F_J59, "2090-02-28T02:59:59", "2090-02-28T05:59:59Z"},
	{F_J59, "2090-02-28T03:00:00", "2090-02-28T05:00:00Z"},
	{F_J59, "2090-10-27T01:00:00", "2090-10-27T03:00:00Z"},
	{F_J59, "2090-10-27T01:30:00", "2090-10-27T03:30:00Z"},
	{F_J59, "2090-10-27T01:59:59", "2090-10-27T03:59:59Z"},
	{F_J59, "2090-10-27T02:00:00", "2090-10-27T05:00:00Z"},
};

static const struct off_case zone_offsets[] = {
	{"Europe/Berlin", "2026-03-29T00:59:59Z", 3600},
	{"Europe/Berlin", "2026-03-29T01:00:00Z", 7200},
	{"Europe/Berlin", "2026-10-25T00:59:59Z", 7200},
	{"Europe/Berlin", "2026-10-25T01:00:00Z", 3600},
	{"Europe/Berlin", "2090-03-26T00:59:59Z", 3600},
	{"Europe/Berlin", "2090-03-26T01:00:00Z", 7200},
	{"Europe/Berlin", "2090-10-29T00:59:59Z", 7200},
	{"Europe/Berlin", "2090-10-29T01:00:00Z", 3600},
	{"America/New_York", "2026-03-08T06:59:59Z", -18000},
	{"America/New_York", "2026-03-08T07:00:00Z", -14400},
	{"America/New_York", "2026-11-01T05:59:59Z", -14400},
	{"America/New_York", "2026-11-01T06:00:00Z", -18000},
	{"America/New_York", "2090-03-12T06:59:59Z", -18000},
	{"America/New_York", "2090-03-12T07:00:00Z", -14400},
	{"America/New_York", "2090-11-05T05:59:59Z", -14400},
	{"America/New_York", "2090-11-05T06:00:00Z", -18000},
	{"Asia/Shanghai", "1988-04-16T17:59:59Z", 28800},
	{"Asia/Shanghai", "1988-04-16T18:00:00Z", 32400},
	{"Asia/Shanghai", "1988-09-10T16:59:59Z", 32400},
	{"Asia/Shanghai", "1988-09-10T17:00:00Z", 28800},
	{"Australia/Sydney", "2026-04-04T15:59:59Z", 39600},
	{"Australia/Sydney", "2026-04-04T16:00:00Z", 36000},
	{"Australia/Sydney", "2026-10-03T15:59:59Z", 36000},
	{"Australia/Sydney", "2026-10-03T16:00:00Z", 39600},
	{"Europe/Dublin", "2026-03-29T00:59:59Z", 0},
	{"Europe/Dublin", "2026-03-29T01:00:00Z", 3600},
	{"Europe/Dublin", "2026-10-25T00:59:59Z", 3600},
	{"Europe/Dublin", "2026-10-25T01:00:00Z", 0},
};

static const struct local_case zone_locals[] = {
	{"Europe/Berlin", "2026-03-29T01:59:59", "2026-03-29T00:59:59Z"},
	{"Europe/Berlin", "2026-03-29T02:00:00", "2026-03-29T01:00:00Z"},
	{"Europe/Berlin", "2026-03-29T02:30:00", "2026-03-29T01:30:00Z"},
	{"Europe/Berlin", "2026-03-29T02:59:59", "2026-03-29T01:59:59Z"},
	{"Europe/Berlin", "2026-03-29T03:00:00", "2026-03-29T01:00:00Z"},
	{"Europe/Berlin", "2026-10-25T02:00:00", "2026-10-25T00:00:00Z"},
	{"Europe/Berlin", "2026-10-25T02:30:00", "2026-10-25T00:30:00Z"},
	{"Europe/Berlin", "2026-10-25T02:59:59", "2026-10-25T00:59:59Z"},
	{"Europe/Berlin", "2026-10-25T03:00:00", "2026-10-25T02:00:00Z"},
	{"Europe/Berlin", "2090-03-26T01:59:59", "2090-03-26T00:59:59Z"},
	{"Europe/Berlin", "2090-03-26T02:00:00", "2090-03-26T01:00:00Z"},
	{"Europe/Berlin", "2090-03-26T02:30:00", "2090-03-26T01:30:00Z"},
	{"Europe/Berlin", "2090-03-26T02:59:59", "2090-03-26T01:59:59Z"},
	{"Europe/Berlin", "2090-03-26T03:00:00", "2090-03-26T01:00:00Z"},
	{"Europe/Berlin", "2090-10-29T02:00:00", "2090-10-29T00:00:00Z"},
	{"Europe/Berlin", "2090-10-29T02:30:00", "2090-10-29T00:30:00Z"},
	{"Europe/Berlin", "2090-10-29T02:59:59", "2090-10-29T00:59:59Z"},
	{"Europe/Berlin", "2090-10-29T03:00:00", "2090-10-29T02:00:00Z"},
	{"Europe/Berlin", "2026-01-15T12:00:00", "2026-01-15T11:00:00Z"},
	{"Europe/Berlin", "2026-07-15T12:00:00", "2026-07-15T10:00:00Z"},
	{"Europe/Berlin", "2090-01-15T12:00:00", "2090-01-15T11:00:00Z"},
	{"Europe/Berlin", "2090-07-15T12:00:00", "2090-07-15T10:00:00Z"},
	{"America/New_York", "2026-03-08T01:59:59", "2026-03-08T06:59:59Z"},
	{"America/New_York", "2026-03-08T02:00:00", "2026-03-08T07:00:00Z"},
	{"America/New_York", "2026-03-08T02:30:00", "2026-03-08T07:30:00Z"},
	{"America/New_York", "2026-03-08T02:59:59", "2026-03-08T07:59:59Z"},
	{"America/New_York", "2026-03-08T03:00:00", "2026-03-08T07:00:00Z"},
	{"America/New_York", "2026-11-01T01:00:00", "2026-11-01T05:00:00Z"},
	{"America/New_York", "2026-11-01T01:30:00", "2026-11-01T05:30:00Z"},
	{"America/New_York", "2026-11-01T01:59:59", "2026-11-01T05:59:59Z"},
	{"America/New_York", "2026-11-01T02:00:00", "2026-11-01T07:00:00Z"},
	{"America/New_York", "2090-03-12T01:59:59", "2090-03-12T06:59:59Z"},
	{"America/New_York", "2090-03-12T02:00:00", "2090-03-12T07:00:00Z"},
	{"America/New_York", "2090-03-12T02:30:00", "2090-03-12T07:30:00Z"},
	{"America/New_York", "2090-03-12T02:59:59", "2090-03-12T07:59:59Z"},
	{"America/New_York", "2090-03-12T03:00:00", "2090-03-12T07:00:00Z"},
	{"America/New_York", "2090-11-05T01:00:00", "2090-11-05T05:00:00Z"},
	{"America/New_York", "2090-11-05T01:30:00", "2090-11-05T05:30:00Z"},
	{"America/New_York", "2090-11-05T01:59:59", "2090-11-05T05:59:59Z"},
	{"America/New_York", "2090-11-05T02:00:00", "2090-11-05T07:00:00Z"},
	{"America/New_York", "2026-01-15T12:00:00", "2026-01-15T17:00:00Z"},
	{"America/New_York", "2026-07-15T12:00:00", "2026-07-15T16:00:00Z"},
	{"America/New_York", "2090-01-15T12:00:00", "2090-01-15T17:00:00Z"},
	{"America/New_York", "2090-07-15T12:00:00", "2090-07-15T16:00:00Z"},
	{"Asia/Shanghai", "1988-04-17T01:59:59", "1988-04-16T17:59:59Z"},
	{"Asia/Shanghai", "1988-04-17T02:00:00", "1988-04-16T18:00:00Z"},
	{"Asia/Shanghai", "1988-04-17T02:30:00", "1988-04-16T18:30:00Z"},
	{"Asia/Shanghai", "1988-04-17T02:59:59", "1988-04-16T18:59:59Z"},
	{"Asia/Shanghai", "1988-04-17T03:00:00", "1988-04-16T18:00:00Z"},
	{"Asia/Shanghai", "1988-09-11T01:00:00", "1988-09-10T16:00:00Z"},
	{"Asia/Shanghai", "1988-09-11T01:30:00", "1988-09-10T16:30:00Z"},
	{"Asia/Shanghai", "1988-09-11T01:59:59", "1988-09-10T16:59:59Z"},
	{"Asia/Shanghai", "1988-09-11T02:00:00", "1988-09-10T18:00:00Z"},
	{"Asia/Shanghai", "1988-01-15T12:00:00", "1988-01-15T04:00:00Z"},
	{"Asia/Shanghai", "1988-07-15T12:00:00", "1988-07-15T03:00:00Z"},
	{"Asia/Shanghai", "2026-01-15T12:00:00", "2026-01-15T04:00:00Z"},
	{"Asia/Shanghai", "2026-07-15T12:00:00", "2026-07-15T04:00:00Z"},
	{"Asia/Shanghai", "2090-01-15T12:00:00", "2090-01-15T04:00:00Z"},
	{"Asia/Shanghai", "2090-07-15T12:00:00", "2090-07-15T04:00:00Z"},
	{"Australia/Sydney", "2026-04-05T02:00:00", "2026-04-04T15:00:00Z"},
	{"Australia/Sydney", "2026-04-05T02:30:00", "2026-04-04T15:30:00Z"},
	{"Australia/Sydney", "2026-04-05T02:59:59", "2026-04-04T15:59:59Z"},
	{"Australia/Sydney", "2026-04-05T03:00:00", "2026-04-04T17:00:00Z"},
	{"Australia/Sydney", "2026-10-04T01:59:59", "2026-10-03T15:59:59Z"},
	{"Australia/Sydney", "2026-10-04T02:00:00", "2026-10-03T16:00:00Z"},
	{"Australia/Sydney", "2026-10-04T02:30:00", "2026-10-03T16:30:00Z"},
	{"Australia/Sydney", "2026-10-04T02:59:59", "2026-10-03T16:59:59Z"},
	{"Australia/Sydney", "2026-10-04T03:00:00", "2026-10-03T16:00:00Z"},
	{"Australia/Sydney", "2026-01-15T12:00:00", "2026-01-15T01:00:00Z"},
	{"Australia/Sydney", "2026-07-15T12:00:00", "2026-07-15T02:00:00Z"},
	{"Europe/Dublin", "2026-03-29T00:59:59", "2026-03-29T00:59:59Z"},
	{"Europe/Dublin", "2026-03-29T01:00:00", "2026-03-29T01:00:00Z"},
	{"Europe/Dublin", "2026-03-29T01:30:00", "2026-03-29T01:30:00Z"},
	{"Europe/Dublin", "2026-03-29T01:59:59", "2026-03-29T01:59:59Z"},
	{"Europe/Dublin", "2026-03-29T02:00:00", "2026-03-29T01:00:00Z"},
	{"Europe/Dublin", "2026-10-25T01:00:00", "2026-10-25T00:00:00Z"},
	{"Europe/Dublin", "2026-10-25T01:30:00", "2026-10-25T00:30:00Z"},
	{"Europe/Dublin", "2026-10-25T01:59:59", "2026-10-25T00:59:59Z"},
	{"Europe/Dublin", "2026-10-25T02:00:00", "2026-10-25T02:00:00Z"},
	{"Europe/Dublin", "2026-01-15T12:00:00", "2026-01-15T12:00:00Z"},
	{"Europe/Dublin", "2026-07-15T12:00:00", "2026-07-15T11:00:00Z"},
	{"Europe/Berlin", "1850-01-01T00:00:00", "1849-12-31T23:06:32Z"},
	{"America/New_York", "1800-06-01T12:00:00", "1800-06-01T16:56:02Z"},
	{"Asia/Shanghai", "1900-01-01T00:00:00", "1899-12-31T15:54:17Z"},
	{"Europe/Berlin", "0001-01-01T12:00:00", "0001-01-01T11:06:32Z"},
};
/* clang-format on */

/* ---- fixture: a private $TZDIR --------------------------------------------------------- */

static char tmpdir[64];
static char *saved_tzdir;

static void tzdir_setup(void)
{
	const char *old = getenv("TZDIR");

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg_test_time.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	saved_tzdir = old ? strdup(old) : NULL;
	ck_assert_int_eq(setenv("TZDIR", tmpdir, 1), 0);
}

static void tzdir_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[512];

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
	if (saved_tzdir)
		setenv("TZDIR", saved_tzdir, 1);
	else
		unsetenv("TZDIR");
	free(saved_tzdir);
	saved_tzdir = NULL;
}

/* The system zone directory, as sg_tz_load sees it outside the fixture. */
static const char *system_zoneinfo(void)
{
	return saved_tzdir && *saved_tzdir ? saved_tzdir : "/usr/share/zoneinfo";
}

static void write_zone(const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	if (len)
		ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Reads a whole file (a system zone) into a new buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf;
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	ck_assert_uint_eq(*len, (size_t)st.st_size);
	fclose(f);
	return buf;
}

static unsigned char *slurp_system_zone(const char *name, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", system_zoneinfo(), name);
	return slurp(path, len);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Length of the header and 32-bit data block that open every TZif file. */
static size_t v1_length(const unsigned char *d)
{
	return 44 + (size_t)get32(d + 32) * 5 + (size_t)get32(d + 36) * 6 + get32(d + 40) +
	       (size_t)get32(d + 28) * 8 + get32(d + 24) + get32(d + 20);
}

/* A version-2 TZif file with no transitions, one time type (offset off0, "ABC") and the
 * given footer: every instant is governed by the footer rule. Returns its length. */
static size_t build_tzif(unsigned char *buf, size_t cap, const char *footer, int32_t off0)
{
	size_t pos = 0, flen = strlen(footer);

	ck_assert_uint_ge(cap, 2 * (44 + 10) + flen + 2);
	for (int part = 0; part < 2; part++) {
		memset(buf + pos, 0, 44);
		memcpy(buf + pos, "TZif2", 5);
		put32(buf + pos + 36, 1); /* typecnt */
		put32(buf + pos + 40, 4); /* charcnt */
		pos += 44;
		put32(buf + pos, (uint32_t)off0);
		buf[pos + 4] = 0;
		buf[pos + 5] = 0;
		memcpy(buf + pos + 6, "ABC", 4);
		pos += 10;
	}
	buf[pos++] = '\n';
	memcpy(buf + pos, footer, flen);
	pos += flen;
	buf[pos++] = '\n';
	return pos;
}

static int64_t must_parse(const char *s)
{
	int64_t us = 0;

	ck_assert_msg(sg_time_parse_rfc3339(s, &us) == 0, "cannot parse %s", s);
	return us;
}

static struct sg_tz *must_load(const char *name)
{
	char err[ERRLEN] = "";
	struct sg_tz *tz = sg_tz_load(name, err, sizeof(err));

	ck_assert_msg(tz != NULL, "cannot load %s: %s", name, err);
	return tz;
}

/* Loads a footer rule through a hand-built file in the fixture directory. */
static struct sg_tz *load_footer(const char *footer)
{
	unsigned char buf[512];
	size_t len = build_tzif(buf, sizeof(buf), footer, 0);

	write_zone("Rule", buf, len);
	return must_load("Rule");
}

/* Expects sg_tz_load to fail with a message containing `want`. */
static void expect_load_fails(const char *name, const char *want)
{
	char err[ERRLEN] = "";
	struct sg_tz *tz = sg_tz_load(name, err, sizeof(err));

	ck_assert_msg(tz == NULL, "loading \"%s\" should fail", name ? name : "(null)");
	ck_assert_msg(strstr(err, want) != NULL, "loading \"%s\": error \"%s\" lacks \"%s\"",
	              name ? name : "(null)", err, want);
}

/* ---- RFC 3339 -------------------------------------------------------------------------- */

START_TEST(rfc3339_good)
{
	static const struct {
		const char *s;
		int64_t us;
	} cases[] = {
	    {"2026-06-05T06:03:11Z", INT64_C(1780639391000000)},
	    {"2026-06-05t06:03:11z", INT64_C(1780639391000000)},
	    {"2026-06-05 06:03:11Z", INT64_C(1780639391000000)},
	    {"2026-06-05T06:03:11+00:00", INT64_C(1780639391000000)},
	    {"2026-06-05T06:03:11-00:00", INT64_C(1780639391000000)},
	    {"2026-06-05T14:03:11+08:00", INT64_C(1780639391000000)},
	    {"2026-06-05T14:03:11.123456+08:00", INT64_C(1780639391123456)},
	    {"2026-06-05T06:03:11.1Z", INT64_C(1780639391100000)},
	    {"2026-06-05T06:03:11.5Z", INT64_C(1780639391500000)},
	    {"2026-06-05T06:03:11.000001Z", INT64_C(1780639391000001)},
	    {"2026-06-05T06:03:11.1234567Z", INT64_C(1780639391123456)},
	    {"2026-06-05T06:03:11.123456999999999999999999Z", INT64_C(1780639391123456)},
	    {"1970-01-01T00:00:00Z", 0},
	    {"1970-01-01T00:00:00.000000Z", 0},
	    {"1969-12-31T23:59:59.999999Z", -1},
	    {"0001-01-01T00:00:00Z", INT64_C(-62135596800000000)},
	    {"0001-01-01T00:00:00+01:00", INT64_C(-62135600400000000)},
	    {"9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999)},
	    {"9999-12-31T23:59:59-23:59", INT64_C(253402387139000000)},
	    {"2016-12-31T23:59:60Z", INT64_C(1483228799000000)},
	    {"2016-12-31T23:59:59Z", INT64_C(1483228799000000)},
	    {"2024-02-29T00:00:00Z", INT64_C(1709164800000000)},
	    {"2000-02-29T12:00:00Z", INT64_C(951825600000000)},
	    {"1900-03-01T00:00:00Z", INT64_C(-2203891200000000)},
	    {"2026-01-01T00:00:00-05:30", INT64_C(1767245400000000)},
	    {"2026-01-01T00:00:00+23:59", INT64_C(1767139260000000)},
	    {"2026-01-01T00:00:00-23:59", INT64_C(1767311940000000)},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us = 42;

		ck_assert_msg(sg_time_parse_rfc3339(cases[i].s, &us) == 0, "rejected %s",
		              cases[i].s);
		ck_assert_msg(us == cases[i].us, "%s: got %lld, want %lld", cases[i].s,
		              (long long)us, (long long)cases[i].us);
	}
}
END_TEST

START_TEST(rfc3339_bad)
{
	static const char *const cases[] = {
	    "",
	    "2026-06-05",
	    "2026-06-05T06:03:11", /* no offset */
	    "2026-06-05T06:03Z",   /* no seconds */
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-01-00T00:00:00Z",
	    "2026-01-32T00:00:00Z",
	    "2026-02-29T00:00:00Z", /* not a leap year */
	    "1900-02-29T00:00:00Z", /* not a leap year either */
	    "2026-04-31T00:00:00Z",
	    "2026-06-05T24:00:00Z",
	    "2026-06-05T23:60:00Z",
	    "2026-06-05T23:59:61Z",
	    "0000-01-01T00:00:00Z", /* year 0 */
	    "26-06-05T06:03:11Z",
	    "20260-06-05T06:03:11Z",
	    "+2026-06-05T06:03:11Z",
	    "2026-6-05T06:03:11Z",
	    "2026-06-5T06:03:11Z",
	    "2026-06-05T6:03:11Z",
	    "2026/06/05T06:03:11Z",
	    "2026-06-05X06:03:11Z",
	    "2026-06-05T06-03-11Z",
	    "2026-06-05T06:03:11.Z",  /* empty fraction */
	    "2026-06-05T06:03:11,5Z", /* comma fraction */
	    "2026-06-05T06:03:11Z ",  /* trailing space */
	    " 2026-06-05T06:03:11Z",  /* leading space */
	    "2026-06-05T06:03:11Zjunk",
	    "2026-06-05T06:03:11ZZ",
	    "2026-06-05T06:03:11+24:00",
	    "2026-06-05T06:03:11+08:60",
	    "2026-06-05T06:03:11+0800",
	    "2026-06-05T06:03:11+08",
	    "2026-06-05T06:03:11+8:00",
	    "2026-06-05T06:03:11+08:00:00",
	    "2026-06-05T06:03:11 +08:00",
	    "2026-06-05T06:03:11UTC",
	    "2026-06-05T06:03:1aZ",
	    /* a fullwidth Z, and fullwidth digits */
	    "2026-06-05T06:03:11\xef\xbc\xba",
	    "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x96-06-05T06:03:11Z",
	};
	int64_t us = 42;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(sg_time_parse_rfc3339(cases[i], &us) == -1, "accepted \"%s\"",
		              cases[i]);
		ck_assert_msg(us == 42, "\"%s\" wrote *us", cases[i]);
	}
	ck_assert_int_eq(sg_time_parse_rfc3339(NULL, &us), -1);
	ck_assert_int_eq(sg_time_parse_rfc3339("2026-06-05T06:03:11Z", NULL), -1);
	ck_assert_int_eq(us, 42);
}
END_TEST

START_TEST(format_cases)
{
	static const struct {
		int64_t us;
		const char *s;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {1, "1970-01-01T00:00:00.000001Z"},
	    {-1, "1969-12-31T23:59:59.999999Z"},
	    {-1000000, "1969-12-31T23:59:59Z"},
	    {INT64_C(1780639391000000), "2026-06-05T06:03:11Z"},
	    {INT64_C(1780639391123456), "2026-06-05T06:03:11.123456Z"},
	    {INT64_C(1780639391100000), "2026-06-05T06:03:11.100000Z"},
	    {INT64_C(951825600000000), "2000-02-29T12:00:00Z"},
	    {INT64_C(-2203891200000000), "1900-03-01T00:00:00Z"},
	    {INT64_C(-62135596800000000), "0001-01-01T00:00:00Z"},
	    {INT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z"},
	};
	char buf[SG_TIME_BUFSZ];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = sg_time_format(cases[i].us, buf, sizeof(buf));

		ck_assert_str_eq(buf, cases[i].s);
		ck_assert_int_eq(n, (int)strlen(cases[i].s));
	}
}
END_TEST

START_TEST(format_refuses)
{
	char buf[SG_TIME_BUFSZ];

	ck_assert_int_eq(sg_time_format(INT64_C(-62135596800000001), buf, sizeof(buf)), -1);
	ck_assert_int_eq(sg_time_format(INT64_C(253402300800000000), buf, sizeof(buf)), -1);
	ck_assert_int_eq(sg_time_format(INT64_MIN, buf, sizeof(buf)), -1);
	ck_assert_int_eq(sg_time_format(INT64_MAX, buf, sizeof(buf)), -1);
	ck_assert_int_eq(sg_time_format(0, NULL, sizeof(buf)), -1);
	ck_assert_int_eq(sg_time_format(0, buf, SG_TIME_BUFSZ - 1), -1);
	ck_assert_int_eq(sg_time_format(0, buf, 0), -1);
}
END_TEST

/* format then parse gives back every value; parse then format gives back canonical text. */
START_TEST(format_roundtrip)
{
	const int64_t lo = INT64_C(-62135596800000000), hi = INT64_C(253402300799999999);
	static const char *const canon[] = {
	    "2026-06-05T06:03:11Z",        "2026-06-05T06:03:11.000100Z", "1999-12-31T23:59:59Z",
	    "2028-02-29T23:59:59.999999Z", "0001-01-01T00:00:00.000001Z",
	};
	uint64_t x = 0x9e3779b97f4a7c15u;
	char buf[SG_TIME_BUFSZ];
	int64_t us, back;

	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		us = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
		if (i % 2)
			us -= us % 1000000; /* half of them without a fraction */
		if (us < lo)
			us = lo;
		if (sg_time_format(us, buf, sizeof(buf)) < 0 ||
		    sg_time_parse_rfc3339(buf, &back) != 0 || back != us)
			ck_abort_msg("round trip of %lld failed (%s)", (long long)us, buf);
	}
	for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		us = must_parse(canon[i]);
		ck_assert_int_gt(sg_time_format(us, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, canon[i]);
	}
}
END_TEST

/* Every day of years 1..9999 against a plain day-by-day calendar walk. */
START_TEST(civil_days)
{
	int64_t y = 1, z, gy;
	unsigned m = 1, d = 1, gm, gd;
	static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	ck_assert_int_eq(sg_days_from_civil(1970, 1, 1), 0);
	ck_assert_int_eq(sg_days_from_civil(1969, 12, 31), -1);
	ck_assert_int_eq(sg_days_from_civil(2000, 3, 1), 11017);
	ck_assert_int_eq(sg_days_from_civil(1, 1, 1), -719162);
	ck_assert_int_eq(sg_days_from_civil(9999, 12, 31), 2932896);
	ck_assert_int_eq(sg_days_from_civil(0, 3, 1), -719468);
	sg_civil_from_days(-719469, &gy, &gm, &gd);
	ck_assert_int_eq(gy, 0);
	ck_assert_uint_eq(gm, 2);
	ck_assert_uint_eq(gd, 29); /* year 0 is a leap year */
	sg_civil_from_days(-719835, &gy, &gm, &gd);
	ck_assert_int_eq(gy, -1);
	ck_assert_uint_eq(gm, 2);
	ck_assert_uint_eq(gd, 28);

	for (z = -719162; y <= 9999; z++) {
		unsigned len = mdays[m - 1];

		if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
			len = 29;
		if (sg_days_from_civil(y, m, d) != z)
			ck_abort_msg("days_from_civil(%lld-%u-%u) != %lld", (long long)y, m, d,
			             (long long)z);
		sg_civil_from_days(z, &gy, &gm, &gd);
		if (gy != y || gm != m || gd != d)
			ck_abort_msg("civil_from_days(%lld) = %lld-%u-%u, want %lld-%u-%u",
			             (long long)z, (long long)gy, gm, gd, (long long)y, m, d);
		if (++d > len) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	ck_assert_int_eq(z, 2932897);
}
END_TEST

/* The civil module's edges, each checked both ways: the first and last representable days,
 * the epoch, a 400-year leap day, a century that is not a leap year, and weekdays. */
START_TEST(civil_edges)
{
	static const struct {
		int y;
		unsigned m, d;
		int64_t days;
		unsigned wday; /* 0 = Sunday */
	} edge[] = {
	    {1, 1, 1, -719162, 1}, /* proleptic Gregorian 0001-01-01 is a Monday */
	    {1970, 1, 1, 0, 4},    /* Thursday */
	    {1969, 12, 31, -1, 3},
	    {2000, 2, 29, 11016, 2}, /* 2000 is divisible by 400: a leap year */
	    {2000, 3, 1, 11017, 3},
	    {2100, 2, 28, 47540, 0}, /* 2100 is a century: no Feb 29 */
	    {2100, 3, 1, 47541, 1},
	    {9999, 12, 31, 2932896, 5}, /* the last day RFC 3339 can write */
	};
	int64_t y;
	unsigned m, d;

	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		ck_assert_int_eq(sg_days_from_civil(edge[i].y, edge[i].m, edge[i].d), edge[i].days);
		sg_civil_from_days(edge[i].days, &y, &m, &d);
		ck_assert_int_eq(y, edge[i].y);
		ck_assert_uint_eq(m, edge[i].m);
		ck_assert_uint_eq(d, edge[i].d);
		ck_assert_uint_eq(sg_weekday_from_days(edge[i].days), edge[i].wday);
	}
	/* any output may be skipped */
	sg_civil_from_days(11016, NULL, &m, NULL);
	ck_assert_uint_eq(m, 2);

	ck_assert(sg_is_leap(2000));
	ck_assert(sg_is_leap(0));
	ck_assert(sg_is_leap(2024));
	ck_assert(!sg_is_leap(2100));
	ck_assert(!sg_is_leap(1900));
	ck_assert(!sg_is_leap(1));
	ck_assert(!sg_is_leap(9999));
	ck_assert_uint_eq(sg_days_in_month(2000, 2), 29);
	ck_assert_uint_eq(sg_days_in_month(2100, 2), 28);
	ck_assert_uint_eq(sg_days_in_month(1, 1), 31);
	ck_assert_uint_eq(sg_days_in_month(9999, 12), 31);
	ck_assert_uint_eq(sg_days_in_month(2026, 4), 30);

	/* floor, not truncation, below zero: the second before the epoch is on 1969-12-31 */
	ck_assert_int_eq(sg_floor_div(-1, 86400), -1);
	ck_assert_int_eq(sg_floor_div(-86400, 86400), -1);
	ck_assert_int_eq(sg_floor_div(-86401, 86400), -2);
	ck_assert_int_eq(sg_floor_div(0, 86400), 0);
	ck_assert_int_eq(sg_floor_div(86399, 86400), 0);
	/* weekdays keep cycling before the epoch */
	ck_assert_uint_eq(sg_weekday_from_days(-7), 4);
	ck_assert_uint_eq(sg_weekday_from_days(-8), 3);
}
END_TEST

/* ---- naive local timestamps ------------------------------------------------------------ */

START_TEST(local_utc)
{
	static const char *const names[] = {"UTC", "Etc/UTC", "Z"};
	int64_t us;

	for (size_t i = 0; i < 3; i++) {
		struct sg_tz *tz = must_load(names[i]);

		ck_assert_str_eq(sg_tz_name(tz), names[i]);
		ck_assert_int_eq(sg_tz_offset_at(tz, 0), 0);
		ck_assert_int_eq(sg_tz_offset_at(tz, INT64_C(3800000000)), 0);
		ck_assert_int_eq(sg_tz_local_to_utc(tz, INT64_C(1780668191)), INT64_C(1780668191));
		ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11.123456", tz, &us), 0);
		ck_assert_int_eq(us, INT64_C(1780668191123456));
		ck_assert_int_eq(sg_time_parse_local("2026-06-05 14:03:11", tz, &us), 0);
		ck_assert_int_eq(us, INT64_C(1780668191000000));
		sg_tz_free(tz);
	}
	/* no zone at all reads as UTC */
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11", NULL, &us), 0);
	ck_assert_int_eq(us, INT64_C(1780668191000000));
	ck_assert_int_eq(sg_tz_offset_at(NULL, 1000), 0);
	ck_assert_int_eq(sg_tz_local_to_utc(NULL, 1000), 1000);
	ck_assert_ptr_null(sg_tz_name(NULL));
}
END_TEST

START_TEST(local_shanghai)
{
	struct sg_tz *tz = must_load("Asia/Shanghai");
	int64_t us;

	ck_assert_str_eq(sg_tz_name(tz), "Asia/Shanghai");
	ck_assert_int_eq(sg_tz_offset_at(tz, INT64_C(1780639391)), 28800);
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11.123456", tz, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-06-05T06:03:11.123456Z"));
	ck_assert_int_eq(sg_time_parse_local("2026-06-05 14:03:11", tz, &us), 0);
	ck_assert_int_eq(us, INT64_C(1780639391000000));
	ck_assert_int_eq(sg_time_parse_local("2026-01-05T00:00:00", tz, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-01-04T16:00:00Z"));
	/* a timestamp with its own designator ignores the zone */
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11Z", tz, &us), 0);
	ck_assert_int_eq(us, INT64_C(1780668191000000));
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11-02:00", tz, &us), 0);
	ck_assert_int_eq(us, INT64_C(1780675391000000));
	sg_tz_free(tz);
}
END_TEST

START_TEST(local_bad)
{
	static const char *const cases[] = {
	    "",
	    "2026-06-05",
	    "2026-06-05T14:03",
	    "2026-02-30T00:00:00",
	    "2026-06-05T14:03:11.",
	    "2026-06-05T14:03:11 ",
	    "2026-06-05T14:03:11+8",
	    "2026-06-05T14:03:11.123456junk",
	    "2026-06-05T25:03:11",
	    "2026-06-05T14:03:11.1.2",
	};
	struct sg_tz *tz = must_load("Asia/Shanghai");
	int64_t us = 42;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(sg_time_parse_local(cases[i], tz, &us) == -1, "accepted \"%s\"",
		              cases[i]);
	ck_assert_int_eq(sg_time_parse_local(NULL, tz, &us), -1);
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11", tz, NULL), -1);
	ck_assert_int_eq(us, 42);
	sg_tz_free(tz);
}
END_TEST

/* ---- system zones ---------------------------------------------------------------------- */

START_TEST(zone_offset_table)
{
	const struct off_case *c = &zone_offsets[_i];
	struct sg_tz *tz = must_load(c->zone);
	int64_t us = must_parse(c->utc);

	ck_assert_msg(sg_tz_offset_at(tz, us / 1000000) == c->offset, "%s at %s: %d, want %d",
	              c->zone, c->utc, sg_tz_offset_at(tz, us / 1000000), c->offset);
	sg_tz_free(tz);
}
END_TEST

START_TEST(zone_local_table)
{
	const struct local_case *c = &zone_locals[_i];
	struct sg_tz *tz = must_load(c->zone);
	int64_t us = 0, want = must_parse(c->utc);
	char got[SG_TIME_BUFSZ];

	ck_assert_int_eq(sg_time_parse_local(c->local, tz, &us), 0);
	sg_time_format(us, got, sizeof(got));
	ck_assert_msg(us == want, "%s %s: got %s, want %s", c->zone, c->local, got, c->utc);
	sg_tz_free(tz);
}
END_TEST

/* The two DST changes of 2026 spelled out, besides the generated table. */
START_TEST(zone_dst_2026)
{
	struct sg_tz *ber = must_load("Europe/Berlin");
	struct sg_tz *nyc = must_load("America/New_York");
	int64_t us;

	/* Berlin: 02:30 on 29 March does not exist; read as +01:00 it is 03:30 CEST */
	ck_assert_int_eq(sg_time_parse_local("2026-03-29T02:30:00", ber, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-03-29T01:30:00Z"));
	/* Berlin: 02:30 on 25 October happens twice; the first one (CEST) wins */
	ck_assert_int_eq(sg_time_parse_local("2026-10-25T02:30:00", ber, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-10-25T00:30:00Z"));
	/* New York: 02:30 on 8 March does not exist; read as EST */
	ck_assert_int_eq(sg_time_parse_local("2026-03-08T02:30:00", nyc, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-03-08T07:30:00Z"));
	/* New York: 01:30 on 1 November happens twice; the first one (EDT) wins */
	ck_assert_int_eq(sg_time_parse_local("2026-11-01T01:30:00.25", nyc, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-11-01T05:30:00.25Z"));
	/* 2090 is beyond the table of a fat file: only the footer rule knows */
	ck_assert_int_eq(sg_time_parse_local("2090-07-01T12:00:00", ber, &us), 0);
	ck_assert_int_eq(us, must_parse("2090-07-01T10:00:00Z"));
	ck_assert_int_eq(sg_time_parse_local("2090-12-01T12:00:00", nyc, &us), 0);
	ck_assert_int_eq(us, must_parse("2090-12-01T17:00:00Z"));
	/* before the first transition: local mean time */
	ck_assert_int_eq(sg_tz_offset_at(ber, must_parse("1850-01-01T00:00:00Z") / 1000000), 3208);
	ck_assert_int_eq(sg_tz_offset_at(nyc, must_parse("1800-01-01T00:00:00Z") / 1000000),
	                 -17762);
	/* the extremes neither crash nor overflow */
	ck_assert_int_eq(sg_tz_offset_at(ber, INT64_MIN), 3208);
	ck_assert(sg_tz_offset_at(ber, INT64_MAX) == 3600 ||
	          sg_tz_offset_at(ber, INT64_MAX) == 7200);
	ck_assert_int_eq(sg_tz_local_to_utc(nyc, INT64_MIN / 2) < 0, 1);
	ck_assert_int_eq(sg_tz_local_to_utc(nyc, INT64_MAX) > 0, 1);
	sg_tz_free(ber);
	sg_tz_free(nyc);
}
END_TEST

START_TEST(bad_names)
{
	char longname[400];
	char err[ERRLEN];

	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	expect_load_fails("Nope/Nowhere", "Nope/Nowhere");
	expect_load_fails("../etc/passwd", "refused");
	expect_load_fails("/etc/localtime", "refused");
	expect_load_fails("Europe/../Europe/Berlin", "refused");
	expect_load_fails("Europe/..", "refused");
	expect_load_fails("Europe", "not a regular file");
	expect_load_fails("Europe/Berlin\n", "character");
	expect_load_fails("Europe/Ber lin", "character");
	expect_load_fails("Europe\\Berlin", "character");
	expect_load_fails("", "empty");
	expect_load_fails(NULL, "empty");
	expect_load_fails(longname, "longer");
	/* no room for a message is not a crash */
	ck_assert_ptr_null(sg_tz_load("Nope/Nowhere", NULL, 0));
	err[0] = 'x';
	ck_assert_ptr_null(sg_tz_load("Nope/Nowhere", err, 1));
	ck_assert_int_eq(err[0], '\0');
}
END_TEST

START_TEST(leap_second_zone)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/right/Europe/Berlin", system_zoneinfo());
	if (access(path, R_OK) != 0)
		return; /* tzdata without the right/ zones */
	expect_load_fails("right/Europe/Berlin", "leap-second");
}
END_TEST

/* ---- hand-built files in a private $TZDIR ---------------------------------------------- */

START_TEST(footer_offset_table)
{
	const struct off_case *c = &footer_offsets[_i];
	struct sg_tz *tz = load_footer(c->zone);
	int64_t us = must_parse(c->utc);

	ck_assert_msg(sg_tz_offset_at(tz, us / 1000000) == c->offset, "%s at %s: %d, want %d",
	              c->zone, c->utc, sg_tz_offset_at(tz, us / 1000000), c->offset);
	sg_tz_free(tz);
}
END_TEST

START_TEST(footer_local_table)
{
	const struct local_case *c = &footer_locals[_i];
	struct sg_tz *tz = load_footer(c->zone);
	int64_t us = 0, want = must_parse(c->utc);
	char got[SG_TIME_BUFSZ];

	ck_assert_int_eq(sg_time_parse_local(c->local, tz, &us), 0);
	sg_time_format(us, got, sizeof(got));
	ck_assert_msg(us == want, "%s %s: got %s, want %s", c->zone, c->local, got, c->utc);
	sg_tz_free(tz);
}
END_TEST

START_TEST(footer_bad)
{
	static const char *const cases[] = {
	    "CET-1CEST",        /* DST without rules */
	    "CET-1CEST,M3.5.0", /* one rule */
	    "CET-1CEST,M3.5.0,M10.5.0,",
	    "CE-1", /* abbreviation too short */
	    "CET",  /* no offset */
	    "CET-25",
	    "CET-1:60",
	    "CET-1:00:60",
	    "CET-1CEST,M13.5.0,M10.5.0",
	    "CET-1CEST,M0.5.0,M10.5.0",
	    "CET-1CEST,M3.6.0,M10.5.0",
	    "CET-1CEST,M3.0.0,M10.5.0",
	    "CET-1CEST,M3.5.7,M10.5.0",
	    "CET-1CEST,M3.5,M10.5.0",
	    "CET-1CEST,J0,J365",
	    "CET-1CEST,J366,J1",
	    "CET-1CEST,366,1",
	    "CET-1CEST,M3.5.0/168,M10.5.0",
	    "CET-1CEST,M3.5.0,M10.5.0/-168",
	    "CET-1CEST,M3.5.0,M10.5.0/3x",
	    "<+08-8",
	    "<+8>-8",
	    "<+08>",
	    "C3T-1",
	    " CET-1",
	};
	unsigned char buf[512];
	char long_rule[303];
	char want[ERRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = build_tzif(buf, sizeof(buf), cases[i], 0);

		write_zone("Bad", buf, len);
		expect_load_fails("Bad", "TZ string");
	}

	/* a control character, and a rule longer than any real one, are not echoed */
	write_zone("Bad", buf, build_tzif(buf, sizeof(buf), "CET-1\x1b[2J", 0));
	snprintf(want, sizeof(want), "time zone file %s/Bad: bad TZ string", tmpdir);
	expect_load_fails("Bad", want);
	memset(long_rule, 'A', 300);
	memcpy(long_rule + 300, "-1", 3);
	write_zone("Bad", buf, build_tzif(buf, sizeof(buf), long_rule, 0));
	expect_load_fails("Bad", want);
}
END_TEST

/* An empty footer: the last (here the only) time type holds for ever. */
START_TEST(footer_empty)
{
	unsigned char buf[512];
	size_t len = build_tzif(buf, sizeof(buf), "", 19800);
	struct sg_tz *tz;
	int64_t us;

	write_zone("Fixed", buf, len);
	tz = must_load("Fixed");
	ck_assert_int_eq(sg_tz_offset_at(tz, INT64_C(-5000000000)), 19800);
	ck_assert_int_eq(sg_tz_offset_at(tz, INT64_C(5000000000)), 19800);
	ck_assert_int_eq(sg_time_parse_local("2026-06-05T14:03:11", tz, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-06-05T08:33:11Z"));
	sg_tz_free(tz);
}
END_TEST

/* Built-in names need no file, even when $TZDIR is empty. */
START_TEST(tzdir_builtin_utc)
{
	struct sg_tz *tz = must_load("UTC");

	ck_assert_int_eq(sg_tz_offset_at(tz, 1000), 0);
	sg_tz_free(tz);
	expect_load_fails("Europe/Berlin", "unknown time zone");
}
END_TEST

/* Every proper prefix of a real file is refused, and so is anything appended to it. */
START_TEST(tzdir_truncated)
{
	size_t len;
	unsigned char *data = slurp_system_zone("Europe/Berlin", &len);
	struct sg_tz *tz;

	for (size_t n = 0; n < len; n++) {
		char err[ERRLEN] = "";

		write_zone("Trunc", data, n);
		tz = sg_tz_load("Trunc", err, sizeof(err));
		if (tz)
			ck_abort_msg("a %zu-byte prefix of %zu loaded", n, len);
		if (n == 0 && !strstr(err, "size 0"))
			ck_abort_msg("empty file: \"%s\"", err);
		if (n > 0 && n < 4 && !strstr(err, "not a TZif file"))
			ck_abort_msg("%zu bytes: \"%s\"", n, err);
		if (n >= 4 && !strstr(err, "truncated"))
			ck_abort_msg("%zu bytes: \"%s\"", n, err);
	}

	/* the whole file loads from $TZDIR and agrees with the system copy */
	write_zone("Trunc", data, len);
	tz = must_load("Trunc");
	ck_assert_str_eq(sg_tz_name(tz), "Trunc");
	ck_assert_int_eq(sg_tz_offset_at(tz, must_parse("2026-07-01T00:00:00Z") / 1000000), 7200);
	ck_assert_int_eq(sg_tz_offset_at(tz, must_parse("2026-01-01T00:00:00Z") / 1000000), 3600);
	sg_tz_free(tz);

	data[len] = '\n';
	write_zone("Trunc", data, len + 1);
	expect_load_fails("Trunc", "trailing data");
	free(data);
}
END_TEST

START_TEST(tzdir_corrupt)
{
	size_t len, v1len, timecnt;
	unsigned char *data = slurp_system_zone("Europe/Berlin", &len);
	unsigned char *copy = malloc(len);

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, data, len);
	copy[0] = 'X';
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "not a TZif file");

	memcpy(copy, data, len);
	copy[4] = 'X';
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "version");

	/* a transition pointing past the last time type, in the 64-bit section */
	v1len = v1_length(data);
	timecnt = get32(data + v1len + 32);
	ck_assert_uint_gt(timecnt, 1);
	memcpy(copy, data, len);
	copy[v1len + 44 + timecnt * 8 + 1] = 0xff;
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad transition 1");

	/* transitions out of order */
	memcpy(copy, data, len);
	memcpy(copy + v1len + 44, data + v1len + 44 + 8, 8);
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad transition 1");

	/* a time type offset of -2^31 */
	memcpy(copy, data, len);
	put32(copy + v1len + 44 + timecnt * 9, 0x80000000u);
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad local time type 0");

	/* the second header's magic damaged */
	memcpy(copy, data, len);
	copy[v1len] = 'X';
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad second header");

	/* the footer ("\nCET-1CEST,M3.5.0,M10.5.0/3\n") without its leading newline */
	ck_assert_int_eq(memcmp(data + len - 28, "\nCET-1CEST,", 11), 0);
	memcpy(copy, data, len);
	copy[len - 28] = 'X';
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad footer");

	/* ... or with a damaged rule */
	memcpy(copy, data, len);
	copy[len - 17] = 'Q';
	write_zone("Bad", copy, len);
	expect_load_fails("Bad", "bad TZ string \"CET-1CEST,Q3.5.0,M10.5.0/3\"");

	/* ... or without its final newline */
	write_zone("Bad", data, len - 1);
	expect_load_fails("Bad", "truncated");
	free(copy);
	free(data);
}
END_TEST

/* The 32-bit section alone, as a version 1 file: still right within its table. */
START_TEST(tzdir_version1)
{
	size_t len, v1len;
	unsigned char *data = slurp_system_zone("Europe/Berlin", &len);
	struct sg_tz *tz;
	int64_t us;

	v1len = v1_length(data);
	ck_assert_uint_gt(get32(data + 32), 100); /* the 32-bit table reaches 2037 */
	ck_assert_uint_lt(v1len, len);
	data[4] = '\0';
	write_zone("V1", data, v1len);
	tz = must_load("V1");
	ck_assert_int_eq(sg_time_parse_local("2026-03-29T02:30:00", tz, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-03-29T01:30:00Z"));
	ck_assert_int_eq(sg_time_parse_local("2026-10-25T02:30:00", tz, &us), 0);
	ck_assert_int_eq(us, must_parse("2026-10-25T00:30:00Z"));
	ck_assert_int_eq(sg_tz_offset_at(tz, must_parse("2026-07-01T00:00:00Z") / 1000000), 7200);
	/* no footer: after the table (2037) the last type, CET, holds */
	ck_assert_int_eq(sg_tz_offset_at(tz, must_parse("2090-07-01T00:00:00Z") / 1000000), 3600);
	sg_tz_free(tz);

	/* a version 1 file ends with its 32-bit section */
	write_zone("V1", data, v1len + 1);
	expect_load_fails("V1", "trailing data");
	free(data);
}
END_TEST

START_TEST(tzdir_oversize)
{
	size_t len, big = (1u << 20) + 1;
	unsigned char *data = slurp_system_zone("Europe/Berlin", &len);
	unsigned char *huge = calloc(1, big);

	ck_assert_ptr_nonnull(huge);
	memcpy(huge, data, len);
	write_zone("Huge", huge, big);
	expect_load_fails("Huge", "out of range");
	free(huge);
	free(data);
}
END_TEST

static Suite *time_suite(void)
{
	Suite *s = suite_create("time");
	TCase *tc;

	tc = tcase_create("rfc3339");
	tcase_add_test(tc, rfc3339_good);
	tcase_add_test(tc, rfc3339_bad);
	tcase_add_test(tc, format_cases);
	tcase_add_test(tc, format_refuses);
	tcase_add_test(tc, format_roundtrip);
	tcase_add_test(tc, civil_days);
	tcase_add_test(tc, civil_edges);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("local");
	tcase_add_test(tc, local_utc);
	tcase_add_test(tc, local_shanghai);
	tcase_add_test(tc, local_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("zones");
	tcase_add_loop_test(tc, zone_offset_table, 0,
	                    (int)(sizeof(zone_offsets) / sizeof(zone_offsets[0])));
	tcase_add_loop_test(tc, zone_local_table, 0,
	                    (int)(sizeof(zone_locals) / sizeof(zone_locals[0])));
	tcase_add_test(tc, zone_dst_2026);
	tcase_add_test(tc, bad_names);
	tcase_add_test(tc, leap_second_zone);
	suite_add_tcase(s, tc);

	tc = tcase_create("tzdir");
	tcase_add_checked_fixture(tc, tzdir_setup, tzdir_teardown);
	tcase_add_loop_test(tc, footer_offset_table, 0,
	                    (int)(sizeof(footer_offsets) / sizeof(footer_offsets[0])));
	tcase_add_loop_test(tc, footer_local_table, 0,
	                    (int)(sizeof(footer_locals) / sizeof(footer_locals[0])));
	tcase_add_test(tc, footer_bad);
	tcase_add_test(tc, footer_empty);
	tcase_add_test(tc, tzdir_builtin_utc);
	tcase_add_test(tc, tzdir_truncated);
	tcase_add_test(tc, tzdir_corrupt);
	tcase_add_test(tc, tzdir_version1);
	tcase_add_test(tc, tzdir_oversize);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(time_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
