/*-------------------------------------------------------------------------
 *
 * stress_common.c
 *	  Code shared by the two libpq stress tests, stress.c and group_stress.c:
 *	  the run's clock and alarm() deadlines, random numbers, memory and
 *	  string helpers, connecting to the local server only (PGHOST and
 *	  PGHOSTADDR checked before connecting, the host used checked after),
 *	  libpq error text, prepared statements and pgq_send, the temporary
 *	  directory of the children's logs, reading the producers' logs into
 *	  the sends the checks look at, searching records by position, option
 *	  parsing, the checks' output (failures and verdict lines), and the
 *	  messages printed when the run cannot be set up or runs over time.
 *	  See stress_common.h.
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_common.h"

#define STATEMENT_TIMEOUT	"5s"
#define CONNECT_TIMEOUT		"5"

const char *progname = "stress";
char		tmpdir[PATH_MAX];
bool		tidy_libpq_errors = false;

static int	nchecks;
static int64_t t0_mono_us;		/* start of the run, CLOCK_MONOTONIC */

/* the parent's message for its alarm: see set_alarm_message */
static char alarm_message[512];
static volatile sig_atomic_t alarm_exit_status = 1;

void
stress_common_init(const char *name, int checks)
{
	t0_mono_us = mono_us();
	progname = name;
	nchecks = checks;
}

/* ---------------------------------------------------------------------
 * Time and random numbers
 * ---------------------------------------------------------------------
 */

int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* microseconds since the start of the run */
long long
run_us(void)
{
	return (long long) (mono_us() - t0_mono_us);
}

/* seconds (at least 1) from now until t0 + after_s, for alarm() */
unsigned
alarm_secs_until(int after_s)
{
	int64_t		left = t0_mono_us + (int64_t) after_s * 1000000 - mono_us();

	if (left <= 1000000)
		return 1;
	return (unsigned) ((left + 999999) / 1000000);
}

void
sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* splitmix64: a small, good generator; each child has its own state */
static uint64_t
rnd_next(uint64_t *state)
{
	uint64_t	z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* uniform in [0, n) */
int
rnd_below(uint64_t *state, int n)
{
	return (int) (rnd_next(state) % (uint64_t) n);
}

bool
rnd_percent(uint64_t *state, int percent)
{
	return rnd_below(state, 100) < percent;
}

/* ---------------------------------------------------------------------
 * Memory and strings
 * ---------------------------------------------------------------------
 */

void
out_of_memory(void)
{
	fprintf(stderr, "%s: out of memory\n", progname);
	exit(1);
}

void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
grow_array(void *array, size_t *capacity, size_t needed, size_t elsize)
{
	void	   *p;
	size_t		cap = *capacity ? *capacity : 1024;

	if (needed <= *capacity)
		return array;
	while (cap < needed)
		cap *= 2;
	p = realloc(array, cap * elsize);
	if (p == NULL)
		out_of_memory();
	*capacity = cap;
	return p;
}

static char *
xstrdup(const char *s)
{
	char	   *d = strdup(s);

	if (d == NULL)
		out_of_memory();
	return d;
}

/* appends a copy of s to the list of *n strings */
void
append_line(char ***list, size_t *n, const char *s)
{
	*list = realloc(*list, (*n + 1) * sizeof(char *));
	if (*list == NULL)
		out_of_memory();
	(*list)[(*n)++] = xstrdup(s);
}

/* copy a value as it is kept in the files: printable, no blanks, capped */
void
copy_value(char *dst, const char *src)
{
	size_t		i;

	for (i = 0; src[i] != '\0' && i < VALUE_MAX - 1; i++)
	{
		unsigned char c = (unsigned char) src[i];

		dst[i] = (c <= ' ' || c >= 0x7f) ? '?' : (char) c;
	}
	dst[i] = '\0';
}

/* the same for a text column of a result row; a NULL is "<NULL>" */
void
copy_result_value(char *dst, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		strcpy(dst, "<NULL>");
	else
		copy_value(dst, PQgetvalue(res, row, col));
}

/* ---------------------------------------------------------------------
 * libpq: errors, connecting (the local socket or loopback only), statements
 * ---------------------------------------------------------------------
 */

/*
 * A libpq error message on one line, without its trailing newline (and
 * without tabs, if tidy_libpq_errors).
 */
const char *
one_line(const char *msg)
{
	static char buf[1024];
	size_t		i;

	snprintf(buf, sizeof(buf), "%s", msg ? msg : "");
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || (buf[i] == '\t' && tidy_libpq_errors))
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
	return buf;
}

/* a failed statement's message on one line, with its SQLSTATE */
const char *
result_error(const PGresult *res)
{
	static char buf[1200];
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg;

	if (res == NULL && tidy_libpq_errors)
		msg = "out of memory";
	else
		msg = one_line(PQresultErrorMessage(res));
	snprintf(buf, sizeof(buf), "%s%s%s", msg,
			 state ? " SQLSTATE " : "", state ? state : "");
	return buf;
}

static bool
is_loopback_addr(const char *a)
{
	if (strcmp(a, "::1") == 0)
		return true;
	if (strncmp(a, "127.", 4) == 0 && strspn(a, "0123456789.") == strlen(a))
		return true;
	return false;
}

static bool
is_local_host(const char *h)
{
	if (h == NULL || h[0] == '\0')
		return true;			/* libpq's default: the Unix socket */
	if (h[0] == '/' || h[0] == '@')
		return true;			/* a socket directory or abstract socket */
	if (strcmp(h, "localhost") == 0)
		return true;
	return is_loopback_addr(h);
}

static bool
is_local_hostaddr(const char *a)
{
	return a[0] == '\0' || is_loopback_addr(a);
}

/* every comma-separated entry of an environment variable passes test */
static bool
env_list_ok(const char *var, bool (*test) (const char *), char *bad,
			size_t badlen)
{
	const char *v = getenv(var);
	char		item[1024];
	const char *p;

	if (v == NULL)
		return true;
	p = v;
	for (;;)
	{
		size_t		n = strcspn(p, ",");

		if (n >= sizeof(item))
			n = sizeof(item) - 1;
		memcpy(item, p, n);
		item[n] = '\0';
		if (!test(item))
		{
			snprintf(bad, badlen, "%s=%s", var, v);
			return false;
		}
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	return true;
}

/*
 * Connects from the environment, refusing anything but a local socket or a
 * loopback address (group_stress also compares the server's clock with the
 * clients'), and sets statement_timeout.  On failure returns NULL with the
 * reason in err.
 */
PGconn *
connect_local(const char *appname, char *err, size_t errlen)
{
	const char *keys[] = {"connect_timeout", "application_name", NULL};
	const char *vals[] = {CONNECT_TIMEOUT, appname, NULL};
	char		bad[1100];
	PGconn	   *conn;
	PGresult   *res;
	const char *host;
	const char *hostaddr;

	if (!env_list_ok("PGHOST", is_local_host, bad, sizeof(bad)) ||
		!env_list_ok("PGHOSTADDR", is_local_hostaddr, bad, sizeof(bad)))
	{
		snprintf(err, errlen,
				 "refusing %s: only a Unix socket or a loopback address is allowed",
				 bad);
		return NULL;
	}

	conn = PQconnectdbParams(keys, vals, 0);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		snprintf(err, errlen, "could not connect: %s",
				 conn ? one_line(PQerrorMessage(conn)) : "out of memory");
		PQfinish(conn);
		return NULL;
	}

	/* a service file may have named a host: check what was used */
	host = PQhost(conn);
	hostaddr = PQhostaddr(conn);
	if (!is_local_host(host) || (hostaddr && !is_local_hostaddr(hostaddr)))
	{
		snprintf(err, errlen,
				 "refusing the connection to host \"%s\" (address \"%s\"): only a Unix socket or a loopback address is allowed",
				 host ? host : "", hostaddr ? hostaddr : "");
		PQfinish(conn);
		return NULL;
	}

	res = PQexec(conn, "SET statement_timeout = '" STATEMENT_TIMEOUT "'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		snprintf(err, errlen, "SET statement_timeout failed: %s",
				 result_error(res));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

bool
prepare(PGconn *conn, const char *name, const char *sql, char *err,
		size_t errlen)
{
	PGresult   *res = PQprepare(conn, name, sql, 0, NULL);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		snprintf(err, errlen, "preparing %s failed: %s", sql,
				 result_error(res));
	PQclear(res);
	return ok;
}

/* prepares the two pgq_send statements of send_record */
bool
prepare_send(PGconn *conn, char *err, size_t errlen)
{
	return prepare(conn, "send_key",
				   "SELECT partition, msg_offset FROM pgq_send($1::text, $2::text, $3::text)",
				   err, errlen) &&
		prepare(conn, "send_partition",
				"SELECT partition, msg_offset FROM pgq_send($1::text, $2::text, NULL::text, $3::int)",
				err, errlen);
}

/*
 * Sends value to topic with one pgq_send: by the key "k<key>" if key >= 0,
 * else to to_partition, or round robin (no key, a NULL partition) if that
 * is -1.  Sets *partition and *offset to what pgq_send returned, unjudged;
 * false with err if the statement failed or returned no such row.
 */
bool
send_record(PGconn *conn, const char *topic, const char *value, int key,
			int to_partition, int *partition, long long *offset, char *err,
			size_t errlen)
{
	char		keytext[32];
	char		part[16];
	const char *params[3];
	PGresult   *res;

	params[0] = topic;
	params[1] = value;
	if (key >= 0)
	{
		snprintf(keytext, sizeof(keytext), "k%d", key);
		params[2] = keytext;
		res = PQexecPrepared(conn, "send_key", 3, params, NULL, NULL, 0);
	}
	else
	{
		if (to_partition >= 0)
		{
			snprintf(part, sizeof(part), "%d", to_partition);
			params[2] = part;
		}
		else
			params[2] = NULL;
		res = PQexecPrepared(conn, "send_partition", 3, params, NULL, NULL, 0);
	}

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "pgq_send of %s failed: %s", value,
				 result_error(res));
		PQclear(res);
		return false;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 2 ||
		PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1))
	{
		snprintf(err, errlen,
				 "pgq_send of %s returned %d rows of %d columns, not one (partition, msg_offset)",
				 value, PQntuples(res), PQnfields(res));
		PQclear(res);
		return false;
	}
	*partition = atoi(PQgetvalue(res, 0, 0));
	*offset = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return true;
}

/* ---------------------------------------------------------------------
 * The children's logs: one file per child in a temporary directory
 * ---------------------------------------------------------------------
 */

/* makes tmpdir, pgqueue_<progname>.XXXXXX under $TMPDIR or /tmp */
void
make_tmpdir(void)
{
	const char *tmpbase = getenv("TMPDIR");
	char		err[2048];

	snprintf(tmpdir, sizeof(tmpdir), "%s/pgqueue_%s.XXXXXX",
			 tmpbase && tmpbase[0] ? tmpbase : "/tmp", progname);
	if (mkdtemp(tmpdir) == NULL)
	{
		snprintf(err, sizeof(err), "mkdtemp %.1000s: %s", tmpdir, strerror(errno));
		setup_failed("set-up", err);
	}
}

/* the log of child id of a kind ("producer", "reader", "member") */
void
child_path(char *buf, size_t len, const char *kind, int id)
{
	snprintf(buf, len, "%s/%s-%d", tmpdir, kind, id);
}

/* removes the logs of the producers and of n children of kind, and tmpdir */
void
remove_tmpdir(int nproducers, const char *kind, int n)
{
	int			i;
	char		path[PATH_MAX + 32];

	for (i = 0; i < nproducers; i++)
	{
		child_path(path, sizeof(path), "producer", i);
		unlink(path);
	}
	for (i = 0; i < n; i++)
	{
		child_path(path, sizeof(path), kind, i);
		unlink(path);
	}
	rmdir(tmpdir);
}

/*
 * Opens a child's log for writing; on failure says so ("<progname>: <who><id>:
 * cannot write ...", who being e.g. "producer " or "member m") and returns
 * NULL.
 */
FILE *
open_child_log(const char *who, int id, const char *path)
{
	FILE	   *out = fopen(path, "w");

	if (out == NULL)
		fprintf(stderr, "%s: %s%d: cannot write %s: %s\n",
				progname, who, id, path, strerror(errno));
	return out;
}

/* ---------------------------------------------------------------------
 * The producers' logs
 * ---------------------------------------------------------------------
 */

SendRec    *sends;
size_t		nsends;
static size_t sends_cap;
long		txns_ended[3];

/* appends a producer's sends to sends[] with their fates */
void
load_producer(int id, ProducerLog *log)
{
	char		path[PATH_MAX + 32];
	char		line[512];
	FILE	   *in;
	size_t		txn_first = nsends;	/* first send of the current txn */
	long		cur_txn = -1;

	memset(log, 0, sizeof(*log));
	child_path(path, sizeof(path), "producer", id);
	in = fopen(path, "r");
	if (in == NULL)
		return;
	while (fgets(line, sizeof(line), in))
	{
		long		txn;
		int			idx,
					from,
					to,
					partition;
		long long	offset,
					at;
		char		value[VALUE_MAX];
		char		fate;
		size_t		i;

		if (sscanf(line, "S %ld %d %d %lld %63s", &txn, &idx, &partition,
				   &offset, value) == 5)
		{
			SendRec    *s;

			if (txn != cur_txn)
			{
				cur_txn = txn;
				txn_first = nsends;
			}
			sends = grow_array(sends, &sends_cap, nsends + 1, sizeof(SendRec));
			s = &sends[nsends++];
			snprintf(s->value, sizeof(s->value), "%s", value);
			s->producer = id;
			s->txn = txn;
			s->idx = idx;
			s->partition = partition;
			s->offset = offset;
			s->fate = 'U';		/* until its transaction is seen to end */
			s->end_us = -1;
		}
		else if (sscanf(line, "K %ld %d %d", &txn, &from, &to) == 3)
		{
			for (i = txn_first; i < nsends; i++)
				if (sends[i].txn == txn && sends[i].idx >= from &&
					sends[i].idx <= to)
					sends[i].fate = 'S';
		}
		else if (sscanf(line, "E %ld %c %lld", &txn, &fate, &at) == 3)
		{
			txns_ended[fate == 'C' ? 0 : fate == 'R' ? 1 : 2]++;
			for (i = txn_first; i < nsends; i++)
				if (sends[i].txn == txn)
				{
					if (sends[i].fate != 'S')
						sends[i].fate = fate;
					sends[i].end_us = at;
				}
		}
		else if (sscanf(line, "DONE %ld %ld", &txn, &log->errors) == 2)
			log->done = true;
	}
	fclose(in);
}

static int
cmp_send_by_value(const void *a, const void *b)
{
	return strcmp(((const SendRec *) a)->value, ((const SendRec *) b)->value);
}

/*
 * Sorts sends[] by value, for find_send, once every producer's log is
 * loaded; values are unique by construction, so a repeat is reported as an
 * internal error.
 */
void
sort_sends(void)
{
	size_t		k;

	qsort(sends, nsends, sizeof(SendRec), cmp_send_by_value);
	for (k = 1; k < nsends; k++)
		if (strcmp(sends[k].value, sends[k - 1].value) == 0)
			printf("%s: internal error: value %s sent twice\n", progname,
				   sends[k].value);
}

/* the send of this value (sends[] sorted by sort_sends), or NULL */
const SendRec *
find_send(const char *value)
{
	SendRec		key;

	snprintf(key.value, sizeof(key.value), "%s", value);
	return bsearch(&key, sends, nsends, sizeof(SendRec), cmp_send_by_value);
}

/* ---------------------------------------------------------------------
 * Records by position
 * ---------------------------------------------------------------------
 */

/* index of the first entry at (partition, offset) or after it */
size_t
position_lower_bound(void *const *by_pos, size_t n, size_t partition_field,
					 size_t offset_field, int partition, long long offset)
{
	size_t		lo = 0,
				hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		const char *r = by_pos[mid];
		int			p;
		long long	o;

		memcpy(&p, r + partition_field, sizeof(p));
		memcpy(&o, r + offset_field, sizeof(o));
		if (p < partition || (p == partition && o < offset))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------
 */

/* an integer option from lo to hi; anything else exits with status 2 */
int
parse_int(const char *arg, const char *what, int lo, int hi)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg || v < lo || v > hi)
	{
		fprintf(stderr, "%s: %s must be an integer from %d to %d, not \"%s\"\n",
				progname, what, lo, hi, arg);
		exit(2);
	}
	return (int) v;
}

/* --seed N; anything but an unsigned integer exits with status 2 */
static unsigned long long
parse_seed(const char *arg)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg)
	{
		fprintf(stderr, "%s: --seed must be an unsigned integer, not \"%s\"\n",
				progname, arg);
		exit(2);
	}
	return v;
}

/* the seed without --seed: from the time and the pid */
unsigned long long
default_seed(void)
{
	return ((unsigned long long) time(NULL) << 20) ^
		(unsigned long long) getpid();
}

/*
 * getopt_long over the program's own options (own, e.g. "P:m:s:") and
 * those both programs take: --seed N into *seed, -k into *keep, -h or
 * --help (usage to stdout, exit 0).  The program's integer options, those
 * of ints[], are parsed into their values here; returns the next of its
 * other options, or -1 at the end.  An unknown option, a bad --seed or
 * integer, or an argument left over exits with status 2.
 */
int
next_option(int argc, char **argv, const char *own, const IntOption *ints,
			int nints, unsigned long long *seed, bool *keep,
			void (*usage) (FILE *f))
{
	static const struct option longopts[] = {
		{"seed", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	char		optstring[64];
	int			c;
	int			i;

	snprintf(optstring, sizeof(optstring), "%skh", own);
	for (;;)
	{
		c = getopt_long(argc, argv, optstring, longopts, NULL);
		switch (c)
		{
			case -1:
				if (optind < argc)
				{
					fprintf(stderr, "%s: unexpected argument \"%s\"\n",
							progname, argv[optind]);
					usage(stderr);
					exit(2);
				}
				return -1;
			case 'S':
				*seed = parse_seed(optarg);
				break;
			case 'k':
				*keep = true;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			default:
				if (c == '?' || c == ':' || strchr(own, c) == NULL)
				{
					usage(stderr);
					exit(2);
				}
				for (i = 0; i < nints && ints[i].letter != c; i++)
					;
				if (i == nints)
					return c;
				*ints[i].value = parse_int(optarg, ints[i].what, ints[i].lo,
										   ints[i].hi);
				break;
		}
	}
}

/* ---------------------------------------------------------------------
 * The checks
 * ---------------------------------------------------------------------
 */

void
check_fail(Check *c, const char *fmt,...)
{
	va_list		ap;

	c->failures++;
	if (c->failures > MAX_MESSAGES)
		return;
	fputs("  ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

bool
check_verdict(Check *c, int number)
{
	if (c->failures > MAX_MESSAGES)
		printf("  ... and %ld more\n", c->failures - MAX_MESSAGES);
	if (c->failures == 0)
		printf("check %d ok: %s\n", number, c->title);
	else
		printf("check %d FAILED: %s (%ld problem%s)\n", number, c->title,
			   c->failures, c->failures == 1 ? "" : "s");
	fflush(stdout);
	return c->failures == 0;
}

/*
 * How a child ended, from its wait status, for "it ..." in a message;
 * failure_note follows a non-zero exit status.
 */
void
describe_exit(char *buf, size_t len, bool reaped, int status,
			  bool killed_by_parent, const char *failure_note)
{
	if (!reaped)
		snprintf(buf, len, "was never reaped");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d%s", WEXITSTATUS(status),
				 WEXITSTATUS(status) ? failure_note : "");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d%s", WTERMSIG(status),
				 killed_by_parent ? " (by the parent: over time)" :
				 WTERMSIG(status) == SIGALRM ? " (alarm: over time)" : "");
	else
		snprintf(buf, len, "ended with wait status %d", status);
}

/* ---------------------------------------------------------------------
 * Set-up failures and the parent's alarm
 * ---------------------------------------------------------------------
 */

/* the run could not be set up: says why, fails every check, exits 1 */
void
setup_failed(const char *what, const char *err)
{
	if (tmpdir[0] != '\0')
		rmdir(tmpdir);			/* nothing was written there yet */
	printf("%s: %s: %s\n", progname, what, err);
	printf("%s: 0 passed, %d failed\n", progname, nchecks);
	fflush(stdout);
	exit(1);
}

/*
 * Prepares what alarm_exit prints and its exit status, for the stage the
 * parent enters: when the alarm ends the run there, the message (ending
 * with the final line) says what did not finish.
 */
void
set_alarm_message(int exit_status, const char *fmt,...)
{
	va_list		ap;
	sigset_t	set,
				old;

	/* keep the handler from seeing a half-written message */
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, &old);
	va_start(ap, fmt);
	vsnprintf(alarm_message, sizeof(alarm_message), fmt, ap);
	va_end(ap);
	alarm_exit_status = exit_status;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* from the parent's SIGALRM handler: prints the message and exits */
void
alarm_exit(void)
{
	ssize_t		rc = write(STDOUT_FILENO, alarm_message,
						   strlen(alarm_message));

	(void) rc;
	_exit(alarm_exit_status);
}
