/*-------------------------------------------------------------------------
 *
 * stress.c
 *	  Concurrency stress test for pgqueue's produce and fetch path: the
 *	  transactional send and the ordering guarantee of SPEC §3 and §5.
 *
 * Several producer processes send records in transactions that commit or
 * roll back at random (some of them rolling back part of their work to a
 * savepoint, some pausing inside the open transaction so that transactions
 * overlap), while several reader processes tail every partition with
 * pgq_fetch from their last offset + 1.  When the time is up and every
 * producer has finished, each reader drains what is left; then the parent
 * process compares what was sent with what was served.  Four checks:
 *
 *	1. every committed record was served to every reader, at the partition
 *	   and offset its pgq_send returned;
 *	2. no rolled-back record (whole transaction or savepoint) was served;
 *	3. per reader and partition, served offsets strictly increase (never
 *	   backwards, nothing served twice) -- checked live and again at the end;
 *	4. no two committed records share a (partition, offset).
 *
 * A client that fails (a statement error, COMMIT failing so that a record's
 * fate is unknown, a process killed for running over time) fails check 1,
 * since then "every committed record was served" cannot be proven.  A
 * failed statement does not stop its client, though: it is reported, and
 * the client goes on (a producer with its next transaction, a reader with
 * its next fetch from the same offset), so that the other checks still
 * mean something; only a lost connection or 50 errors in a row stop it.
 *
 * Vocabulary: a producer is a child process that sends; a reader is a child
 * process that fetches; a record's fate is committed, rolled back (with its
 * transaction, or to a savepoint), or unknown.  Records are text values
 * "p<producer>-t<transaction>-<i>", unique and self-describing, so a served
 * value names the send it came from.
 *
 * Usage (the extension must be installed and created in the database):
 *
 *	make test/stress/stress
 *	PGHOST=/tmp/sock PGPORT=5432 PGDATABASE=postgres PGUSER=postgres \
 *		test/stress/stress [-p producers] [-r readers] [-P partitions]
 *		                   [-s seconds] [-t topic] [--seed N] [-k]
 *
 *	-p N		producer processes (default 4)
 *	-r N		reader processes (default 2)
 *	-P N		partitions of the topic (default 4)
 *	-s N		seconds of sending (default 10)
 *	-t NAME		topic to create and drop (default stress_<pid>); it must not
 *				exist yet
 *	--seed N	seed of the random choices (default: from time and pid); the
 *				seed is printed, but timing makes no two runs alike
 *	-k			keep the topic and the client logs afterwards, to look at
 *
 * The connection comes from the usual libpq environment (PGHOST, PGPORT,
 * PGDATABASE, PGUSER, ...).  Only a Unix socket or a loopback address is
 * accepted: anything else is refused before connecting, and checked again
 * after.  The role must be allowed to run pgq_create_topic (a superuser or
 * the extension owner).
 *
 * Each child writes its history to a file in a temporary directory
 * (mkdtemp under $TMPDIR or /tmp), removed after a passing run and kept
 * (its path printed) after a failing one:
 *
 *	producer-N:	S <txn> <i> <partition> <offset> <value>	a send returned
 *				K <txn> <from> <to>		sends from..to rolled back to a savepoint
 *				E <txn> C|R|U <us>		transaction committed, rolled back or
 *										ended in an unknown state, at <us>
 *				DONE <txns> <errors>
 *	reader-N:	F <us> <partition> <offset> <value>		a record was served
 *				X <message>				a violation seen live
 *				DONE <fetches> <errors>		written once the final drain is done
 *
 * (<us> is microseconds since the start of the run, on CLOCK_MONOTONIC,
 * which all processes share; it lets a missed record be explained, e.g. "a
 * higher offset was served before this record's transaction committed".)
 *
 * Bounded in time: every statement runs under statement_timeout, each child
 * is killed by alarm() at seconds+20 after the start, the parent kills any
 * child still there at seconds+23 and gives up dropping the topic at
 * seconds+29, so the run ends within seconds+30 even if the server hangs.
 *
 * Output: the failures found (at most 20 per check are spelled out), one
 * verdict line per check, a summary line, and last, alone on its line,
 * "stress: N passed, M failed" over the four checks.  Exit status 0 if all
 * four passed, 1 if any failed or the run could not be set up (then the
 * last line is "stress: 0 passed, 4 failed"), 2 for bad options.
 *
 * What this program shares with group_stress.c (connecting, the clock and
 * alarms, the client logs' directory, the checks' output, ...) is in
 * stress_common.c.
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "stress_common.h"

#define NCHECKS				4
#define TOPIC_MAX			249		/* Kafka's and pgqueue's limit */
#define FETCH_MAX			200		/* max_records of each pgq_fetch */
#define MAX_SENDS_PER_TXN	5
#define MAX_LIVE_STDERR		3		/* errors or violations a child also prints */

/* seconds after the start at which each stage of the time bound falls */
#define CHILD_KILL_AFTER	20
#define PARENT_KILL_AFTER	23
#define HARD_STOP_AFTER		29

typedef struct Options
{
	int			producers;
	int			readers;
	int			partitions;
	int			seconds;
	char		topic[TOPIC_MAX + 1];
	unsigned long long seed;
	bool		keep;
} Options;

/* one record served to a reader, in the order it was served */
typedef struct ServedRec
{
	char		value[VALUE_MAX];
	int			partition;
	long long	offset;
	long long	at_us;			/* when the fetch that served it started */
} ServedRec;

/* what the parent knows of one child process */
typedef struct Child
{
	pid_t		pid;
	bool		is_reader;
	int			id;
	bool		reaped;
	int			status;			/* from waitpid */
	bool		killed_by_parent;
} Child;

static Options opts;
static bool fork_failed = false;	/* some child could not be started */

/* parent's SIGALRM handling: see on_parent_alarm */
enum
{
	PHASE_SETUP, PHASE_WAIT, PHASE_TEARDOWN
};
static volatile sig_atomic_t parent_phase = PHASE_SETUP;
static volatile sig_atomic_t parent_timed_out = 0;

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */

/* runs a command that returns no rows and checks its tag; false on error */
static bool
exec_command(PGconn *conn, const char *sql, const char *expect_tag,
			 char *err, size_t errlen)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = true;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		snprintf(err, errlen, "%s failed: %s", sql, result_error(res));
		ok = false;
	}
	else if (expect_tag && strcmp(PQcmdStatus(res), expect_tag) != 0)
	{
		snprintf(err, errlen, "%s answered \"%s\" instead of \"%s\"",
				 sql, PQcmdStatus(res), expect_tag);
		ok = false;
	}
	PQclear(res);
	return ok;
}

/* ---------------------------------------------------------------------
 * Producer
 * ---------------------------------------------------------------------
 */

typedef struct TxnSend
{
	int			idx;
	char		value[VALUE_MAX];
} TxnSend;

/*
 * Sends one record; writes its S line.  explicit_partition < -1 means "by
 * key", -1 means an explicit NULL partition and no key (round robin).
 */
static bool
producer_send(PGconn *conn, FILE *out, int id, long txn, int idx,
			  int explicit_partition, uint64_t *rnd, char *err, size_t errlen)
{
	char		value[VALUE_MAX];
	int			partition;
	long long	offset;
	bool		by_key = explicit_partition < -1;

	snprintf(value, sizeof(value), "p%d-t%ld-%d", id, txn, idx);
	if (!send_record(conn, opts.topic, value,
					 by_key ? rnd_below(rnd, 1000000) : -1,
					 by_key ? -1 : explicit_partition, &partition, &offset,
					 err, errlen))
		return false;

	/* write it down before judging, so the parent sees it either way */
	fprintf(out, "S %ld %d %d %lld %s\n", txn, idx, partition, offset, value);

	if (partition < 0 || partition >= opts.partitions)
	{
		snprintf(err, errlen,
				 "pgq_send of %s returned partition %d, outside 0..%d",
				 value, partition, opts.partitions - 1);
		return false;
	}
	if (explicit_partition >= 0 && partition != explicit_partition)
	{
		snprintf(err, errlen,
				 "pgq_send of %s with partition => %d returned partition %d",
				 value, explicit_partition, partition);
		return false;
	}
	if (offset < 0)
	{
		snprintf(err, errlen, "pgq_send of %s returned offset %lld",
				 value, offset);
		return false;
	}
	return true;
}

/* a client gives up after this many failed statements in a row */
#define MAX_ERRORS_IN_A_ROW	50

/*
 * Notes a failed statement of a client; says whether to go on.  Errors do
 * not stop a client (the run fails all the same, through check 1), so that
 * one failed statement does not hide what the rest of the run would show;
 * a lost connection or a long streak of errors does.
 */
static bool
client_error(PGconn *conn, const char *who, int id, long *errors,
			 int *in_a_row, const char *err)
{
	(*errors)++;
	(*in_a_row)++;
	if (*errors <= MAX_LIVE_STDERR)
		fprintf(stderr, "stress: %s %d: %s\n", who, id, err);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "stress: %s %d: connection lost, giving up\n", who, id);
		return false;
	}
	if (*in_a_row >= MAX_ERRORS_IN_A_ROW)
	{
		fprintf(stderr, "stress: %s %d: %d errors in a row, giving up\n",
				who, id, *in_a_row);
		return false;
	}
	return true;
}

/*
 * One producer: transactions of 1..5 sends until run_end, each committing
 * or rolling back at random.  Returns the exit status (0 if no error).
 */
static int
run_producer(int id, const char *path, int64_t run_end)
{
	char		appname[64];
	char		err[2048];
	PGconn	   *conn;
	FILE	   *out;
	uint64_t	rnd = opts.seed ^ (UINT64_C(0x5EED000000000000) + (uint64_t) id);
	long		txn;
	long		errors = 0;
	int			in_a_row = 0;
	bool		go_on = true;

	out = open_child_log("producer ", id, path);
	if (out == NULL)
		return 1;
	snprintf(appname, sizeof(appname), "pgqueue stress producer %d", id);
	conn = connect_local(appname, err, sizeof(err));
	if (conn == NULL || !prepare_send(conn, err, sizeof(err)))
	{
		fprintf(stderr, "stress: producer %d: %s\n", id, err);
		fclose(out);
		PQfinish(conn);
		return 1;
	}

	for (txn = 0; go_on && mono_us() < run_end; txn++)
	{
		int			n = 1 + rnd_below(&rnd, MAX_SENDS_PER_TXN);
		bool		use_savepoint = rnd_percent(&rnd, 20);
		int			sp_from = 0;
		int			sp_to = -1;
		bool		sp_rollback = false;
		bool		ok;
		bool		rollback;
		const char *end_sql;
		int			i;
		char		fate;
		PGresult   *res;

		if (use_savepoint)
		{
			sp_from = rnd_below(&rnd, n);
			sp_to = sp_from + rnd_below(&rnd, n - sp_from);
			sp_rollback = rnd_percent(&rnd, 70);
		}

		ok = exec_command(conn, "BEGIN", "BEGIN", err, sizeof(err));
		for (i = 0; ok && i < n; i++)
		{
			int			how = rnd_below(&rnd, 100);
			int			explicit_partition;

			if (use_savepoint && i == sp_from)
				ok = exec_command(conn, "SAVEPOINT s", "SAVEPOINT",
								  err, sizeof(err));
			/* overlap with other transactions, holding back readers */
			if (ok && rnd_percent(&rnd, 20))
				sleep_ms(1 + rnd_below(&rnd, 5));

			if (how < 70)
				explicit_partition = -2;	/* random key */
			else if (how < 90)
				explicit_partition = rnd_below(&rnd, opts.partitions);
			else
				explicit_partition = -1;	/* no key: round robin */
			if (ok)
				ok = producer_send(conn, out, id, txn, i, explicit_partition,
								   &rnd, err, sizeof(err));

			if (ok && use_savepoint && i == sp_to)
			{
				if (sp_rollback)
				{
					ok = exec_command(conn, "ROLLBACK TO SAVEPOINT s",
									  "ROLLBACK", err, sizeof(err));
					if (ok)
						fprintf(out, "K %ld %d %d\n", txn, sp_from, sp_to);
				}
				else
					ok = exec_command(conn, "RELEASE SAVEPOINT s", "RELEASE",
									  err, sizeof(err));
			}
		}
		if (!ok)
		{
			char		msg[2200];

			snprintf(msg, sizeof(msg), "transaction %ld: %s", txn, err);
			go_on = client_error(conn, "producer", id, &errors, &in_a_row, msg);
		}
		else if (rnd_percent(&rnd, 20))
			sleep_ms(1 + rnd_below(&rnd, 5));

		/* the sends are on file before the transaction can end */
		fflush(out);

		rollback = !ok || rnd_percent(&rnd, 25);
		end_sql = rollback ? "ROLLBACK" : "COMMIT";
		res = PQexec(conn, end_sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			/* a failed ROLLBACK still ends the transaction, one way or another */
			fate = rollback ? 'R' : 'U';
			snprintf(err, sizeof(err), "transaction %ld: %s failed: %s%s",
					 txn, end_sql, result_error(res),
					 rollback ? "" : " (its records' fate is unknown)");
			ok = false;
		}
		else if (strcmp(PQcmdStatus(res), end_sql) != 0)
		{
			/* e.g. COMMIT of a transaction that failed answers ROLLBACK */
			fate = strcmp(PQcmdStatus(res), "ROLLBACK") == 0 ? 'R' : 'U';
			snprintf(err, sizeof(err), "transaction %ld: %s answered \"%s\"",
					 txn, end_sql, PQcmdStatus(res));
			ok = false;
		}
		else
		{
			fate = rollback ? 'R' : 'C';
			if (ok)
				in_a_row = 0;
			ok = true;
		}
		PQclear(res);
		fprintf(out, "E %ld %c %lld\n", txn, fate, run_us());
		fflush(out);
		if (!ok && go_on)
			go_on = client_error(conn, "producer", id, &errors, &in_a_row, err);
	}

	if (errors > MAX_LIVE_STDERR)
		fprintf(stderr, "stress: producer %d: %ld errors in all\n", id, errors);
	fprintf(out, "DONE %ld %ld\n", txn, errors);
	fclose(out);
	PQfinish(conn);
	return errors == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * Reader
 * ---------------------------------------------------------------------
 */

/* true once the parent has closed its end of the pipe: producers are done */
static bool
producers_finished(int fd)
{
	struct pollfd pfd;
	char		buf[16];

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	return read(fd, buf, sizeof(buf)) == 0;
}

/*
 * Fetches once from one partition at next[p], checking every offset against
 * next[p] (which is one past the last offset served) and writing F lines.
 * Returns the number of records served, or -1 on error.
 */
static int
reader_fetch(PGconn *conn, FILE *out, int id, int p, long long *next,
			 long *violations, char *err, size_t errlen)
{
	char		part[16];
	char		from[32];
	const char *params[3];
	PGresult   *res;
	long long	at = run_us();
	int			rows;
	int			i;

	snprintf(part, sizeof(part), "%d", p);
	snprintf(from, sizeof(from), "%lld", next[p]);
	params[0] = opts.topic;
	params[1] = part;
	params[2] = from;
	res = PQexecPrepared(conn, "fetch", 3, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "pgq_fetch of partition %d from offset %s failed: %s",
				 p, from, result_error(res));
		PQclear(res);
		return -1;
	}
	rows = PQntuples(res);
	if (rows > FETCH_MAX)
	{
		fprintf(out, "X fetch of partition %d from offset %s returned %d records, more than max_records %d\n",
				p, from, rows, FETCH_MAX);
		if (++(*violations) <= MAX_LIVE_STDERR)
			fprintf(stderr, "stress: reader %d: pgq_fetch of partition %d returned %d records, more than %d\n",
					id, p, rows, FETCH_MAX);
	}
	for (i = 0; i < rows; i++)
	{
		int			got_partition;
		long long	offset;
		char		value[VALUE_MAX];

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1))
		{
			fprintf(out, "X fetch of partition %d from offset %s returned a NULL partition or offset\n",
					p, from);
			(*violations)++;
			continue;
		}
		got_partition = atoi(PQgetvalue(res, i, 0));
		offset = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		copy_result_value(value, res, i, 2);

		fprintf(out, "F %lld %d %lld %s\n", at, p, offset, value);

		if (got_partition != p)
		{
			fprintf(out, "X fetch of partition %d returned a record of partition %d (offset %lld, value %s)\n",
					p, got_partition, offset, value);
			if (++(*violations) <= MAX_LIVE_STDERR)
				fprintf(stderr, "stress: reader %d: fetch of partition %d returned a record of partition %d\n",
						id, p, got_partition);
		}
		if (offset < next[p])
		{
			fprintf(out, "X partition %d: offset %lld (value %s) served after offset %lld\n",
					p, offset, value, next[p] - 1);
			if (++(*violations) <= MAX_LIVE_STDERR)
				fprintf(stderr, "stress: reader %d: partition %d: offset %lld (value %s) served after offset %lld\n",
						id, p, offset, value, next[p] - 1);
		}
		else
			next[p] = offset + 1;
	}
	PQclear(res);
	return rows;
}

/*
 * One reader: tails every partition until the producers are done and the
 * time is up, then drains until a round over all partitions serves nothing.
 */
static int
run_reader(int id, const char *path, int done_fd)
{
	char		appname[64];
	char		err[2048];
	PGconn	   *conn;
	FILE	   *out;
	long long  *next;
	long		fetches = 0;
	long		violations = 0;
	long		errors = 0;
	int			in_a_row = 0;
	bool		done = false;
	bool		gave_up = false;

	out = open_child_log("reader ", id, path);
	if (out == NULL)
		return 1;
	next = calloc((size_t) opts.partitions, sizeof(long long));
	if (next == NULL)
	{
		fprintf(stderr, "stress: reader %d: out of memory\n", id);
		return 1;
	}
	snprintf(appname, sizeof(appname), "pgqueue stress reader %d", id);
	conn = connect_local(appname, err, sizeof(err));
	if (conn == NULL ||
		!prepare(conn, "fetch",
				 "SELECT partition, msg_offset, convert_from(value, 'UTF8') "
				 "FROM pgq_fetch($1::text, $2::int, $3::bigint, " STR(FETCH_MAX) ")",
				 err, sizeof(err)))
	{
		fprintf(stderr, "stress: reader %d: %s\n", id, err);
		fclose(out);
		PQfinish(conn);
		return 1;
	}

	for (;;)
	{
		/* a round that starts after the producers ended may end the drain */
		bool		was_done = done;
		bool		round_failed = false;
		long		served = 0;
		int			p;

		for (p = 0; p < opts.partitions && !gave_up; p++)
		{
			int			n = reader_fetch(conn, out, id, p, next, &violations,
										 err, sizeof(err));

			fetches++;
			if (n < 0)
			{
				round_failed = true;
				gave_up = !client_error(conn, "reader", id, &errors, &in_a_row,
										err);
				continue;
			}
			in_a_row = 0;
			served += n;
		}
		fflush(out);
		if (gave_up)
			break;
		if (was_done && served == 0 && !round_failed)
			break;
		if (!done)
			done = producers_finished(done_fd);
		if (served == 0)
			sleep_ms(1);
	}

	if (!gave_up)
		fprintf(out, "DONE %ld %ld\n", fetches, errors);
	if (errors > MAX_LIVE_STDERR)
		fprintf(stderr, "stress: reader %d: %ld failed fetches in all\n",
				id, errors);
	if (violations > MAX_LIVE_STDERR)
		fprintf(stderr, "stress: reader %d: %ld violations seen live in all (see check 3)\n",
				id, violations);
	fclose(out);
	PQfinish(conn);
	free(next);
	/* violations are reported by check 3 from the log, not by the status */
	return errors == 0 && !gave_up ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * Parent: reading the children's files
 * ---------------------------------------------------------------------
 */

typedef struct ReaderLog
{
	ServedRec  *served;
	size_t		nserved;
	size_t		cap;
	char	  **live_violations;
	size_t		nlive;
	bool		done;			/* its DONE line was seen: it drained */
	long		errors;			/* failed fetches, from that line */
} ReaderLog;

static void
load_reader(int id, ReaderLog *log)
{
	char		path[PATH_MAX + 32];
	char		line[1024];
	FILE	   *in;

	memset(log, 0, sizeof(*log));
	child_path(path, sizeof(path), "reader", id);
	in = fopen(path, "r");
	if (in == NULL)
		return;
	while (fgets(line, sizeof(line), in))
	{
		long long	at,
					offset;
		int			partition;
		char		value[VALUE_MAX];

		if (sscanf(line, "F %lld %d %lld %63s", &at, &partition, &offset,
				   value) == 4)
		{
			ServedRec  *r;

			log->served = grow_array(log->served, &log->cap, log->nserved + 1,
									 sizeof(ServedRec));
			r = &log->served[log->nserved++];
			snprintf(r->value, sizeof(r->value), "%s", value);
			r->partition = partition;
			r->offset = offset;
			r->at_us = at;
		}
		else if (line[0] == 'X' && line[1] == ' ')
		{
			line[strcspn(line, "\n")] = '\0';
			append_line(&log->live_violations, &log->nlive, line + 2);
		}
		else if (sscanf(line, "DONE %lld %ld", &at, &log->errors) == 2)
			log->done = true;
	}
	fclose(in);
}

/* ---------------------------------------------------------------------
 * Parent: the checks
 * ---------------------------------------------------------------------
 */

static int
cmp_send_ptr_by_position(const void *a, const void *b)
{
	const SendRec *x = *(const SendRec *const *) a;
	const SendRec *y = *(const SendRec *const *) b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return strcmp(x->value, y->value);
}

static int
cmp_served_ptr_by_position(const void *a, const void *b)
{
	const ServedRec *x = *(const ServedRec *const *) a;
	const ServedRec *y = *(const ServedRec *const *) b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x < y ? -1 : (x > y ? 1 : 0);	/* served order */
}

static int
cmp_served_ptr_by_value(const void *a, const void *b)
{
	const ServedRec *x = *(const ServedRec *const *) a;
	const ServedRec *y = *(const ServedRec *const *) b;
	int			c = strcmp(x->value, y->value);

	if (c != 0)
		return c;
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* first entry with this value, or n */
static size_t
served_find_value(ServedRec **by_value, size_t n, const char *value)
{
	size_t		lo = 0,
				hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (strcmp(by_value[mid]->value, value) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(by_value[lo]->value, value) == 0 ? lo : n;
}

static double
secs(long long us)
{
	return (double) us / 1e6;
}

static const char *
fate_words(char fate)
{
	switch (fate)
	{
		case 'C':
			return "committed";
		case 'R':
			return "its transaction rolled back";
		case 'S':
			return "rolled back to a savepoint";
		default:
			return "fate unknown";
	}
}

/*
 * Check 1: every committed record was served to every reader at its
 * (partition, offset); plus every client ran cleanly and no fate is unknown.
 */
static void
check_all_committed_served(Check *c, ReaderLog *readers, Child *children,
						   int nchildren, ProducerLog *plogs)
{
	int			r;
	size_t		i;

	for (i = 0; i < (size_t) nchildren; i++)
	{
		Child	   *ch = &children[i];
		const char *who = ch->is_reader ? "reader" : "producer";
		bool		done = ch->is_reader ? readers[ch->id].done :
			plogs[ch->id].done;
		long		errors = ch->is_reader ? readers[ch->id].errors :
			plogs[ch->id].errors;
		bool		exited = ch->reaped && WIFEXITED(ch->status);
		char		how[128];

		if (done && exited && errors > 0)
			check_fail(c, "%s %d reported %ld failed statement%s (the first are printed above)",
					   who, ch->id, errors, errors == 1 ? "" : "s");
		else if (done && exited && WEXITSTATUS(ch->status) == 0)
			continue;
		else
		{
			describe_exit(how, sizeof(how), ch->reaped, ch->status,
						  ch->killed_by_parent, " (errors above)");
			check_fail(c, "%s %d did not finish: it %s%s", who, ch->id, how,
					   ch->is_reader ? "; its final drain did not complete" : "");
		}
	}

	if (fork_failed)
		check_fail(c, "not every producer and reader could be started (fork failed)");

	for (i = 0; i < nsends; i++)
		if (sends[i].fate == 'U')
			check_fail(c, "record %s (partition %d, offset %lld): its transaction's end is unknown (COMMIT failed or the producer died)",
					   sends[i].value, sends[i].partition, sends[i].offset);

	for (r = 0; r < opts.readers; r++)
	{
		ReaderLog  *log = &readers[r];
		ServedRec **by_pos = xmalloc((log->nserved + 1) * sizeof(ServedRec *));
		ServedRec **by_value = xmalloc((log->nserved + 1) * sizeof(ServedRec *));

		for (i = 0; i < log->nserved; i++)
			by_pos[i] = by_value[i] = &log->served[i];
		qsort(by_pos, log->nserved, sizeof(ServedRec *),
			  cmp_served_ptr_by_position);
		qsort(by_value, log->nserved, sizeof(ServedRec *),
			  cmp_served_ptr_by_value);

		for (i = 0; i < nsends; i++)
		{
			const SendRec *s = &sends[i];
			size_t		at,
						v;
			const ServedRec *hit;

			if (s->fate != 'C')
				continue;
			at = position_lower_bound((void *const *) by_pos, log->nserved,
									  offsetof(ServedRec, partition),
									  offsetof(ServedRec, offset),
									  s->partition, s->offset);
			hit = at < log->nserved ? by_pos[at] : NULL;
			if (hit && hit->partition == s->partition &&
				hit->offset == s->offset)
			{
				/* more than one entry here is check 3's (and 4's) business */
				const ServedRec *other = NULL;
				int			matches = 0;
				size_t		j;

				for (j = at; j < log->nserved &&
					 by_pos[j]->partition == s->partition &&
					 by_pos[j]->offset == s->offset; j++)
				{
					if (strcmp(by_pos[j]->value, s->value) == 0)
						matches++;
					else if (other == NULL)
						other = by_pos[j];
				}
				if (matches > 1)
					check_fail(c, "reader %d: committed record %s (partition %d, offset %lld) was served %d times",
							   r, s->value, s->partition, s->offset, matches);
				if (matches > 0)
					continue;
				if (served_find_value(by_value, log->nserved, s->value) ==
					log->nserved)
				{
					check_fail(c, "reader %d: partition %d offset %lld served \"%s\", but committed record %s was sent there and never served",
							   r, s->partition, s->offset, other->value,
							   s->value);
					continue;
				}
			}

			v = served_find_value(by_value, log->nserved, s->value);
			if (v < log->nserved)
			{
				check_fail(c, "reader %d: committed record %s was sent to partition %d offset %lld but served at partition %d offset %lld",
						   r, s->value, s->partition, s->offset,
						   by_value[v]->partition, by_value[v]->offset);
				continue;
			}

			/* never served: say what the reader saw above it */
			if (hit && hit->partition == s->partition)
			{
				if (hit->at_us < s->end_us)
					check_fail(c, "reader %d: committed record %s (partition %d, offset %lld, committed at %.3fs) was never served; offset %lld of that partition was served at %.3fs, before the commit: a lower offset became visible after a higher one was served (ordering guarantee broken)",
							   r, s->value, s->partition, s->offset,
							   secs(s->end_us), hit->offset, secs(hit->at_us));
				else
					check_fail(c, "reader %d: committed record %s (partition %d, offset %lld, committed at %.3fs) was never served; the reader skipped it and was served offset %lld at %.3fs",
							   r, s->value, s->partition, s->offset,
							   secs(s->end_us), hit->offset, secs(hit->at_us));
			}
			else
				check_fail(c, "reader %d: committed record %s (partition %d, offset %lld, committed at %.3fs) was never served, nor any higher offset of that partition (the final drain did not see it)",
						   r, s->value, s->partition, s->offset,
						   secs(s->end_us));
		}
		free(by_pos);
		free(by_value);
	}
}

/* Check 2: nothing that was rolled back, or never sent, was served */
static void
check_no_rolled_back_served(Check *c, ReaderLog *readers)
{
	int			r;
	size_t		i;

	for (r = 0; r < opts.readers; r++)
		for (i = 0; i < readers[r].nserved; i++)
		{
			const ServedRec *sv = &readers[r].served[i];
			const SendRec *s = find_send(sv->value);

			if (s == NULL)
				check_fail(c, "reader %d was served \"%s\" at partition %d offset %lld (at %.3fs), which no producer reported sending",
						   r, sv->value, sv->partition, sv->offset,
						   secs(sv->at_us));
			else if (s->fate == 'R' || s->fate == 'S')
				check_fail(c, "reader %d was served record %s at partition %d offset %lld (at %.3fs), but %s (at %.3fs)",
						   r, s->value, sv->partition, sv->offset,
						   secs(sv->at_us), fate_words(s->fate),
						   secs(s->end_us));
		}
}

/* Check 3: per reader and partition, offsets served strictly increase */
static void
check_offsets_increase(Check *c, ReaderLog *readers)
{
	long long  *last = xmalloc((size_t) opts.partitions * sizeof(long long));
	int			r;
	size_t		i;

	for (r = 0; r < opts.readers; r++)
	{
		int			p;

		for (i = 0; i < readers[r].nlive; i++)
			check_fail(c, "reader %d (seen live): %s", r,
					   readers[r].live_violations[i]);
		for (p = 0; p < opts.partitions; p++)
			last[p] = -1;
		for (i = 0; i < readers[r].nserved; i++)
		{
			const ServedRec *sv = &readers[r].served[i];

			if (sv->partition < 0 || sv->partition >= opts.partitions)
				continue;		/* cannot happen: it is the partition asked */
			if (sv->offset <= last[sv->partition])
				check_fail(c, "reader %d: partition %d offset %lld (%s) was served at %.3fs after offset %lld: offsets went %s",
						   r, sv->partition, sv->offset, sv->value,
						   secs(sv->at_us), last[sv->partition],
						   sv->offset == last[sv->partition] ?
						   "nowhere (served twice)" : "backwards");
			else
				last[sv->partition] = sv->offset;
		}
	}
	free(last);
}

/* Check 4: no two committed records share a (partition, offset) */
static void
check_unique_positions(Check *c)
{
	SendRec   **committed = xmalloc((nsends + 1) * sizeof(SendRec *));
	size_t		n = 0,
				i;

	for (i = 0; i < nsends; i++)
		if (sends[i].fate == 'C')
			committed[n++] = &sends[i];
	qsort(committed, n, sizeof(SendRec *), cmp_send_ptr_by_position);
	for (i = 1; i < n; i++)
		if (committed[i]->partition == committed[i - 1]->partition &&
			committed[i]->offset == committed[i - 1]->offset)
			check_fail(c, "committed records %s and %s were both given partition %d offset %lld",
					   committed[i - 1]->value, committed[i]->value,
					   committed[i]->partition, committed[i]->offset);
	free(committed);
}

/* ---------------------------------------------------------------------
 * Parent: set-up, running the children, tear-down
 * ---------------------------------------------------------------------
 */

/*
 * SIGALRM in the parent.  While waiting for the children it only notes the
 * time is up (waitpid returns EINTR, and the parent kills what is left);
 * in any other phase the server is not answering, so it prints the message
 * prepared for that phase -- ending with the final line -- and exits.
 */
static void
on_parent_alarm(int signo)
{
	(void) signo;
	parent_timed_out = 1;
	if (parent_phase != PHASE_WAIT)
		alarm_exit();
}

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: stress [-p producers] [-r readers] [-P partitions] [-s seconds]\n"
			"              [-t topic] [--seed N] [-k]\n"
			"Connects with the libpq environment (local socket or loopback only).\n"
			"  -p N       producer processes (default 4)\n"
			"  -r N       reader processes (default 2)\n"
			"  -P N       partitions (default 4)\n"
			"  -s N       seconds of sending (default 10)\n"
			"  -t NAME    topic to create and drop (default stress_<pid>)\n"
			"  --seed N   seed of the random choices\n"
			"  -k         keep the topic and the client logs\n");
}

static void
parse_options(int argc, char **argv)
{
	const IntOption ints[] = {
		{'p', "-p (producers)", 1, 256, &opts.producers},
		{'r', "-r (readers)", 1, 256, &opts.readers},
		{'P', "-P (partitions)", 1, 10000, &opts.partitions},
		{'s', "-s (seconds)", 1, 86400, &opts.seconds},
	};
	opts.producers = 4;
	opts.readers = 2;
	opts.partitions = 4;
	opts.seconds = 10;
	snprintf(opts.topic, sizeof(opts.topic), "stress_%ld", (long) getpid());
	opts.seed = default_seed();
	opts.keep = false;

	while (next_option(argc, argv, "p:r:P:s:t:", ints, lengthof(ints),
					   &opts.seed, &opts.keep, usage) != -1)
	{
		/* -t, the only option that is not an integer */
		if (optarg[0] == '\0' || strlen(optarg) > TOPIC_MAX)
		{
			fprintf(stderr, "stress: -t (topic) must be 1 to %d characters\n",
					TOPIC_MAX);
			exit(2);
		}
		snprintf(opts.topic, sizeof(opts.topic), "%s", optarg);
	}
}

/* runs one topic-admin function; false (with err) on error */
static bool
topic_call(PGconn *conn, const char *sql, bool with_partitions, char *err,
		   size_t errlen)
{
	char		parts[16];
	const char *params[2];
	PGresult   *res;
	bool		ok;

	snprintf(parts, sizeof(parts), "%d", opts.partitions);
	params[0] = opts.topic;
	params[1] = parts;
	res = PQexecParams(conn, sql, with_partitions ? 2 : 1, NULL, params,
					   NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(err, errlen, "%s failed: %s", sql, result_error(res));
	PQclear(res);
	return ok;
}

/* marks the child with this pid as reaped; false if it is none of ours */
static bool
note_reaped(Child *children, int n, pid_t pid, int status)
{
	int			i;

	for (i = 0; i < n; i++)
		if (children[i].pid == pid)
		{
			children[i].reaped = true;
			children[i].status = status;
			return true;
		}
	return false;
}

/* waits until every child matching "readers" is reaped, or the alarm */
static void
wait_for(Child *children, int n, bool readers)
{
	for (;;)
	{
		int			i,
					status;
		bool		left = false;
		pid_t		pid;

		for (i = 0; i < n; i++)
			if (children[i].is_reader == readers && !children[i].reaped)
				left = true;
		if (!left || parent_timed_out)
			return;
		pid = waitpid(-1, &status, 0);
		if (pid > 0)
			note_reaped(children, n, pid, status);
		else if (errno != EINTR)
			return;				/* ECHILD: nothing left to wait for */
	}
}

int
main(int argc, char **argv)
{
	char		err[2048];
	PGconn	   *conn;
	int			done_pipe[2];
	Child	   *children;
	int			nchildren = 0;
	int			i;
	int64_t		run_end;
	struct sigaction sa;
	ProducerLog *plogs;
	ReaderLog  *rlogs;
	Check		checks[NCHECKS] = {
		{"every committed record was served to every reader at its partition and offset", 0},
		{"no rolled-back record (transaction or savepoint) was served", 0},
		{"offsets served per partition strictly increased for every reader", 0},
		{"no two committed records share a partition and offset", 0},
	};
	int			passed = 0;
	long		rec_c = 0,
				rec_r = 0,
				rec_s = 0,
				rec_u = 0;
	size_t		served_min = (size_t) -1,
				served_max = 0;
	bool		topic_created = false;
	int			status;
	size_t		k;

	stress_common_init("stress", NCHECKS);
	parse_options(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_parent_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: waitpid must see EINTR */
	sigaction(SIGALRM, &sa, NULL);

	printf("stress: topic %s, %d partitions, %d producers, %d readers, %d s, seed %llu\n",
		   opts.topic, opts.partitions, opts.producers, opts.readers,
		   opts.seconds, opts.seed);

	/* set-up: a server that does not answer ends the run here */
	parent_phase = PHASE_SETUP;
	set_alarm_message(1, "stress: set-up did not finish in time (server not answering?)\n"
					  "stress: 0 passed, %d failed\n", NCHECKS);
	alarm(alarm_secs_until(opts.seconds + HARD_STOP_AFTER));

	/* local resources first: a failure then leaves no topic behind */
	make_tmpdir();
	if (pipe(done_pipe) != 0)
	{
		snprintf(err, sizeof(err), "pipe: %s", strerror(errno));
		setup_failed("set-up", err);
	}
	children = calloc((size_t) (opts.producers + opts.readers), sizeof(Child));
	plogs = calloc((size_t) opts.producers, sizeof(ProducerLog));
	rlogs = calloc((size_t) opts.readers, sizeof(ReaderLog));
	if (children == NULL || plogs == NULL || rlogs == NULL)
		setup_failed("set-up", "out of memory");

	conn = connect_local("pgqueue stress", err, sizeof(err));
	if (conn == NULL)
		setup_failed("set-up", err);
	if (!topic_call(conn, "SELECT pgq_create_topic($1::text, $2::int)", true,
					err, sizeof(err)))
	{
		PQfinish(conn);
		setup_failed("creating the topic", err);
	}
	topic_created = true;
	PQfinish(conn);				/* children must not share a connection */

	/* the run: readers first, so that they tail from the very start */
	run_end = mono_us() + (int64_t) opts.seconds * 1000000;
	parent_phase = PHASE_WAIT;
	for (i = 0; i < opts.readers + opts.producers; i++)
	{
		bool		is_reader = i < opts.readers;
		int			id = is_reader ? i : i - opts.readers;
		char		path[PATH_MAX + 32];
		pid_t		pid;

		child_path(path, sizeof(path), is_reader ? "reader" : "producer", id);
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0)
		{
			int			j;

			printf("stress: fork: %s\n", strerror(errno));
			fork_failed = true;
			for (j = 0; j < nchildren; j++)
			{
				kill(children[j].pid, SIGKILL);
				children[j].killed_by_parent = true;
			}
			break;
		}
		if (pid == 0)
		{
			int			rc;

			signal(SIGALRM, SIG_DFL);
			alarm(alarm_secs_until(opts.seconds + CHILD_KILL_AFTER));
			close(done_pipe[1]);
			if (is_reader)
				rc = run_reader(id, path, done_pipe[0]);
			else
			{
				close(done_pipe[0]);
				rc = run_producer(id, path, run_end);
			}
			_exit(rc);
		}
		children[nchildren].pid = pid;
		children[nchildren].is_reader = is_reader;
		children[nchildren].id = id;
		nchildren++;
	}
	close(done_pipe[0]);

	alarm(alarm_secs_until(opts.seconds + PARENT_KILL_AFTER));
	wait_for(children, nchildren, false);
	close(done_pipe[1]);		/* tells the readers to drain */
	wait_for(children, nchildren, true);
	alarm(0);
	if (parent_timed_out)
	{
		for (i = 0; i < nchildren; i++)
			if (!children[i].reaped)
			{
				kill(children[i].pid, SIGKILL);
				children[i].killed_by_parent = true;
			}
		for (i = 0; i < nchildren; i++)
			if (!children[i].reaped &&
				waitpid(children[i].pid, &status, 0) == children[i].pid)
			{
				children[i].reaped = true;
				children[i].status = status;
			}
	}

	/* analysis */
	for (i = 0; i < opts.producers; i++)
		load_producer(i, &plogs[i]);
	for (i = 0; i < opts.readers; i++)
		load_reader(i, &rlogs[i]);
	sort_sends();

	check_all_committed_served(&checks[0], rlogs, children, nchildren, plogs);
	passed += check_verdict(&checks[0], 1);
	check_no_rolled_back_served(&checks[1], rlogs);
	passed += check_verdict(&checks[1], 2);
	check_offsets_increase(&checks[2], rlogs);
	passed += check_verdict(&checks[2], 3);
	check_unique_positions(&checks[3]);
	passed += check_verdict(&checks[3], 4);

	/* summary */
	for (k = 0; k < nsends; k++)
	{
		switch (sends[k].fate)
		{
			case 'C':
				rec_c++;
				break;
			case 'R':
				rec_r++;
				break;
			case 'S':
				rec_s++;
				break;
			default:
				rec_u++;
				break;
		}
	}
	for (i = 0; i < opts.readers; i++)
	{
		if (rlogs[i].nserved < served_min)
			served_min = rlogs[i].nserved;
		if (rlogs[i].nserved > served_max)
			served_max = rlogs[i].nserved;
	}
	printf("stress: %.1f s, %ld transactions (%ld committed, %ld rolled back, %ld unknown); %zu records sent: %ld committed, %ld rolled back with their transaction, %ld to a savepoint, %ld of unknown fate; each reader was served %zu..%zu\n",
		   secs(run_us()), txns_ended[0] + txns_ended[1] + txns_ended[2],
		   txns_ended[0], txns_ended[1], txns_ended[2], nsends, rec_c, rec_r,
		   rec_s, rec_u, served_min, served_max);

	/* tear-down */
	parent_phase = PHASE_TEARDOWN;
	status = passed == NCHECKS ? 0 : 1;
	set_alarm_message(status, "stress: warning: dropping topic %s did not finish in time\n"
					  "stress: %d passed, %d failed\n",
					  opts.topic, passed, NCHECKS - passed);
	alarm(alarm_secs_until(opts.seconds + HARD_STOP_AFTER));
	if (topic_created && !opts.keep)
	{
		conn = connect_local("pgqueue stress", err, sizeof(err));
		if (conn == NULL ||
			!topic_call(conn, "SELECT pgq_drop_topic($1::text)", false,
						err, sizeof(err)))
			printf("stress: warning: could not drop topic %s: %s\n",
				   opts.topic, err);
		PQfinish(conn);
	}
	else if (opts.keep)
		printf("stress: kept topic %s\n", opts.topic);
	if (status == 0 && !opts.keep)
		remove_tmpdir(opts.producers, "reader", opts.readers);
	else
		printf("stress: client logs kept in %s\n", tmpdir);
	alarm(0);

	printf("stress: %d passed, %d failed\n", passed, NCHECKS - passed);
	return status;
}
