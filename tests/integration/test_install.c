/* test_install.c - make install DESTDIR=... puts exactly the daemon's files in place: the
 * binary, sessiongate(8), the configuration under sysconfdir and the systemd unit, whose
 * command line, reload and sandboxing are what docs/packaging.md promises.
 *
 * Needs the build tree (SG_BUILDDIR) and the directories make install uses (SG_BINDIR,
 * SG_SYSCONFDIR, SG_MAN8DIR, SG_UNITDIR: Makefile.am's AM_TESTS_ENVIRONMENT). */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256]; /* the DESTDIR, made once */
static char found[16][1024];
static int nfound;

static const char *env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && *v, "%s is not set (run through make check)", name);
	return v;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* make install into a fresh DESTDIR, once for the whole suite. */
static void install_once(void)
{
	char cmd[4096];

	if (root[0])
		return;
	snprintf(root, sizeof(root), "/tmp/sg-install-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(cmd, sizeof(cmd), "%s -s -C '%s' install DESTDIR='%s' >'%s.log' 2>&1",
	         env("SG_MAKE"), env("SG_BUILDDIR"), root, root);
	ck_assert_msg(run(cmd) == 0, "make install failed: see %s.log", root);
}

static void cleanup(void)
{
	char cmd[1024];

	if (!root[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.log'", root, root);
	(void)run(cmd);
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_F && type != FTW_SL)
		return 0;
	if (nfound < 16)
		snprintf(found[nfound], sizeof(found[0]), "%s", path + strlen(root));
	nfound++;
	return 0;
}

/* ---- the unit's directives ---- */

/* What the unit must say, line by line (docs/packaging.md explains each). */
static const char *const required[] = {
    "Type=simple",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "DynamicUser=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallFilter=@system-service",
    "LimitNOFILE=65536",
    "WantedBy=multi-user.target",
};

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* The value of the one line "key=...", or NULL when absent or given twice. */
static char *value_of(const char *text, const char *key, char *out, size_t outlen)
{
	size_t n = strlen(key);
	int count = 0;

	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > n && strncmp(p, key, n) == 0 && p[n] == '=') {
			snprintf(out, outlen, "%.*s", (int)(len - n - 1), p + n + 1);
			count++;
		}
		p += len + (eol ? 1 : 0);
	}
	return count == 1 ? out : NULL;
}

/* Problems of a unit's text, one per line into out (empty: none). */
static void unit_problems(const char *unit, char *out, size_t outlen)
{
	char want[2048], v[2048];
	long stop;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!has_line(unit, required[i]))
			snprintf(out + strlen(out), outlen - strlen(out), "missing: %s\n",
			         required[i]);
	snprintf(want, sizeof(want), "%s/sessiongate --config %s/sessiongate/sessiongate.json",
	         env("SG_BINDIR"), env("SG_SYSCONFDIR"));
	if (!value_of(unit, "ExecStart", v, sizeof(v)) || strcmp(v, want) != 0)
		snprintf(out + strlen(out), outlen - strlen(out), "ExecStart is not \"%s\"\n",
		         want);
	snprintf(want, sizeof(want), "-%s/default/sessiongate", env("SG_SYSCONFDIR"));
	if (!value_of(unit, "EnvironmentFile", v, sizeof(v)) || strcmp(v, want) != 0)
		snprintf(out + strlen(out), outlen - strlen(out), "EnvironmentFile is not %s\n",
		         want);
	/* a stop must outlast the drain: shutdown_grace_ms' default 10 s, and room for a delay */
	if (!value_of(unit, "TimeoutStopSec", v, sizeof(v)) || (stop = atol(v)) < 15)
		snprintf(out + strlen(out), outlen - strlen(out), "TimeoutStopSec is under 15 s\n");
	if (strstr(unit, "@bindir@") || strstr(unit, "@sysconfdir@"))
		snprintf(out + strlen(out), outlen - strlen(out), "a @variable@ is left\n");
}

/* ---- tests ---- */

START_TEST(test_installs_exactly_the_daemon)
{
	const char *unitdir = getenv("SG_UNITDIR");
	char want[5][1024];
	int nwant = 0;

	install_once();
	snprintf(want[nwant++], sizeof(want[0]), "%s/sessiongate", env("SG_BINDIR"));
	snprintf(want[nwant++], sizeof(want[0]), "%s/sessiongate.8", env("SG_MAN8DIR"));
	snprintf(want[nwant++], sizeof(want[0]), "%s/sessiongate/sessiongate.json",
	         env("SG_SYSCONFDIR"));
	snprintf(want[nwant++], sizeof(want[0]), "%s/sessiongate/sessiongate.example.json",
	         env("SG_SYSCONFDIR"));
	if (unitdir && *unitdir) /* else configure --with-systemdsystemunitdir=no */
		snprintf(want[nwant++], sizeof(want[0]), "%s/sessiongate.service", unitdir);
	nfound = 0;
	ck_assert_int_eq(nftw(root, collect, 16, FTW_PHYS), 0);
	for (int i = 0; i < nfound && i < 16; i++) {
		int known = 0;

		for (int w = 0; w < nwant; w++)
			known |= strcmp(found[i], want[w]) == 0;
		ck_assert_msg(known, "make install put an unexpected file: %s", found[i]);
	}
	for (int w = 0; w < nwant; w++) {
		int present = 0;

		for (int i = 0; i < nfound && i < 16; i++)
			present |= strcmp(found[i], want[w]) == 0;
		ck_assert_msg(present, "make install did not put %s", want[w]);
	}
	ck_assert_int_eq(nfound, nwant);
}
END_TEST

START_TEST(test_installed_files_are_the_sources)
{
	char path[2048], cmd[4096];
	char *a, *b;

	install_once();
	snprintf(path, sizeof(path), "%s%s/sessiongate.8", root, env("SG_MAN8DIR"));
	a = slurp(path);
	snprintf(path, sizeof(path), "%s/man/sessiongate.8", env("SG_SRCDIR"));
	b = slurp(path);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	snprintf(path, sizeof(path), "%s%s/sessiongate", root, env("SG_BINDIR"));
	ck_assert_int_eq(access(path, X_OK), 0);
	snprintf(cmd, sizeof(cmd), "'%s' --version | grep -q '^sessiongate '", path);
	ck_assert_int_eq(run(cmd), 0);
}
END_TEST

/* The installed configuration runs as it is, given the one secret it reads from the
 * environment, and says which one when it is missing. */
START_TEST(test_installed_config_is_valid)
{
	char cmd[4096];

	install_once();
	snprintf(cmd, sizeof(cmd),
	         "SESSIONGATE_CURSOR_SECRET=0123456789abcdef0123456789abcdef '%s%s/sessiongate' "
	         "--check-config --config '%s%s/sessiongate/sessiongate.json' >/dev/null",
	         root, env("SG_BINDIR"), root, env("SG_SYSCONFDIR"));
	ck_assert_int_eq(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
	         "env -u SESSIONGATE_CURSOR_SECRET '%s%s/sessiongate' --check-config --config "
	         "'%s%s/sessiongate/sessiongate.json' 2>&1 | grep -q SESSIONGATE_CURSOR_SECRET",
	         root, env("SG_BINDIR"), root, env("SG_SYSCONFDIR"));
	ck_assert_int_eq(run(cmd), 0);
	/* and the annotated example, with the three it names */
	snprintf(cmd, sizeof(cmd),
	         "SESSIONGATE_CURSOR_SECRET=0123456789abcdef0123456789abcdef SANDBASE_API_KEY=x "
	         "ANTHROPIC_API_KEY=y '%s%s/sessiongate' --check-config --config "
	         "'%s%s/sessiongate/sessiongate.example.json' >/dev/null",
	         root, env("SG_BINDIR"), root, env("SG_SYSCONFDIR"));
	ck_assert_int_eq(run(cmd), 0);
}
END_TEST

/* Configured --with-systemdsystemunitdir=no: no unit to check (said on stderr). */
static int no_unit(void)
{
	const char *d = getenv("SG_UNITDIR");

	if (d && *d)
		return 0;
	fprintf(stderr, "test_install: configured without a unit: the unit is not checked\n");
	return 1;
}

START_TEST(test_unit_directives)
{
	char path[2048], problems[8192];
	char *unit;

	if (no_unit())
		return;
	install_once();
	snprintf(path, sizeof(path), "%s%s/sessiongate.service", root, env("SG_UNITDIR"));
	unit = slurp(path);
	unit_problems(unit, problems, sizeof(problems));
	ck_assert_msg(problems[0] == '\0', "%s:\n%s", path, problems);
	free(unit);
}
END_TEST

/* The directive check fails when a directive goes or the command line changes. */
START_TEST(test_unit_check_catches_removals)
{
	char path[2048], problems[8192];
	char *unit;

	if (no_unit())
		return;
	install_once();
	snprintf(path, sizeof(path), "%s%s/sessiongate.service", root, env("SG_UNITDIR"));
	unit = slurp(path);
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char *cut = strdup(unit), *at;

		ck_assert_ptr_nonnull(cut);
		for (at = cut; (at = strstr(at, required[i])) != NULL; at++)
			if ((at == cut || at[-1] == '\n') && at[strlen(required[i])] == '\n')
				break;
		ck_assert_ptr_nonnull(at);
		memmove(at, at + strlen(required[i]) + 1, strlen(at + strlen(required[i]) + 1) + 1);
		unit_problems(cut, problems, sizeof(problems));
		ck_assert_msg(strstr(problems, required[i]) != NULL, "removing %s went unnoticed",
		              required[i]);
		free(cut);
	}
	{
		char *changed = strdup(unit), *at = strstr(changed, "--config ");

		ck_assert_ptr_nonnull(at);
		memcpy(at, "--cunfig ", 9);
		unit_problems(changed, problems, sizeof(problems));
		ck_assert_ptr_nonnull(strstr(problems, "ExecStart"));
		free(changed);
	}
	free(unit);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("install");
	TCase *tc = tcase_create("install");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_installs_exactly_the_daemon);
	tcase_add_test(tc, test_installed_files_are_the_sources);
	tcase_add_test(tc, test_installed_config_is_valid);
	tcase_add_test(tc, test_unit_directives);
	tcase_add_test(tc, test_unit_check_catches_removals);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* one process: the tests share the one installation */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
