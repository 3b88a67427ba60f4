/* tz.c - see tz.h.
 *
 * A zone is the transition table of a TZif file (RFC 8536; the 64-bit v2+ section when there
 * is one) plus the POSIX TZ rule from its footer, which governs every instant after the last
 * table transition. Nothing here calls tzset/localtime/mktime or reads TZ. */
#include "tz.h"

#include "civil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX (1u << 20) /* real files are < 4 KiB; anything this big is not one */
#define TZ_NAME_MAX 255        /* bytes, without the NUL */
#define TZ_PATH_MAX 4096
#define TZ_FOOTER_MAX 256 /* a POSIX TZ string; real ones are < 64 bytes */
#define TZ_ABBR_MAX 32    /* a zone abbreviation in a TZ string, <…> form included */
#define TZ_HEADER_LEN 44
#define TZ_MAX_TYPES 256 /* transition type indices are one byte */
/* RFC 8536: UT offsets should be within -24:59:59 .. +25:59:59. */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
/* Instants beyond ±2^52 s (±142 million years) are clamped before calendar arithmetic so
 * that nothing can overflow; the calendar is meaningless that far out anyway. */
#define TZ_TIME_LIMIT (INT64_C(1) << 52)
/* Farthest a wall clock can be from UTC, plus one: bounds the search in local_to_utc. */
#define TZ_WINDOW 93600
#define TZ_SECS_PER_DAY 86400

/* One end of a DST period in a POSIX TZ rule. */
struct tz_rule_date {
	char kind;             /* 'J': Julian day 1..365 without Feb 29; 'D': day 0..365; 'M' */
	int day;               /* for 'J' and 'D' */
	int month, week, wday; /* for 'M': month 1..12, week 1..5 (5 = last), weekday 0..6 */
	int32_t secs;          /* wall-clock time of day, -167h .. +167h (RFC 8536 v3) */
};

/* A POSIX TZ rule, offsets as seconds east of UTC (the string itself counts westwards). */
struct tz_rule {
	int32_t std_off;
	int32_t dst_off;
	bool has_dst;
	struct tz_rule_date start; /* into DST, read in standard wall time */
	struct tz_rule_date end;   /* out of DST, read in DST wall time */
};

struct sg_tz {
	char name[TZ_NAME_MAX + 1];
	size_t ntrans;
	int64_t *trans;     /* UTC instants, strictly ascending */
	int32_t *trans_off; /* offset in force from trans[i] on */
	int32_t first_off;  /* offset before the first transition: time type 0 */
	bool has_rule;      /* the footer rule applies from the last transition on */
	struct tz_rule rule;
};

/* The counts of one TZif header. */
struct tzif_header {
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Messages go to a caller-supplied buffer that may be absent. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t clamp_time(int64_t t)
{
	if (t > TZ_TIME_LIMIT)
		return TZ_TIME_LIMIT;
	if (t < -TZ_TIME_LIMIT)
		return -TZ_TIME_LIMIT;
	return t;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* ---- POSIX TZ strings ------------------------------------------------------------------ */

/* An abbreviation: three or more letters, or <…> holding three or more of [A-Za-z0-9+-]. */
static int parse_abbr(const char **p)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '<') {
		s++;
		while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		       (*s >= '0' && *s <= '9') || *s == '+' || *s == '-') {
			s++;
			n++;
		}
		if (*s != '>')
			return -1;
		s++;
	} else {
		while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
			s++;
			n++;
		}
	}
	if (n < 3 || n > TZ_ABBR_MAX)
		return -1;
	*p = s;
	return 0;
}

/* An unsigned number of 1..maxdig ASCII digits. */
static int parse_num(const char **p, int maxdig, int *out)
{
	const char *s = *p;
	int v = 0, n = 0;

	while (*s >= '0' && *s <= '9' && n < maxdig) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (*s >= '0' && *s <= '9'))
		return -1;
	*p = s;
	*out = v;
	return 0;
}

/* Consumes the character c, if it is next. */
static bool eat(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* [+-]hh[:mm[:ss]], hours up to max_h: 24 for offsets, 167 for transition times (v3). */
static int parse_hms(const char **p, int max_h, int32_t *secs)
{
	const char *s = *p;
	int sign = 1, hh, mm = 0, ss = 0;

	if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		s++;
	}
	if (parse_num(&s, max_h > 99 ? 3 : 2, &hh) < 0 || hh > max_h)
		return -1;
	if (eat(&s, ':')) {
		if (parse_num(&s, 2, &mm) < 0 || mm > 59)
			return -1;
		if (eat(&s, ':') && (parse_num(&s, 2, &ss) < 0 || ss > 59))
			return -1;
	}
	*secs = sign * (hh * 3600 + mm * 60 + ss);
	*p = s;
	return 0;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00:00). */
static int parse_rule_date(const char **p, struct tz_rule_date *r)
{
	const char *s = *p;

	memset(r, 0, sizeof(*r));
	if (*s == 'J') {
		s++;
		r->kind = 'J';
		if (parse_num(&s, 3, &r->day) < 0 || r->day < 1 || r->day > 365)
			return -1;
	} else if (*s == 'M') {
		s++;
		r->kind = 'M';
		if (parse_num(&s, 2, &r->month) < 0 || r->month < 1 || r->month > 12 ||
		    !eat(&s, '.') || parse_num(&s, 1, &r->week) < 0 || r->week < 1 || r->week > 5 ||
		    !eat(&s, '.') || parse_num(&s, 1, &r->wday) < 0 || r->wday > 6)
			return -1;
	} else {
		r->kind = 'D';
		if (parse_num(&s, 3, &r->day) < 0 || r->day > 365)
			return -1;
	}
	r->secs = 2 * 3600;
	if (eat(&s, '/') && parse_hms(&s, 167, &r->secs) < 0)
		return -1;
	*p = s;
	return 0;
}

/* std offset [dst [offset] ,start[/time],end[/time]]. A DST name without rules leaves the
 * dates to the implementation in POSIX; zic never writes that, so it is refused rather than
 * guessed. */
static int parse_posix_tz(const char *s, struct tz_rule *r)
{
	int32_t off;

	memset(r, 0, sizeof(*r));
	if (parse_abbr(&s) < 0 || parse_hms(&s, 24, &off) < 0)
		return -1;
	r->std_off = -off;
	if (*s == '\0')
		return 0;
	if (parse_abbr(&s) < 0)
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (parse_hms(&s, 24, &off) < 0)
			return -1;
		r->dst_off = -off;
	}
	if (!eat(&s, ',') || parse_rule_date(&s, &r->start) < 0 || !eat(&s, ',') ||
	    parse_rule_date(&s, &r->end) < 0 || *s != '\0')
		return -1;
	return 0;
}

/* Wall-clock seconds (local time read as UTC) at which date d falls in year y. */
static int64_t rule_date_wall(const struct tz_rule_date *d, int64_t y)
{
	int64_t days = sg_days_from_civil(y, 1, 1);

	switch (d->kind) {
	case 'J':
		days += d->day - 1 + ((sg_is_leap(y) && d->day >= 60) ? 1 : 0);
		break;
	case 'D':
		days += d->day;
		break;
	default: {
		int64_t first = sg_days_from_civil(y, (unsigned)d->month, 1);
		int first_wday = (int)sg_weekday_from_days(first); /* 0 = Sunday */
		int len = (int)sg_days_in_month(y, (unsigned)d->month);
		int mday = 1 + (d->wday - first_wday + 7) % 7 + 7 * (d->week - 1);

		if (mday > len)
			mday -= 7; /* week 5 means the last such weekday of the month */
		days = first + mday - 1;
		break;
	}
	}
	return days * TZ_SECS_PER_DAY + d->secs;
}

/* UTC instants of the rule's start and end of DST in year y. */
static void rule_year(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
	*start = rule_date_wall(&r->start, y) - r->std_off;
	*end = rule_date_wall(&r->end, y) - r->dst_off;
}

static int64_t rule_year_of(const struct tz_rule *r, int64_t t)
{
	int64_t y;

	sg_civil_from_days(sg_floor_div(t + r->std_off, TZ_SECS_PER_DAY), &y, NULL, NULL);
	return y;
}

/* The rule's offset at UTC instant t. When the DST period wraps the new year (southern
 * hemisphere, or negative DST as in Europe/Dublin) start comes after end within the year. */
static int32_t rule_offset_at(const struct tz_rule *r, int64_t t)
{
	int64_t start, end;
	bool dst;

	if (!r->has_dst)
		return r->std_off;
	t = clamp_time(t);
	rule_year(r, rule_year_of(r, t), &start, &end);
	if (start < end)
		dst = start <= t && t < end;
	else
		dst = !(end <= t && t < start);
	return dst ? r->dst_off : r->std_off;
}

/* The first rule transition strictly after t, or INT64_MAX when the rule has none. Looking
 * at the neighbouring years too covers transition times pushed across a year boundary. */
static int64_t rule_next_transition(const struct tz_rule *r, int64_t t)
{
	int64_t best = INT64_MAX, y, cand[2];

	if (!r->has_dst || t >= TZ_TIME_LIMIT)
		return INT64_MAX;
	t = clamp_time(t);
	y = rule_year_of(r, t);
	for (int64_t yy = y - 1; yy <= y + 1; yy++) {
		rule_year(r, yy, &cand[0], &cand[1]);
		for (int i = 0; i < 2; i++) {
			if (cand[i] > t && cand[i] < best)
				best = cand[i];
		}
	}
	return best;
}

/* ---- TZif files ------------------------------------------------------------------------ */

/* Reads and checks one header at buf[pos]; the data block it announces must fit in len. */
static int read_header(const unsigned char *buf, size_t len, size_t pos, bool wide,
                       struct tzif_header *h, size_t *block_len)
{
	const unsigned char *p = buf + pos;
	size_t tsz = wide ? 8 : 4, n;

	if (len - pos < TZ_HEADER_LEN)
		return -1;
	if (memcmp(p, "TZif", 4) != 0)
		return -1;
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	/* each count is at most the file size, so the sums below cannot overflow */
	if (h->isutcnt > len || h->isstdcnt > len || h->leapcnt > len || h->timecnt > len ||
	    h->typecnt > len || h->charcnt > len)
		return -1;
	n = (size_t)h->timecnt * (tsz + 1) + (size_t)h->typecnt * 6 + h->charcnt +
	    (size_t)h->leapcnt * (tsz + 4) + h->isstdcnt + h->isutcnt;
	if (n > len - pos - TZ_HEADER_LEN)
		return -2; /* truncated */
	*block_len = n;
	return 0;
}

/* Loads the transitions and types of a data block at buf[pos] into tz. */
static int read_block(struct sg_tz *tz, const unsigned char *buf, size_t pos,
                      const struct tzif_header *h, bool wide, char *err, size_t errlen,
                      const char *path)
{
	const unsigned char *times = buf + pos;
	const unsigned char *idx = times + (size_t)h->timecnt * (wide ? 8 : 4);
	const unsigned char *types = idx + h->timecnt;
	int32_t offs[TZ_MAX_TYPES];

	if (h->typecnt == 0 || h->typecnt > TZ_MAX_TYPES ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
	    (h->isutcnt != 0 && h->isutcnt != h->typecnt)) {
		set_err(err, errlen, "time zone file %s: bad counts", path);
		return -1;
	}
	if (h->leapcnt != 0) {
		set_err(err, errlen, "time zone file %s: leap-second zones are not supported",
		        path);
		return -1;
	}
	for (uint32_t i = 0; i < h->typecnt; i++) {
		const unsigned char *t = types + 6 * (size_t)i;
		int32_t off = (int32_t)be32(t);

		if (off < TZ_OFF_MIN || off > TZ_OFF_MAX || t[4] > 1 || t[5] >= h->charcnt) {
			set_err(err, errlen, "time zone file %s: bad local time type %u", path,
			        (unsigned)i);
			return -1;
		}
		offs[i] = off;
	}
	tz->first_off = offs[0];
	if (h->timecnt == 0)
		return 0;

	tz->trans = calloc(h->timecnt, sizeof(*tz->trans));
	tz->trans_off = calloc(h->timecnt, sizeof(*tz->trans_off));
	if (!tz->trans || !tz->trans_off) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < h->timecnt; i++) {
		int64_t t = wide ? be64(times + 8 * (size_t)i)
		                 : (int64_t)(int32_t)be32(times + 4 * (size_t)i);

		if (idx[i] >= h->typecnt || (i > 0 && t <= tz->trans[i - 1])) {
			set_err(err, errlen, "time zone file %s: bad transition %u", path,
			        (unsigned)i);
			return -1;
		}
		tz->trans[i] = t;
		tz->trans_off[i] = offs[idx[i]];
	}
	tz->ntrans = h->timecnt;
	return 0;
}

/* Parses a whole TZif file held in memory. A version 1 file is read from its 32-bit
 * section; a later one from its 64-bit section and footer, which must end the file. */
static int parse_tzif(struct sg_tz *tz, const unsigned char *buf, size_t len, const char *path,
                      char *err, size_t errlen)
{
	struct tzif_header h1, h2;
	size_t blk1, blk2, pos, flen;
	const unsigned char *footer, *nl;
	char fstr[TZ_FOOTER_MAX + 1];
	bool printable;
	int rc;

	if (len < 4 || memcmp(buf, "TZif", 4) != 0) {
		set_err(err, errlen, "time zone file %s: not a TZif file", path);
		return -1;
	}
	rc = read_header(buf, len, 0, false, &h1, &blk1);
	if (rc < 0)
		goto truncated;
	if (h1.version != '\0' && (h1.version < '2' || h1.version > '9')) {
		set_err(err, errlen, "time zone file %s: unknown TZif version", path);
		return -1;
	}
	if (h1.version == '\0') {
		if (TZ_HEADER_LEN + blk1 != len) {
			set_err(err, errlen, "time zone file %s: trailing data", path);
			return -1;
		}
		return read_block(tz, buf, TZ_HEADER_LEN, &h1, false, err, errlen, path);
	}

	pos = TZ_HEADER_LEN + blk1;
	rc = read_header(buf, len, pos, true, &h2, &blk2);
	if (rc == -1 && len - pos >= TZ_HEADER_LEN) {
		set_err(err, errlen, "time zone file %s: bad second header", path);
		return -1;
	}
	if (rc < 0)
		goto truncated;
	if (h2.version != h1.version) {
		set_err(err, errlen, "time zone file %s: header versions differ", path);
		return -1;
	}
	if (read_block(tz, buf, pos + TZ_HEADER_LEN, &h2, true, err, errlen, path) < 0)
		return -1;

	/* footer: "\n" TZ-string "\n", and nothing after it */
	pos += TZ_HEADER_LEN + blk2;
	if (pos >= len)
		goto truncated;
	if (buf[pos] != '\n') {
		set_err(err, errlen, "time zone file %s: bad footer", path);
		return -1;
	}
	footer = buf + pos + 1;
	nl = memchr(footer, '\n', len - pos - 1);
	if (!nl)
		goto truncated;
	if ((size_t)(nl - buf) != len - 1) {
		set_err(err, errlen, "time zone file %s: trailing data", path);
		return -1;
	}
	flen = (size_t)(nl - footer);
	if (flen == 0)
		return 0; /* no rule: the last table entry holds forever */
	/* only printable ASCII may reach the error message (and so the logs) */
	printable = flen <= TZ_FOOTER_MAX;
	for (size_t i = 0; printable && i < flen; i++)
		printable = footer[i] >= 0x20 && footer[i] <= 0x7e;
	if (!printable) {
		set_err(err, errlen, "time zone file %s: bad TZ string", path);
		return -1;
	}
	memcpy(fstr, footer, flen);
	fstr[flen] = '\0';
	if (parse_posix_tz(fstr, &tz->rule) < 0) {
		set_err(err, errlen, "time zone file %s: bad TZ string \"%s\"", path, fstr);
		return -1;
	}
	tz->has_rule = true;
	return 0;

truncated:
	set_err(err, errlen, "time zone file %s: truncated", path);
	return -1;
}

/* Reads at most TZ_FILE_MAX bytes of a regular file into a new buffer. */
static unsigned char *read_file(const char *path, size_t *len, const char *name, char *err,
                                size_t errlen)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	char eb[128];
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			set_err(err, errlen, "unknown time zone \"%s\" (no file %s)", name, path);
		else
			set_err(err, errlen, "time zone file %s: %s", path,
			        strerror_r(errno, eb, sizeof(eb)));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		set_err(err, errlen, "unknown time zone \"%s\" (%s is not a regular file)", name,
		        path);
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > (off_t)TZ_FILE_MAX) {
		set_err(err, errlen, "time zone file %s: size %lld out of range", path,
		        (long long)st.st_size);
		goto fail;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, "time zone file %s: %s", path,
			        strerror_r(errno, eb, sizeof(eb)));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got; /* a file that shrank while read is caught as truncated by the parser */
	return buf;

fail:
	free(buf);
	close(fd);
	return NULL;
}

/* A zone name may only use the characters of IANA names, and must stay inside the zone
 * directory: not absolute, no "..". */
static int check_name(const char *name, char *err, size_t errlen)
{
	size_t n;

	if (!name || !*name) {
		set_err(err, errlen, "empty time zone name");
		return -1;
	}
	n = strnlen(name, TZ_NAME_MAX + 1);
	if (n > TZ_NAME_MAX) {
		set_err(err, errlen, "time zone name longer than %d bytes", TZ_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '-' || c == '+' || c == '.')) {
			set_err(err, errlen,
			        "time zone name has a character outside [A-Za-z0-9/_+.-]");
			return -1;
		}
	}
	if (name[0] == '/' || strstr(name, "..")) {
		set_err(err, errlen, "time zone name \"%s\" refused: absolute, or contains \"..\"",
		        name);
		return -1;
	}
	return 0;
}

struct sg_tz *sg_tz_load(const char *name, char *err, size_t errlen)
{
	struct sg_tz *tz = NULL;
	unsigned char *buf = NULL;
	char path[TZ_PATH_MAX];
	const char *dir;
	size_t len = 0;
	int n;

	if (check_name(name, err, errlen) < 0)
		return NULL;
	tz = calloc(1, sizeof(*tz));
	if (!tz) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(tz->name, name, strlen(name) + 1);
	if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") || !strcmp(name, "Z"))
		return tz; /* no transitions, type 0 at offset 0, no rule */

	dir = getenv("TZDIR");
	if (!dir || !*dir)
		dir = TZ_DEFAULT_DIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		set_err(err, errlen, "time zone path too long");
		goto fail;
	}
	buf = read_file(path, &len, name, err, errlen);
	if (!buf)
		goto fail;
	if (parse_tzif(tz, buf, len, path, err, errlen) < 0)
		goto fail;
	free(buf);
	return tz;

fail:
	free(buf);
	sg_tz_free(tz);
	return NULL;
}

void sg_tz_free(struct sg_tz *tz)
{
	if (!tz)
		return;
	free(tz->trans);
	free(tz->trans_off);
	free(tz);
}

const char *sg_tz_name(const struct sg_tz *tz)
{
	return tz ? tz->name : NULL;
}

/* Index of the last transition at or before t; t must not precede trans[0]. */
static size_t last_transition_at(const struct sg_tz *tz, int64_t t)
{
	size_t lo = 0, hi = tz->ntrans; /* trans[lo] <= t < trans[hi] */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Before the table: time type 0. Inside it: the entry in force. From the last transition
 * on: the footer rule when there is one (RFC 8536 §3.3), else the last entry. */
int32_t sg_tz_offset_at(const struct sg_tz *tz, int64_t utc)
{
	size_t i;

	if (!tz)
		return 0; /* no zone reads as UTC, as in sg_time_parse_local */
	if (tz->ntrans == 0)
		return tz->has_rule ? rule_offset_at(&tz->rule, utc) : tz->first_off;
	if (utc < tz->trans[0])
		return tz->first_off;
	i = last_transition_at(tz, utc);
	if (i == tz->ntrans - 1 && tz->has_rule)
		return rule_offset_at(&tz->rule, utc);
	return tz->trans_off[i];
}

/* The first instant after t at which the offset may change, or INT64_MAX. */
static int64_t next_transition(const struct sg_tz *tz, int64_t t)
{
	if (tz->ntrans > 0 && t < tz->trans[0])
		return tz->trans[0];
	if (tz->ntrans > 0 && t < tz->trans[tz->ntrans - 1])
		return tz->trans[last_transition_at(tz, t) + 1];
	return tz->has_rule ? rule_next_transition(&tz->rule, t) : INT64_MAX;
}

/* Walks the periods of constant offset that can hold a solution of u + offset(u) == local,
 * in time order. The first period containing local - offset gives the earliest (fold=0)
 * instant; if local falls between the end of one period and the start of the next (a gap),
 * it is read with the offset of the period before the gap. Wall times beyond ±2^52 s are
 * clamped first. */
int64_t sg_tz_local_to_utc(const struct sg_tz *tz, int64_t local)
{
	int64_t start, end, cand;
	int32_t off, pre_off;

	if (!tz)
		return local;
	local = clamp_time(local);
	start = local - TZ_WINDOW;
	off = sg_tz_offset_at(tz, start);
	pre_off = off;
	end = next_transition(tz, start);
	/* real zones have at most a few transitions in any two days; 64 is a hard bound */
	for (int i = 0; i < 64; i++) {
		cand = local - off;
		if (cand >= start && cand < end)
			return cand;
		if (cand < start)
			return local - pre_off;
		pre_off = off;
		if (end == INT64_MAX || end > local + TZ_WINDOW)
			break;
		start = end;
		off = sg_tz_offset_at(tz, start);
		end = next_transition(tz, start);
	}
	return local - pre_off;
}
