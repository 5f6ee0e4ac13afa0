/*-------------------------------------------------------------------------
 *
 * group_stress.c
 *	  Concurrency stress test for pgqueue's consumer groups (SPEC §4):
 *	  members polling and committing while producers send, members leaving,
 *	  joining and being killed.
 *
 * Two producer processes send records in transactions that commit or roll
 * back at random.  Several member processes, joining one by one over the
 * first 12% of the sending time, consume the topic as one group
 * with pgq_poll(group, topic, 50, 0, member_id), each "processing" what it
 * gets by writing it to its log before the offsets can be committed: half of
 * the members rely on auto-commit (the next poll commits what the previous
 * one returned), the other half also call pgq_commit after every poll that
 * returned records.  The group's session.timeout.ms is set to 1500.
 *
 * The run has two phases, cut at the first kill:
 *
 *	phase 1, "no failures":  member m0 leaves gracefully (pgq_commit, then
 *		pgq_leave) and exits; later a new member (m<members>) joins;
 *	phase 2, "failures":  the backend of member m1 is killed with
 *		pg_terminate_backend() from the parent's own connection, and m1
 *		reconnects as the same member_id (a new session); later the backend
 *		of member m2 is killed and m2 does not come back, so its partitions
 *		move only when its lease expires.  Each of the two "dies while
 *		processing": told by the parent, it stops right after a poll that
 *		returned records, before anything commits them, and signals the
 *		parent (SIGUSR1), which then kills its backend; so the kills always
 *		leave uncommitted records to be delivered again.
 *
 * Then the producers stop, and the members still running drain until the
 * group's committed offset of every partition is past its last committed
 * record (pgq_consumer_lag) or DRAIN_MAX_S seconds pass; they then commit and
 * leave, the group is dropped, and the parent compares what was sent with
 * what was delivered.  Seven checks:
 *
 *	1. every committed record was delivered to some member at least once, at
 *	   its partition and offset, and the group's committed offset of its
 *	   partition ended past it;
 *	2. no partition was read by two members at once: per partition, the
 *	   server-side time intervals of polls by different members that returned
 *	   records of it never overlap;
 *	3. per member session and partition, delivered offsets strictly increase
 *	   (checked live and again at the end);
 *	4. in phase 1 (polls that ended before the first kill) no record was
 *	   delivered twice: graceful leaves and joins cause no duplicates;
 *	5. no rolled-back record (or anything no producer sent, or a record at
 *	   another partition or offset than its send returned) was delivered;
 *	6. the records each killed member held uncommitted were delivered again
 *	   (by its new session or the partition's next owner): a record counts
 *	   as processed only when its own consumer said so;
 *	7. the scenario ran as planned: no client had an unexpected error or
 *	   connection loss, the leave, the join, both kills (each holding
 *	   records) and the reconnect happened in their phases, the drain
 *	   finished and the group could be dropped.
 *
 * Vocabulary: a member is a member_id ("m0", "m1", ...) and the process
 * playing it; a session is one connection of a member (a member killed and
 * reconnected starts session 1, 2, ...); a poll is one pgq_poll call; a
 * delivery is one record returned by a poll.  Records are text values
 * "g<producer>-<transaction>-<i>", unique, so a delivered value names the
 * send it came from.
 *
 * Each poll runs as
 *
 *	BEGIN; SELECT clock_timestamp(); SELECT ... FROM pgq_poll(...);
 *	SELECT clock_timestamp(); COMMIT;
 *
 * so its server-side interval is known (check 2).  Times are microseconds
 * since the Unix epoch; the server is local (see below), so its
 * clock_timestamp() and the clients' CLOCK_REALTIME are the same clock.  If a
 * kill cuts a poll after its records arrived but before the second
 * clock_timestamp(), the member's own clock when the records arrived stands
 * in for the end of the interval (a later time, so the check stays strict).
 *
 * Usage (the extension must be installed, preloaded and created in the
 * database; the role must be a superuser, to create the topic, set the
 * group's config and terminate backends):
 *
 *	make test/stress/group_stress
 *	PGHOST=/tmp/sock PGPORT=5432 PGDATABASE=postgres PGUSER=postgres \
 *		test/stress/group_stress [-P partitions] [-m members] [-s seconds]
 *		                         [--seed N] [-k]
 *
 *	-P N		partitions of the topic (default 6, at least the members)
 *	-m N		members at the start (default 3, at least 3); one more joins
 *				after one has left, so there are never more than N at once
 *	-s N		seconds of sending (default 12, at least 5); the scenario's
 *				events fall at fixed fractions of it
 *	--seed N	seed of the random choices (default: from time and pid); the
 *				seed is printed, but timing makes no two runs alike
 *	-k			keep the topic, the group and the client logs afterwards
 *
 * The connection comes from the usual libpq environment (PGHOST, PGPORT,
 * PGDATABASE, PGUSER, ...).  Only a Unix socket or a loopback address is
 * accepted: anything else is refused before connecting, and checked again
 * after.  The topic and group get unique names (group_stress_<time>_<pid>).
 *
 * Each child writes its history to a file in a temporary directory (mkdtemp
 * under $TMPDIR or /tmp), removed after a passing run and kept (its path
 * printed) after a failing one:
 *
 *	producer-N:	S <txn> <i> <partition> <offset> <value>	a send returned
 *				E <txn> C|R|U <us>		transaction committed, rolled back or
 *										ended in an unknown state
 *				DONE <txns> <errors>
 *	member-N:	S <session> <backend pid> <us>	a session began
 *				P <session> <poll> <start us> <end us> s|c <n>	a poll returned
 *						n records (end from the server, or the client's clock)
 *				R <partition> <offset> <value>	one of them, in delivery order
 *				H <session> <poll> <us>	holds that poll's records, waiting
 *										to be killed
 *				L <session> <us>		left the group (pgq_commit, pgq_leave)
 *				Z <session> <us> <message>	the connection was lost
 *				E <session> <message>	a statement failed
 *				N <session> <message>	a notice (e.g. the FATAL of a kill)
 *				G <session> <ms> <us>	that long since the previous poll
 *										(over half the session timeout)
 *				X ORDER|LIMIT <message>	a violation seen live
 *				DONE <polls> <empty polls> <errors>
 *
 * Bounded in time: every statement runs under statement_timeout, each child
 * is killed by alarm() CHILD_KILL_AFTER seconds after the sending time, and
 * the parent gives up (killing what is left, printing the last line) at
 * HARD_STOP_AFTER, so the run ends within seconds + 60 even if the server
 * hangs; each stage before has its own, earlier deadline (producers end,
 * drain, members leaving).  A normal run takes the sending time plus a
 * fraction of a second.
 *
 * Output: the failures found (at most 20 per check are spelled out), one
 * verdict line per check, a summary line, and last, alone on its line,
 * "group_stress: N passed, M failed" over the seven checks.  Exit status 0
 * if all passed, 1 if any failed or the run could not be set up (then the
 * last line is "group_stress: 0 passed, 7 failed"), 2 for bad options.
 *
 * What this program shares with stress.c (connecting, the clock and alarms,
 * the client logs' directory, the checks' output, ...) is in
 * stress_common.c.
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "stress_common.h"

#define NCHECKS				7
#define NPRODUCERS			2
#define NAME_LEN			64		/* topic and group names */
#define POLL_MAX			50		/* max_records of each pgq_poll */
#define MAX_SENDS_PER_TXN	4
#define MAX_LIVE_STDERR		3		/* errors or violations a child also prints */
#define MAX_ERRORS_IN_A_ROW	50		/* a client gives up after this many */

#define SESSION_TIMEOUT_MS	1500

/* when the scenario's events fall, as fractions of the sending time */
#define STAGGER_SPAN		0.12	/* the first members join over this span */
#define LEAVE_AT			0.20
#define JOIN_AT				0.30
#define KILL_RESTART_AT		0.50
#define KILL_FINAL_AT		0.70

/* the members that play each role; the joiner is m<members> */
#define LEAVER				0
#define KILLED_RESTARTED	1
#define KILLED_FOR_GOOD		2

/* seconds after the sending time at which each stage falls */
#define PRODUCER_GRACE_S	10		/* producers must have ended by then */
#define DRAIN_MAX_S			20		/* the drain gives up (after producers) */
#define QUIT_WAIT_S			5		/* members must leave within this */
#define HANG_WAIT_S			3		/* a member must hold records by then */
#define CHILD_KILL_AFTER	45
#define HARD_STOP_AFTER		60

#define SERVER_NOW_SQL \
	"SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8"

typedef struct Options
{
	int			partitions;
	int			members;
	int			seconds;
	unsigned long long seed;
	bool		keep;
} Options;

static Options opts;
static char topic[NAME_LEN];
static char group_id[NAME_LEN];
static pid_t parent_pid;
static long long t0_wall_us;	/* the start of the run, CLOCK_REALTIME */

/* ---------------------------------------------------------------------
 * Small utilities
 * ---------------------------------------------------------------------
 */

/* the clock the local server's clock_timestamp() reads */
static long long
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* seconds since the start of the run of a wall-clock time, for messages */
static double
rel(long long us)
{
	return (double) (us - t0_wall_us) / 1e6;
}

/* seconds of the run elapsed */
static double
elapsed_s(void)
{
	return (double) run_us() / 1e6;
}

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */

/* runs a statement with text parameters that returns rows; false on error */
static bool
query_ok(PGconn *conn, const char *sql, int nparams, const char *const *params,
		 PGresult **out, char *err, size_t errlen)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL,
								   NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "%s failed: %s", sql, result_error(res));
		PQclear(res);
		if (out)
			*out = NULL;
		return false;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return true;
}

/* the server's clock_timestamp(), in microseconds since the epoch */
static bool
server_now(PGconn *conn, long long *us, char *err, size_t errlen)
{
	PGresult   *res;

	if (!query_ok(conn, SERVER_NOW_SQL, 0, NULL, &res, err, errlen))
		return false;
	*us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

static void
member_appname(char *buf, size_t len, int id)
{
	snprintf(buf, len, "group_stress %ld m%d", (long) parent_pid, id);
}

/* ---------------------------------------------------------------------
 * Producer
 * ---------------------------------------------------------------------
 */

/*
 * Sends one record and writes its S line.  how: 0 by a random key, 1 to a
 * random explicit partition, 2 round robin.
 */
static bool
producer_send(PGconn *conn, FILE *out, int id, long txn, int idx,
			  uint64_t *rnd, char *err, size_t errlen)
{
	char		value[VALUE_MAX];
	int			how = rnd_below(rnd, 10);
	int			key = -1;
	int			to_partition = -1;
	int			partition;
	long long	offset;

	snprintf(value, sizeof(value), "g%d-%ld-%d", id, txn, idx);
	if (how < 4)
		key = rnd_below(rnd, 1000000);
	else if (how < 8)
		to_partition = rnd_below(rnd, opts.partitions);
	if (!send_record(conn, topic, value, key, to_partition, &partition,
					 &offset, err, errlen))
		return false;
	fprintf(out, "S %ld %d %d %lld %s\n", txn, idx, partition, offset, value);
	if (partition < 0 || partition >= opts.partitions || offset < 0)
	{
		snprintf(err, errlen, "pgq_send of %s returned partition %d offset %lld",
				 value, partition, offset);
		return false;
	}
	return true;
}

/*
 * One producer: transactions of 1..4 sends until end_mono, a fifth of them
 * rolled back.  Returns the exit status (0 if no error).
 */
static int
run_producer(int id, const char *path, int64_t end_mono)
{
	char		appname[64];
	char		err[2048];
	PGconn	   *conn;
	FILE	   *out;
	uint64_t	rnd = opts.seed ^ (UINT64_C(0x9A0D000000000000) + (uint64_t) id);
	long		txn;
	long		errors = 0;
	int			in_a_row = 0;

	out = open_child_log("producer ", id, path);
	if (out == NULL)
		return 1;
	snprintf(appname, sizeof(appname), "group_stress %ld producer %d",
			 (long) parent_pid, id);
	conn = connect_local(appname, err, sizeof(err));
	if (conn == NULL || !prepare_send(conn, err, sizeof(err)))
	{
		fprintf(stderr, "group_stress: producer %d: %s\n", id, err);
		fprintf(out, "DONE 0 1\n");
		fclose(out);
		PQfinish(conn);
		return 1;
	}

	for (txn = 0; mono_us() < end_mono; txn++)
	{
		int			n = 1 + rnd_below(&rnd, MAX_SENDS_PER_TXN);
		bool		rollback = rnd_percent(&rnd, 20);
		bool		ok = true;
		const char *end_sql;
		char		fate;
		PGresult   *res;
		int			i;

		res = PQexec(conn, "BEGIN");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			snprintf(err, sizeof(err), "BEGIN failed: %s", result_error(res));
			ok = false;
		}
		PQclear(res);
		for (i = 0; ok && i < n; i++)
			ok = producer_send(conn, out, id, txn, i, &rnd, err, sizeof(err));
		/* the sends are on file before the transaction can end */
		fflush(out);

		if (!ok)
		{
			errors++;
			in_a_row++;
			if (errors <= MAX_LIVE_STDERR)
				fprintf(stderr, "group_stress: producer %d: transaction %ld: %s\n",
						id, txn, err);
			rollback = true;
		}
		end_sql = rollback ? "ROLLBACK" : "COMMIT";
		res = PQexec(conn, end_sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK &&
			strcmp(PQcmdStatus(res), end_sql) == 0)
		{
			fate = rollback ? 'R' : 'C';
			if (ok)
				in_a_row = 0;
		}
		else
		{
			/* a failed ROLLBACK still ends the transaction, one way or another */
			fate = rollback ? 'R' :
				(PQresultStatus(res) == PGRES_COMMAND_OK &&
				 strcmp(PQcmdStatus(res), "ROLLBACK") == 0) ? 'R' : 'U';
			errors++;
			in_a_row++;
			if (errors <= MAX_LIVE_STDERR)
				fprintf(stderr, "group_stress: producer %d: transaction %ld: %s answered %s%s\n",
						id, txn, end_sql,
						PQresultStatus(res) == PGRES_COMMAND_OK ?
						PQcmdStatus(res) : result_error(res),
						fate == 'U' ? " (its records' fate is unknown)" : "");
		}
		PQclear(res);
		fprintf(out, "E %ld %c %lld\n", txn, fate, wall_us());
		fflush(out);
		if (PQstatus(conn) != CONNECTION_OK || in_a_row >= MAX_ERRORS_IN_A_ROW)
		{
			fprintf(stderr, "group_stress: producer %d: %s, giving up\n", id,
					PQstatus(conn) != CONNECTION_OK ? "connection lost" :
					"too many errors in a row");
			txn++;
			break;
		}
		if (rnd_percent(&rnd, 50))
			sleep_ms(1 + rnd_below(&rnd, 3));
	}

	fprintf(out, "DONE %ld %ld\n", txn, errors);
	fclose(out);
	PQfinish(conn);
	return errors == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * Member
 * ---------------------------------------------------------------------
 */

typedef enum
{
	STEP_OK,
	STEP_ERROR,					/* the statement failed; the session goes on */
	STEP_LOST					/* the connection is gone: the session ended */
} StepResult;

typedef struct Member
{
	int			id;
	char		member_id[32];
	bool		explicit_commit;	/* pgq_commit after every poll with records */
	int			ctl_fd;			/* commands from the parent, non-blocking */
	FILE	   *out;
	PGconn	   *conn;
	int			session;		/* -1 before the first connection */
	long long  *last;			/* per partition, the last offset delivered
								 * in this session, or -1 */
	long		polls;
	long		empty_polls;
	long		errors;
	long		violations;
	int			in_a_row;
	bool		final_on_loss;	/* 'X': do not reconnect after a loss */
	bool		hang;			/* 'H': stop after the next poll with records */
	bool		leave;			/* 'L': leave now and exit */
	bool		quit;			/* 'Q' or the parent gone: leave and exit */
	int64_t		last_poll_mono;	/* start of the session's last poll, or 0 */
	uint64_t	rnd;
} Member;

/* reads whatever the parent sent: H, X (killed for good next), L, Q */
static void
member_read_commands(Member *m)
{
	char		buf[16];
	ssize_t		n;

	while ((n = read(m->ctl_fd, buf, sizeof(buf))) > 0)
	{
		ssize_t		i;

		for (i = 0; i < n; i++)
		{
			if (buf[i] == 'X')
				m->final_on_loss = true;
			else if (buf[i] == 'H')
				m->hang = true;
			else if (buf[i] == 'L')
				m->leave = true;
			else if (buf[i] == 'Q')
				m->quit = true;
		}
	}
	if (n == 0)
		m->quit = true;			/* the parent is gone */
}

/* how a failed statement leaves the session */
static StepResult
step_failed(Member *m, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* 57P01 admin_shutdown and friends: the backend is going away */
	if (PQstatus(m->conn) != CONNECTION_OK ||
		(state && strncmp(state, "57P", 3) == 0))
		return STEP_LOST;
	return STEP_ERROR;
}

/* runs a statement, expecting status want; err says what failed */
static StepResult
member_step(Member *m, PGresult *res, ExecStatusType want, const char *what,
			char *err, size_t errlen)
{
	if (PQresultStatus(res) == want)
		return STEP_OK;
	snprintf(err, errlen, "%s failed: %s", what, result_error(res));
	return step_failed(m, res);
}

static void
member_error(Member *m, const char *msg)
{
	m->errors++;
	m->in_a_row++;
	fprintf(m->out, "E %d %s\n", m->session, one_line(msg));
	fflush(m->out);
	if (m->errors <= MAX_LIVE_STDERR)
		fprintf(stderr, "group_stress: member m%d session %d: %s\n",
				m->id, m->session, msg);
}

static void
member_session_ended(Member *m, const char *msg)
{
	fprintf(m->out, "Z %d %lld %s\n", m->session, wall_us(), one_line(msg));
	fflush(m->out);
	PQfinish(m->conn);
	m->conn = NULL;
}

/* notices (such as the FATAL of a kill arriving while idle) go to the log */
static void
member_notice(void *arg, const char *message)
{
	Member	   *m = arg;

	fprintf(m->out, "N %d %s\n", m->session, one_line(message));
}

/*
 * The member "dies while processing": it holds the records of its last poll,
 * uncommitted, tells the parent (SIGUSR1) and waits, doing nothing, until
 * its backend is killed.  Those records must then be delivered again.
 */
static void
member_hang_until_killed(Member *m)
{
	int64_t		give_up = mono_us() + 10 * 1000000;

	m->hang = false;
	fprintf(m->out, "H %d %ld %lld\n", m->session, m->polls, wall_us());
	fflush(m->out);
	kill(getppid(), SIGUSR1);
	while (PQstatus(m->conn) == CONNECTION_OK && mono_us() < give_up)
	{
		struct pollfd pfd;

		pfd.fd = PQsocket(m->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 100) > 0 && !PQconsumeInput(m->conn))
			break;
	}
	if (PQstatus(m->conn) == CONNECTION_OK)
	{
		member_error(m, "waited 10 s for the parent to kill the backend");
		return;
	}
	member_session_ended(m, PQerrorMessage(m->conn));
}

/*
 * Opens a new session of the member (retrying for a few seconds: a kill may
 * leave the server briefly busy), prepares its statements and writes its S
 * line.  False if it could not.
 */
static bool
member_connect(Member *m)
{
	char		appname[64];
	char		err[2048];
	int64_t		give_up = mono_us() + 5 * 1000000;

	member_appname(appname, sizeof(appname), m->id);
	for (;;)
	{
		m->conn = connect_local(appname, err, sizeof(err));
		if (m->conn != NULL &&
			prepare(m->conn, "now", SERVER_NOW_SQL, err, sizeof(err)) &&
			prepare(m->conn, "poll",
					"SELECT partition, msg_offset, convert_from(value, 'UTF8') "
					"FROM pgq_poll($1::text, $2::text, " STR(POLL_MAX) ", 0, $3::text)",
					err, sizeof(err)) &&
			prepare(m->conn, "commit", "SELECT pgq_commit($1::text, $2::text)",
					err, sizeof(err)) &&
			prepare(m->conn, "leave", "SELECT pgq_leave($1::text, $2::text)",
					err, sizeof(err)))
			break;
		PQfinish(m->conn);
		m->conn = NULL;
		if (mono_us() >= give_up)
		{
			member_error(m, err);
			return false;
		}
		sleep_ms(100);
	}
	m->session++;
	m->last_poll_mono = 0;
	PQsetNoticeProcessor(m->conn, member_notice, m);
	for (int p = 0; p < opts.partitions; p++)
		m->last[p] = -1;
	fprintf(m->out, "S %d %d %lld\n", m->session, PQbackendPID(m->conn),
			wall_us());
	fflush(m->out);
	return true;
}

static StepResult
member_server_now(Member *m, long long *us, char *err, size_t errlen)
{
	PGresult   *res = PQexecPrepared(m->conn, "now", 0, NULL, NULL, NULL, 0);
	StepResult	r = member_step(m, res, PGRES_TUPLES_OK, "clock_timestamp()",
								err, errlen);

	if (r == STEP_OK)
		*us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return r;
}

/*
 * Writes a poll's records (the member's "processing") and checks live that
 * offsets increase per partition within the session.  The file is flushed
 * before anything can commit these offsets: the next poll (auto-commit) or
 * pgq_commit.
 */
static void
member_log_poll(Member *m, const PGresult *rows, long long start,
				long long end, char end_kind)
{
	int			n = PQntuples(rows);
	int			i;

	m->polls++;
	if (n == 0)
	{
		m->empty_polls++;
		return;
	}
	fprintf(m->out, "P %d %ld %lld %lld %c %d\n", m->session, m->polls, start,
			end, end_kind, n);
	if (n > POLL_MAX)
	{
		m->violations++;
		fprintf(m->out, "X LIMIT poll %ld of session %d returned %d records, more than max_records %d\n",
				m->polls, m->session, n, POLL_MAX);
	}
	for (i = 0; i < n; i++)
	{
		int			partition = PQgetisnull(rows, i, 0) ? -1 :
			atoi(PQgetvalue(rows, i, 0));
		long long	offset = PQgetisnull(rows, i, 1) ? -1 :
			strtoll(PQgetvalue(rows, i, 1), NULL, 10);
		char		value[VALUE_MAX];

		copy_result_value(value, rows, i, 2);
		fprintf(m->out, "R %d %lld %s\n", partition, offset, value);
		if (partition < 0 || partition >= opts.partitions)
		{
			m->violations++;
			fprintf(m->out, "X ORDER poll %ld of session %d returned partition %d (offset %lld, value %s), outside 0..%d\n",
					m->polls, m->session, partition, offset, value,
					opts.partitions - 1);
			continue;
		}
		if (offset <= m->last[partition])
		{
			m->violations++;
			fprintf(m->out, "X ORDER session %d, partition %d: offset %lld (value %s) delivered in poll %ld after offset %lld\n",
					m->session, partition, offset, value, m->polls,
					m->last[partition]);
			if (m->violations <= MAX_LIVE_STDERR)
				fprintf(stderr, "group_stress: member m%d session %d: partition %d: offset %lld delivered after offset %lld\n",
						m->id, m->session, partition, offset,
						m->last[partition]);
		}
		else
			m->last[partition] = offset;
	}
	fflush(m->out);
}

/*
 * One poll: BEGIN; clock; pgq_poll; clock; COMMIT.  Whatever records arrive
 * are logged, also when a later step fails (they were delivered).
 */
static StepResult
member_poll(Member *m, int *nrecords)
{
	char		err[2048];
	const char *params[3];
	PGresult   *res;
	PGresult   *rows = NULL;
	long long	start = -1,
				end = -1,
				received = -1;
	StepResult	r;

	*nrecords = 0;
	params[0] = group_id;
	params[1] = topic;
	params[2] = m->member_id;

	res = PQexec(m->conn, "BEGIN");
	r = member_step(m, res, PGRES_COMMAND_OK, "BEGIN", err, sizeof(err));
	PQclear(res);
	if (r == STEP_OK)
		r = member_server_now(m, &start, err, sizeof(err));
	if (r == STEP_OK)
	{
		rows = PQexecPrepared(m->conn, "poll", 3, params, NULL, NULL, 0);
		received = wall_us();
		r = member_step(m, rows, PGRES_TUPLES_OK, "pgq_poll", err, sizeof(err));
		if (r != STEP_OK)
		{
			PQclear(rows);
			rows = NULL;
		}
	}
	if (r == STEP_OK)
		r = member_server_now(m, &end, err, sizeof(err));
	if (r == STEP_OK)
	{
		res = PQexec(m->conn, "COMMIT");
		r = member_step(m, res, PGRES_COMMAND_OK, "COMMIT", err, sizeof(err));
		if (r == STEP_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0)
		{
			snprintf(err, sizeof(err), "COMMIT of a poll answered %s",
					 PQcmdStatus(res));
			r = STEP_ERROR;
		}
		PQclear(res);
	}

	if (rows != NULL)
	{
		*nrecords = PQntuples(rows);
		if (end >= 0)
			member_log_poll(m, rows, start, end, 's');
		else
			member_log_poll(m, rows, start, received, 'c');
		PQclear(rows);
	}
	if (r == STEP_ERROR)
	{
		member_error(m, err);
		res = PQexec(m->conn, "ROLLBACK");
		PQclear(res);
	}
	else if (r == STEP_LOST)
		member_session_ended(m, err);
	return r;
}

/* runs pgq_commit or pgq_leave for the member */
static StepResult
member_call(Member *m, const char *stmt)
{
	char		err[2048];
	const char *params[2];
	PGresult   *res;
	StepResult	r;

	params[0] = group_id;
	params[1] = m->member_id;
	res = PQexecPrepared(m->conn, stmt, 2, params, NULL, NULL, 0);
	r = member_step(m, res, PGRES_TUPLES_OK,
					strcmp(stmt, "leave") == 0 ? "pgq_leave" : "pgq_commit",
					err, sizeof(err));
	PQclear(res);
	if (r == STEP_ERROR)
		member_error(m, err);
	else if (r == STEP_LOST)
		member_session_ended(m, err);
	return r;
}

/*
 * One member: polls until told to leave or quit (then commits, leaves and
 * exits), reconnecting as the same member_id when its connection is lost,
 * unless the parent said this kill is for good.
 */
static int
run_member(int id, const char *path, int ctl_fd)
{
	Member		m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	snprintf(m.member_id, sizeof(m.member_id), "m%d", id);
	m.explicit_commit = id % 2 == 1;
	m.ctl_fd = ctl_fd;
	m.session = -1;
	m.rnd = opts.seed ^ (UINT64_C(0x3E3B000000000000) + (uint64_t) id);
	m.last = xmalloc((size_t) opts.partitions * sizeof(long long));
	m.out = open_child_log("member m", id, path);
	if (m.out == NULL)
		return 1;
	if (fcntl(ctl_fd, F_SETFL, O_NONBLOCK) != 0)
	{
		fprintf(stderr, "group_stress: member m%d: fcntl: %s\n", id,
				strerror(errno));
		return 1;
	}

	for (;;)
	{
		int			n;
		StepResult	r;

		member_read_commands(&m);
		if (m.conn == NULL)
		{
			if (m.final_on_loss)
				break;			/* killed for good */
			if (!member_connect(&m))
				break;
		}
		if (m.leave || m.quit)
		{
			/* a graceful leave: commit what was processed, then hand over */
			if (member_call(&m, "commit") == STEP_OK &&
				member_call(&m, "leave") == STEP_OK)
			{
				fprintf(m.out, "L %d %lld\n", m.session, wall_us());
				fflush(m.out);
			}
			break;
		}

		/* a slow machine can make a live member look dead: note it */
		if (m.last_poll_mono > 0 &&
			mono_us() - m.last_poll_mono > SESSION_TIMEOUT_MS * 1000 / 2)
		{
			fprintf(m.out, "G %d %lld %lld\n", m.session,
					(long long) (mono_us() - m.last_poll_mono) / 1000,
					wall_us());
			fflush(m.out);
		}
		m.last_poll_mono = mono_us();
		r = member_poll(&m, &n);
		if (r == STEP_LOST)
			continue;
		if (r == STEP_OK && n > 0 && m.hang)
		{
			member_hang_until_killed(&m);
			continue;
		}
		if (r == STEP_OK && n > 0 && m.explicit_commit)
			r = member_call(&m, "commit");
		if (r == STEP_LOST)
			continue;
		if (r == STEP_OK)
			m.in_a_row = 0;
		else if (m.in_a_row >= MAX_ERRORS_IN_A_ROW)
		{
			fprintf(stderr, "group_stress: member m%d: %d errors in a row, giving up\n",
					id, m.in_a_row);
			break;
		}

		/* "processing" takes a moment; an empty poll waits a little more */
		if (n == 0)
			sleep_ms(5 + rnd_below(&m.rnd, 15));
		else if (rnd_percent(&m.rnd, 30))
			sleep_ms(1 + rnd_below(&m.rnd, 4));
	}

	fprintf(m.out, "DONE %ld %ld %ld\n", m.polls, m.empty_polls, m.errors);
	fclose(m.out);
	PQfinish(m.conn);
	if (m.errors > MAX_LIVE_STDERR)
		fprintf(stderr, "group_stress: member m%d: %ld errors in all\n", id,
				m.errors);
	return m.errors == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * Parent: reading the children's files
 * ---------------------------------------------------------------------
 */

/* one poll that returned records */
typedef struct Poll
{
	int			member;
	int			session;
	long		number;			/* the member's poll count */
	long long	start_us;		/* server clock before pgq_poll */
	long long	end_us;			/* server clock after it (or see below) */
	bool		end_from_client;	/* a kill cut the poll: the client's clock
									 * when the records arrived */
	size_t		first;			/* its deliveries: first, first + n - 1 */
	size_t		n;
} Poll;

/* one record returned by a poll */
typedef struct Delivery
{
	char		value[VALUE_MAX];
	int			partition;
	long long	offset;
	size_t		poll;			/* index in polls[] */
} Delivery;

typedef struct LossRec
{
	int			session;
	long long	at_us;
	char		message[256];
} LossRec;

typedef struct MemberLog
{
	bool		started;		/* its file exists */
	bool		done;			/* its DONE line was seen */
	long		polls;
	long		empty_polls;
	long		errors;
	int			sessions;		/* S lines */
	long long	first_session_us;
	long long	last_session_us;
	bool		left;
	long long	left_us;
	LossRec    *losses;
	int			nlosses;
	long long	max_gap_ms;		/* longest time between two polls (G lines) */
	long long	max_gap_us;		/* when it ended */
	bool		hung;			/* it held a poll's records when killed */
	int			hung_session;
	long		hung_poll;		/* that poll's number */
	char	  **error_lines;	/* the first few E lines */
	int			nerror_lines;
	char	  **order_violations;	/* X ORDER */
	size_t		norder;
	char	  **other_violations;	/* X LIMIT */
	size_t		nother;
} MemberLog;

/* what the parent knows of one child process */
typedef struct Child
{
	pid_t		pid;
	bool		is_member;
	int			id;
	int			ctl_fd;			/* members: the parent's end of the pipe */
	bool		reaped;
	int			status;
	bool		killed_by_parent;
} Child;

static Poll *polls;
static size_t npolls;
static size_t polls_cap;
static Delivery *deliveries;
static size_t ndeliveries;
static size_t deliveries_cap;

static void
load_member(int id, MemberLog *log)
{
	char		path[PATH_MAX + 32];
	char		line[2048];
	FILE	   *in;
	Poll	   *cur = NULL;
	size_t		cur_index = 0;

	memset(log, 0, sizeof(*log));
	child_path(path, sizeof(path), "member", id);
	in = fopen(path, "r");
	if (in == NULL)
		return;
	log->started = true;
	while (fgets(line, sizeof(line), in))
	{
		int			session,
					pid,
					partition,
					n,
					pos = 0;
		long		number;
		long long	a,
					b,
					offset;
		char		kind;
		char		value[VALUE_MAX];

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'R' &&
			sscanf(line, "R %d %lld %63s", &partition, &offset, value) == 3)
		{
			Delivery   *d;

			if (cur == NULL)
				continue;		/* cannot happen: R lines follow their P */
			deliveries = grow_array(deliveries, &deliveries_cap,
									ndeliveries + 1, sizeof(Delivery));
			d = &deliveries[ndeliveries++];
			snprintf(d->value, sizeof(d->value), "%s", value);
			d->partition = partition;
			d->offset = offset;
			d->poll = cur_index;
			polls[cur_index].n++;
		}
		else if (sscanf(line, "P %d %ld %lld %lld %c %d", &session, &number,
						&a, &b, &kind, &n) == 6)
		{
			polls = grow_array(polls, &polls_cap, npolls + 1, sizeof(Poll));
			cur_index = npolls++;
			cur = &polls[cur_index];
			cur->member = id;
			cur->session = session;
			cur->number = number;
			cur->start_us = a;
			cur->end_us = b;
			cur->end_from_client = kind == 'c';
			cur->first = ndeliveries;
			cur->n = 0;
		}
		else if (sscanf(line, "S %d %d %lld", &session, &pid, &a) == 3)
		{
			if (log->sessions == 0)
				log->first_session_us = a;
			log->last_session_us = a;
			log->sessions++;
		}
		else if (sscanf(line, "G %d %lld %lld", &session, &b, &a) == 3)
		{
			if (b > log->max_gap_ms)
			{
				log->max_gap_ms = b;
				log->max_gap_us = a;
			}
		}
		else if (sscanf(line, "H %d %ld %lld", &session, &number, &a) == 3)
		{
			log->hung = true;
			log->hung_session = session;
			log->hung_poll = number;
		}
		else if (sscanf(line, "L %d %lld", &session, &a) == 2)
		{
			log->left = true;
			log->left_us = a;
		}
		else if (sscanf(line, "Z %d %lld %n", &session, &a, &pos) >= 2 &&
				 pos > 0)
		{
			LossRec    *l;

			log->losses = realloc(log->losses,
								  (size_t) (log->nlosses + 1) * sizeof(LossRec));
			if (log->losses == NULL)
				out_of_memory();
			l = &log->losses[log->nlosses++];
			l->session = session;
			l->at_us = a;
			snprintf(l->message, sizeof(l->message), "%s", line + pos);
		}
		else if (strncmp(line, "E ", 2) == 0)
		{
			size_t		k = (size_t) log->nerror_lines;

			if (log->nerror_lines < MAX_MESSAGES)
			{
				append_line(&log->error_lines, &k, line + 2);
				log->nerror_lines = (int) k;
			}
		}
		else if (strncmp(line, "X ORDER ", 8) == 0)
			append_line(&log->order_violations, &log->norder, line + 8);
		else if (strncmp(line, "X LIMIT ", 8) == 0)
			append_line(&log->other_violations, &log->nother, line + 8);
		else if (sscanf(line, "DONE %ld %ld %ld", &log->polls,
						&log->empty_polls, &log->errors) == 3)
			log->done = true;
	}
	fclose(in);
}

/* ---------------------------------------------------------------------
 * Parent: the checks
 * ---------------------------------------------------------------------
 */

/* deliveries by (partition, offset), then by the end of their poll */
static int
cmp_delivery_ptr_by_position(const void *a, const void *b)
{
	const Delivery *x = *(const Delivery *const *) a;
	const Delivery *y = *(const Delivery *const *) b;
	long long	ex = polls[x->poll].end_us;
	long long	ey = polls[y->poll].end_us;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (ex != ey)
		return ex < ey ? -1 : 1;
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* index of the first delivery at (partition, offset) or after it */
static size_t
delivery_lower_bound(Delivery **by_pos, size_t n, int partition,
					 long long offset)
{
	return position_lower_bound((void *const *) by_pos, n,
								offsetof(Delivery, partition),
								offsetof(Delivery, offset), partition, offset);
}

/* "m3 session 0 poll 12 (+1.234s..+1.236s)" */
static const char *
describe_poll(char *buf, size_t len, const Poll *p)
{
	snprintf(buf, len, "m%d session %d poll %ld (+%.6fs..+%.6fs%s)",
			 p->member, p->session, p->number, rel(p->start_us),
			 rel(p->end_us), p->end_from_client ? ", cut by a kill" : "");
	return buf;
}

/*
 * Check 1: every committed record was delivered at its partition and offset,
 * and the group's final committed offset of its partition is past it.
 */
static void
check_all_committed_delivered(Check *c, Delivery **by_pos,
							  const long long *final_committed)
{
	long long  *target = xmalloc((size_t) opts.partitions * sizeof(long long));
	const char **target_value = xmalloc((size_t) opts.partitions * sizeof(char *));
	size_t		i;
	int			p;

	for (p = 0; p < opts.partitions; p++)
	{
		target[p] = 0;
		target_value[p] = NULL;
	}
	for (i = 0; i < nsends; i++)
	{
		const SendRec *s = &sends[i];
		size_t		at,
					j;
		bool		found = false;
		const Delivery *other = NULL;

		if (s->fate != 'C' || s->partition < 0 ||
			s->partition >= opts.partitions)
			continue;
		if (s->offset + 1 > target[s->partition])
		{
			target[s->partition] = s->offset + 1;
			target_value[s->partition] = s->value;
		}
		at = delivery_lower_bound(by_pos, ndeliveries, s->partition, s->offset);
		for (j = at; j < ndeliveries && by_pos[j]->partition == s->partition &&
			 by_pos[j]->offset == s->offset; j++)
		{
			if (strcmp(by_pos[j]->value, s->value) == 0)
				found = true;
			else if (other == NULL)
				other = by_pos[j];
		}
		if (found)
			continue;
		if (other != NULL)
			check_fail(c, "committed record %s (partition %d, offset %lld): that position was delivered as \"%s\", never as this record",
					   s->value, s->partition, s->offset, other->value);
		else
		{
			/* say what the group saw of that partition around it */
			const Delivery *above = at < ndeliveries &&
				by_pos[at]->partition == s->partition ? by_pos[at] : NULL;
			char		buf[160];

			if (above)
				check_fail(c, "committed record %s (partition %d, offset %lld, committed at +%.3fs) was never delivered to any member; offset %lld of that partition was delivered to %s; the group's committed offset of the partition ended at %lld",
						   s->value, s->partition, s->offset, rel(s->end_us),
						   above->offset,
						   describe_poll(buf, sizeof(buf), &polls[above->poll]),
						   final_committed[s->partition]);
			else
				check_fail(c, "committed record %s (partition %d, offset %lld, committed at +%.3fs) was never delivered to any member, nor any higher offset of that partition; the group's committed offset of the partition ended at %lld",
						   s->value, s->partition, s->offset, rel(s->end_us),
						   final_committed[s->partition]);
		}
	}
	for (p = 0; p < opts.partitions; p++)
		if (target[p] > 0 && final_committed[p] < target[p])
			check_fail(c, "partition %d: the group's committed offset ended at %lld%s, not past offset %lld (its last committed record, %s): the group did not record it as processed",
					   p, final_committed[p],
					   final_committed[p] < 0 ? " (none)" : "",
					   target[p] - 1, target_value[p]);
	free(target);
	free(target_value);
}

/* a poll's time on one partition, for check 2 */
typedef struct Interval
{
	int			partition;
	long long	start_us;
	long long	end_us;
	int			member;
	size_t		poll;
} Interval;

static int
cmp_interval(const void *a, const void *b)
{
	const Interval *x = a;
	const Interval *y = b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->start_us != y->start_us)
		return x->start_us < y->start_us ? -1 : 1;
	if (x->end_us != y->end_us)
		return x->end_us < y->end_us ? -1 : 1;
	return x->poll < y->poll ? -1 : (x->poll > y->poll ? 1 : 0);
}

/* the interval of one member that reaches furthest, for the sweep */
typedef struct Reach
{
	long long	end_us;
	int			member;			/* -1: none yet */
	size_t		interval;
} Reach;

/*
 * Check 2: per partition, the polls of different members that returned its
 * records never overlap in server time.  A sweep in start order keeps the
 * two members whose intervals reach furthest (distinct members): an interval
 * overlaps an earlier one of another member exactly when the furthest reach
 * of the other members passes its start.
 */
static void
check_no_concurrent_owners(Check *c)
{
	Interval   *iv = NULL;
	size_t		niv = 0,
				cap = 0,
				i;
	long	   *stamp = xmalloc((size_t) opts.partitions * sizeof(long));
	int			p;

	for (p = 0; p < opts.partitions; p++)
		stamp[p] = -1;
	for (i = 0; i < npolls; i++)
	{
		size_t		j;

		for (j = polls[i].first; j < polls[i].first + polls[i].n; j++)
		{
			int			part = deliveries[j].partition;

			if (part < 0 || part >= opts.partitions || stamp[part] == (long) i)
				continue;
			stamp[part] = (long) i;
			iv = grow_array(iv, &cap, niv + 1, sizeof(Interval));
			iv[niv].partition = part;
			iv[niv].start_us = polls[i].start_us;
			iv[niv].end_us = polls[i].end_us;
			iv[niv].member = polls[i].member;
			iv[niv].poll = i;
			niv++;
		}
	}
	free(stamp);
	if (niv > 0)
		qsort(iv, niv, sizeof(Interval), cmp_interval);

	for (i = 0; i < niv;)
	{
		int			part = iv[i].partition;
		Reach		a = {LLONG_MIN, -1, 0},
					b = {LLONG_MIN, -1, 0};

		for (; i < niv && iv[i].partition == part; i++)
		{
			const Interval *cur = &iv[i];
			const Reach *other = a.member != cur->member ? &a : &b;

			if (other->member >= 0 && other->end_us > cur->start_us)
			{
				char		b1[160],
							b2[160];

				check_fail(c, "partition %d was read by two members at once: %s and %s returned its records in overlapping intervals",
						   part,
						   describe_poll(b1, sizeof(b1), &polls[iv[other->interval].poll]),
						   describe_poll(b2, sizeof(b2), &polls[cur->poll]));
			}

			/* keep the furthest reach of the two furthest-reaching members */
			if (cur->member == a.member)
			{
				if (cur->end_us > a.end_us)
				{
					a.end_us = cur->end_us;
					a.interval = i;
				}
			}
			else if (cur->member == b.member)
			{
				if (cur->end_us > b.end_us)
				{
					b.end_us = cur->end_us;
					b.interval = i;
					if (b.end_us > a.end_us)
					{
						Reach		t = a;

						a = b;
						b = t;
					}
				}
			}
			else if (cur->end_us > a.end_us)
			{
				b = a;
				a.end_us = cur->end_us;
				a.member = cur->member;
				a.interval = i;
			}
			else if (cur->end_us > b.end_us)
			{
				b.end_us = cur->end_us;
				b.member = cur->member;
				b.interval = i;
			}
		}
	}
	free(iv);
}

/* Check 3: per member session and partition, offsets strictly increase */
static void
check_offsets_increase(Check *c, MemberLog *mlogs, int nmembers)
{
	long long  *last = xmalloc((size_t) opts.partitions * sizeof(long long));
	int			cur_member = -1,
				cur_session = -1;
	size_t		i;
	int			m,
				p;

	for (m = 0; m < nmembers; m++)
		for (i = 0; i < mlogs[m].norder; i++)
			check_fail(c, "m%d (seen live): %s", m, mlogs[m].order_violations[i]);

	/* deliveries are in file order: member by member, session by session */
	for (i = 0; i < ndeliveries; i++)
	{
		const Delivery *d = &deliveries[i];
		const Poll *pl = &polls[d->poll];

		if (pl->member != cur_member || pl->session != cur_session)
		{
			cur_member = pl->member;
			cur_session = pl->session;
			for (p = 0; p < opts.partitions; p++)
				last[p] = -1;
		}
		if (d->partition < 0 || d->partition >= opts.partitions)
			continue;			/* reported live */
		if (d->offset <= last[d->partition])
		{
			char		buf[160];

			check_fail(c, "partition %d offset %lld (%s) was delivered in %s after offset %lld in the same session: offsets went %s",
					   d->partition, d->offset, d->value,
					   describe_poll(buf, sizeof(buf), pl), last[d->partition],
					   d->offset == last[d->partition] ?
					   "nowhere (delivered twice)" : "backwards");
		}
		else
			last[d->partition] = d->offset;
	}
	free(last);
}

/*
 * Check 4: no record delivered twice by polls that ended before the first
 * kill (phase 1: only a graceful leave and a join happened).
 */
static void
check_no_duplicates_before_kill(Check *c, Delivery **by_pos,
								long long first_kill_us)
{
	size_t		i;

	for (i = 0; i < ndeliveries; i++)
	{
		const Delivery *d = by_pos[i];
		const Poll *pd = &polls[d->poll];
		size_t		j;

		if (pd->end_from_client || pd->end_us >= first_kill_us)
			continue;
		for (j = i + 1; j < ndeliveries && by_pos[j]->partition == d->partition &&
			 by_pos[j]->offset == d->offset; j++)
		{
			const Poll *pe = &polls[by_pos[j]->poll];
			char		b1[160],
						b2[160];

			if (pe->end_from_client || pe->end_us >= first_kill_us)
				continue;
			check_fail(c, "record %s (partition %d, offset %lld) was delivered twice before the first kill (+%.3fs): to %s and to %s",
					   d->value, d->partition, d->offset, rel(first_kill_us),
					   describe_poll(b1, sizeof(b1), pd),
					   describe_poll(b2, sizeof(b2), pe));
			break;				/* one message per first delivery */
		}
	}
}

/* Check 5: only committed records were delivered, where they were sent */
static void
check_no_rolled_back_delivered(Check *c)
{
	size_t		i;

	for (i = 0; i < ndeliveries; i++)
	{
		const Delivery *d = &deliveries[i];
		const SendRec *s = find_send(d->value);
		char		buf[160];

		if (s == NULL)
			check_fail(c, "%s delivered \"%s\" at partition %d offset %lld, which no producer sent",
					   describe_poll(buf, sizeof(buf), &polls[d->poll]),
					   d->value, d->partition, d->offset);
		else if (s->fate == 'R')
			check_fail(c, "%s delivered record %s at partition %d offset %lld, but its transaction rolled back (at +%.3fs)",
					   describe_poll(buf, sizeof(buf), &polls[d->poll]),
					   s->value, d->partition, d->offset, rel(s->end_us));
		else if (s->partition != d->partition || s->offset != d->offset)
			check_fail(c, "%s delivered record %s at partition %d offset %lld, but it was sent to partition %d offset %lld",
					   describe_poll(buf, sizeof(buf), &polls[d->poll]),
					   s->value, d->partition, d->offset, s->partition,
					   s->offset);
	}
}

/*
 * Check 6: the records a killed member held uncommitted were delivered again.
 * Each killed member was killed right after a poll whose records it had not
 * committed (no later poll, no pgq_commit); a new session or a new owner
 * resumes from the committed offset, so the first offset of each partition
 * in that poll must be delivered again by a poll that started after it.
 */
static void
check_uncommitted_redelivered(Check *c, Delivery **by_pos, MemberLog *mlogs)
{
	static const int killed[2] = {KILLED_RESTARTED, KILLED_FOR_GOOD};
	int			w;

	for (w = 0; w < 2; w++)
	{
		const MemberLog *ml = &mlogs[killed[w]];
		const Poll *hp = NULL;
		size_t		i,
					j;

		if (!ml->hung)
			continue;			/* check 7 says so */
		for (i = 0; i < npolls; i++)
			if (polls[i].member == killed[w] &&
				polls[i].session == ml->hung_session &&
				polls[i].number == ml->hung_poll)
				hp = &polls[i];
		if (hp == NULL)
		{
			check_fail(c, "m%d: the poll %ld it held when killed is not in its log",
					   killed[w], ml->hung_poll);
			continue;
		}
		for (i = hp->first; i < hp->first + hp->n; i++)
		{
			const Delivery *d = &deliveries[i];
			bool		first_of_partition = true;
			bool		again = false;
			size_t		at;
			char		buf[160];

			for (j = hp->first; j < i; j++)
				if (deliveries[j].partition == d->partition)
					first_of_partition = false;
			if (!first_of_partition)
				continue;
			at = delivery_lower_bound(by_pos, ndeliveries, d->partition,
									  d->offset);
			for (j = at; j < ndeliveries && by_pos[j]->partition == d->partition &&
				 by_pos[j]->offset == d->offset; j++)
				if (polls[by_pos[j]->poll].start_us > hp->end_us)
					again = true;
			if (!again)
				check_fail(c, "m%d was killed holding record %s (partition %d, offset %lld) of its %s, uncommitted, but it was never delivered again: the group counted it as processed although its consumer never committed it",
						   killed[w], d->value, d->partition, d->offset,
						   describe_poll(buf, sizeof(buf), hp));
		}
	}
}

/* what the parent saw of the scenario, for check 7 */
typedef struct Scenario
{
	bool		fork_failed;
	long long	first_kill_us;	/* LLONG_MAX if it did not happen */
	long long	second_kill_us;
	char		kill_error[2][1024];
	bool		hang_timed_out[2];	/* no SIGUSR1 before the kill */
	bool		drain_done;
	double		drain_s;
	char		drain_error[1024];
	bool		group_dropped;
	char		drop_error[1024];
	int			joiner;
} Scenario;

/* the deliveries of one member's session, counted */
static size_t
member_deliveries(int member, int session, long long before_us)
{
	size_t		i,
				n = 0;

	for (i = 0; i < npolls; i++)
		if (polls[i].member == member &&
			(session < 0 || polls[i].session == session) &&
			polls[i].end_us < before_us)
			n += polls[i].n;
	return n;
}

/* Check 7: the scenario ran as planned */
static void
check_scenario(Check *c, const Scenario *sc, Child *children, int nchildren,
			   ProducerLog *plogs, MemberLog *mlogs, int nmembers)
{
	int			i;
	size_t		k;

	if (sc->fork_failed)
		check_fail(c, "not every producer and member could be started (fork failed)");
	for (i = 0; i < nchildren; i++)
	{
		const Child *ch = &children[i];
		char		how[128];
		bool		done = ch->is_member ? mlogs[ch->id].done : plogs[ch->id].done;
		long		errors = ch->is_member ? mlogs[ch->id].errors :
			plogs[ch->id].errors;

		if (ch->reaped && WIFEXITED(ch->status) && WEXITSTATUS(ch->status) == 0 &&
			done && errors == 0)
			continue;
		describe_exit(how, sizeof(how), ch->reaped, ch->status,
					  ch->killed_by_parent, "");
		if (ch->is_member)
			check_fail(c, "member m%d did not run cleanly: it %s, %s, with %ld failed statement%s%s%s",
					   ch->id, how,
					   done ? "finished its log" : "did not finish its log",
					   errors, errors == 1 ? "" : "s",
					   mlogs[ch->id].nerror_lines > 0 ? "; the first: " : "",
					   mlogs[ch->id].nerror_lines > 0 ?
					   mlogs[ch->id].error_lines[0] : "");
		else
			check_fail(c, "producer %d did not run cleanly: it %s, %s, with %ld failed statement%s (printed above)",
					   ch->id, how,
					   done ? "finished its log" : "did not finish its log",
					   errors, errors == 1 ? "" : "s");
	}
	for (k = 0; k < nsends; k++)
		if (sends[k].fate == 'U')
			check_fail(c, "record %s (partition %d, offset %lld): its transaction's end is unknown",
					   sends[k].value, sends[k].partition, sends[k].offset);
	for (i = 0; i < nmembers; i++)
		for (k = 0; k < mlogs[i].nother; k++)
			check_fail(c, "m%d (seen live): %s", i, mlogs[i].other_violations[k]);

	/* phase 1: the leave and the join */
	if (!mlogs[LEAVER].left)
		check_fail(c, "m%d was to leave gracefully at +%.1fs but did not (no pgq_leave succeeded)",
				   LEAVER, LEAVE_AT * opts.seconds);
	else if (mlogs[LEAVER].left_us >= sc->first_kill_us)
		check_fail(c, "m%d left at +%.3fs, not before the first kill (+%.3fs): phase 1 did not contain the leave",
				   LEAVER, rel(mlogs[LEAVER].left_us), rel(sc->first_kill_us));
	if (sc->joiner >= 0 && member_deliveries(sc->joiner, -1, sc->first_kill_us) == 0)
		check_fail(c, "the joiner m%d got no record before the first kill (+%.3fs): phase 1 did not exercise the join",
				   sc->joiner, rel(sc->first_kill_us));

	/* phase 2: the kills */
	if (!mlogs[KILLED_RESTARTED].hung || sc->hang_timed_out[0])
		check_fail(c, "m%d did not hold a poll's records when its backend was killed (none within %d s)",
				   KILLED_RESTARTED, HANG_WAIT_S);
	if (!mlogs[KILLED_FOR_GOOD].hung || sc->hang_timed_out[1])
		check_fail(c, "m%d did not hold a poll's records when its backend was killed (none within %d s)",
				   KILLED_FOR_GOOD, HANG_WAIT_S);
	if (sc->kill_error[0][0])
		check_fail(c, "killing m%d's backend failed: %s", KILLED_RESTARTED,
				   sc->kill_error[0]);
	if (sc->kill_error[1][0])
		check_fail(c, "killing m%d's backend failed: %s", KILLED_FOR_GOOD,
				   sc->kill_error[1]);
	for (i = 0; i < nmembers; i++)
	{
		const MemberLog *ml = &mlogs[i];
		int			expected = (i == KILLED_RESTARTED || i == KILLED_FOR_GOOD) ? 1 : 0;
		int			j;

		if (!ml->started)
			continue;
		for (j = 0; j < ml->nlosses; j++)
			if (j >= expected)
				check_fail(c, "m%d lost its connection unexpectedly in session %d at +%.3fs: %s",
						   i, ml->losses[j].session, rel(ml->losses[j].at_us),
						   ml->losses[j].message);
		if (expected > 0 && ml->nlosses == 0 && !sc->kill_error[i == KILLED_FOR_GOOD][0])
			check_fail(c, "m%d's backend was killed but the member never saw its connection lost",
					   i);
	}
	if (mlogs[KILLED_RESTARTED].sessions < 2)
		check_fail(c, "m%d did not reconnect after its backend was killed (%d session%s)",
				   KILLED_RESTARTED, mlogs[KILLED_RESTARTED].sessions,
				   mlogs[KILLED_RESTARTED].sessions == 1 ? "" : "s");
	else if (member_deliveries(KILLED_RESTARTED, 1, LLONG_MAX) == 0)
		check_fail(c, "m%d got no record in its new session after reconnecting as the same member",
				   KILLED_RESTARTED);
	if (mlogs[KILLED_FOR_GOOD].sessions > 1)
		check_fail(c, "m%d reconnected after its kill for good", KILLED_FOR_GOOD);

	/* the end */
	if (!sc->drain_done)
		check_fail(c, "the drain did not finish: %s", sc->drain_error);
	if (!opts.keep && !sc->group_dropped)
		check_fail(c, "the group could not be dropped after all members left or expired: %s",
				   sc->drop_error);
}

/* ---------------------------------------------------------------------
 * Parent: set-up, the scenario, tear-down
 * ---------------------------------------------------------------------
 */

static Child *children;
static volatile sig_atomic_t nchildren_visible;
static volatile sig_atomic_t member_holds_records;

/*
 * SIGALRM in the parent: the server is not answering (every stage has its
 * own deadline well before this).  Kills the children, prints the message
 * prepared for this stage -- ending with the final line -- and exits.
 */
static void
on_parent_alarm(int signo)
{
	int			i;

	(void) signo;
	for (i = 0; i < nchildren_visible; i++)
		if (!children[i].reaped && children[i].pid > 0)
			kill(children[i].pid, SIGKILL);
	alarm_exit();
}

/* SIGUSR1: a member told to hang holds its records now */
static void
on_member_hung(int signo)
{
	(void) signo;
	member_holds_records = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: group_stress [-P partitions] [-m members] [-s seconds] [--seed N] [-k]\n"
			"Connects with the libpq environment (local socket or loopback only).\n"
			"  -P N       partitions (default 6, at least the members)\n"
			"  -m N       members at the start (default 3, at least 3); one more joins\n"
			"  -s N       seconds of sending (default 12, at least 5)\n"
			"  --seed N   seed of the random choices\n"
			"  -k         keep the topic, the group and the client logs\n");
}

static void
parse_options(int argc, char **argv)
{
	const IntOption ints[] = {
		{'P', "-P (partitions)", 1, 1000, &opts.partitions},
		{'m', "-m (members)", 3, 100, &opts.members},
		{'s', "-s (seconds)", 5, 3600, &opts.seconds},
	};

	opts.partitions = 6;
	opts.members = 3;
	opts.seconds = 12;
	opts.seed = default_seed();
	opts.keep = false;

	/* every option of its own is an integer: next_option parses them all */
	while (next_option(argc, argv, "P:m:s:", ints, lengthof(ints), &opts.seed,
					   &opts.keep, usage) != -1)
		;
	/* balanced assignment then gives every member a partition at all times */
	if (opts.partitions < opts.members)
	{
		fprintf(stderr, "group_stress: -P (partitions, %d) must be at least -m (members, %d), so that the joiner and the killed members own partitions\n",
				opts.partitions, opts.members);
		exit(2);
	}
}

static void
note_reaped(Child *ch, int n, pid_t pid, int status)
{
	int			i;

	for (i = 0; i < n; i++)
		if (ch[i].pid == pid)
		{
			ch[i].reaped = true;
			ch[i].status = status;
			if (ch[i].is_member && ch[i].ctl_fd >= 0)
			{
				close(ch[i].ctl_fd);
				ch[i].ctl_fd = -1;
			}
		}
}

static void
reap_nohang(Child *ch, int n)
{
	pid_t		pid;
	int			status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		note_reaped(ch, n, pid, status);
}

/* true when every child of the kind (or every child, kind < 0) is reaped */
static bool
all_reaped(const Child *ch, int n, int is_member)
{
	int			i;

	for (i = 0; i < n; i++)
		if ((is_member < 0 || ch[i].is_member == (bool) is_member) &&
			!ch[i].reaped)
			return false;
	return true;
}

static void
kill_left(Child *ch, int n, int is_member)
{
	int			i,
				status;

	for (i = 0; i < n; i++)
		if ((is_member < 0 || ch[i].is_member == (bool) is_member) &&
			!ch[i].reaped)
		{
			kill(ch[i].pid, SIGKILL);
			ch[i].killed_by_parent = true;
			if (waitpid(ch[i].pid, &status, 0) == ch[i].pid)
				note_reaped(ch, n, ch[i].pid, status);
		}
}

static void
send_command(Child *ch, int n, int member, char cmd)
{
	int			i;

	for (i = 0; i < n; i++)
		if (ch[i].is_member && ch[i].id == member && ch[i].ctl_fd >= 0)
		{
			ssize_t		rc = write(ch[i].ctl_fd, &cmd, 1);

			(void) rc;			/* EPIPE: it has exited already */
		}
}

/*
 * Starts a producer or a member; false if fork failed.  A member gets a pipe
 * for the parent's commands.
 */
static bool
start_child(int *nchildren, bool is_member, int id, int64_t producers_end)
{
	char		path[PATH_MAX + 32];
	int			ctl[2] = {-1, -1};
	pid_t		pid;
	Child	   *ch = &children[*nchildren];

	child_path(path, sizeof(path), is_member ? "member" : "producer", id);
	if (is_member && pipe(ctl) != 0)
	{
		printf("group_stress: pipe: %s\n", strerror(errno));
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		printf("group_stress: fork: %s\n", strerror(errno));
		if (is_member)
		{
			close(ctl[0]);
			close(ctl[1]);
		}
		return false;
	}
	if (pid == 0)
	{
		int			i,
					rc;

		signal(SIGALRM, SIG_DFL);
		signal(SIGUSR1, SIG_DFL);
		alarm(alarm_secs_until(opts.seconds + CHILD_KILL_AFTER));
		for (i = 0; i < *nchildren; i++)
			if (children[i].is_member && children[i].ctl_fd >= 0)
				close(children[i].ctl_fd);
		if (is_member)
		{
			close(ctl[1]);
			rc = run_member(id, path, ctl[0]);
		}
		else
			rc = run_producer(id, path, producers_end);
		_exit(rc);
	}
	if (is_member)
		close(ctl[0]);
	ch->pid = pid;
	ch->is_member = is_member;
	ch->id = id;
	ch->ctl_fd = is_member ? ctl[1] : -1;
	ch->reaped = false;
	(*nchildren)++;
	nchildren_visible = *nchildren;
	return true;
}

/*
 * Terminates the backend of a member from the admin connection; at_us is
 * the server's clock just before (the earliest the kill can have landed).
 * First the member is told to hang after its next poll with records (and,
 * for_good, not to reconnect), so that it dies holding uncommitted records;
 * *hang_timed_out says it did not report that in time (it is killed all the
 * same).  The member may be between sessions: retries for a second.
 */
static bool
kill_member_backend(PGconn *admin, Child *ch, int nch, int member,
					bool for_good, long long *at_us, bool *hang_timed_out,
					char *err, size_t errlen)
{
	char		appname[64];
	const char *params[1];
	int64_t		give_up;

	member_holds_records = 0;
	if (for_good)
		send_command(ch, nch, member, 'X');
	send_command(ch, nch, member, 'H');
	give_up = mono_us() + (int64_t) HANG_WAIT_S * 1000000;
	while (!member_holds_records && mono_us() < give_up)
		sleep_ms(1);
	*hang_timed_out = !member_holds_records;
	if (*hang_timed_out)
		printf("group_stress: m%d did not report holding records within %d s\n",
			   member, HANG_WAIT_S);

	give_up = mono_us() + 1000000;
	member_appname(appname, sizeof(appname), member);
	params[0] = appname;
	for (;;)
	{
		PGresult   *res;
		int			n;

		if (!server_now(admin, at_us, err, errlen) ||
			!query_ok(admin,
					  "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
					  "WHERE application_name = $1 AND pid <> pg_backend_pid()",
					  1, params, &res, err, errlen))
			return false;
		n = PQntuples(res);
		if (n > 0)
		{
			bool		ok = strcmp(PQgetvalue(res, 0, 1), "t") == 0;

			printf("group_stress: +%.3fs: killed the backend (pid %s) of m%d%s\n",
				   rel(*at_us), PQgetvalue(res, 0, 0), member,
				   ok ? "" : " -- pg_terminate_backend returned false");
			if (!ok)
				snprintf(err, errlen, "pg_terminate_backend(%s) returned false",
						 PQgetvalue(res, 0, 0));
			PQclear(res);
			return ok;
		}
		PQclear(res);
		if (mono_us() >= give_up)
		{
			snprintf(err, errlen, "no backend with application_name \"%s\"",
					 appname);
			return false;
		}
		sleep_ms(20);
	}
}

/*
 * The group's committed offset of each partition (-1: none) from
 * pgq_consumer_lag; total lag in *lag_sum.
 */
static bool
query_committed(PGconn *admin, long long *committed, long long *lag_sum,
				char *err, size_t errlen)
{
	const char *params[2] = {group_id, topic};
	PGresult   *res;
	int			i,
				p;

	if (!query_ok(admin,
				  "SELECT partition, committed_offset, lag FROM pgq_consumer_lag "
				  "WHERE group_id = $1 AND topic = $2",
				  2, params, &res, err, errlen))
		return false;
	for (p = 0; p < opts.partitions; p++)
		committed[p] = -1;
	*lag_sum = 0;
	for (i = 0; i < PQntuples(res); i++)
	{
		p = atoi(PQgetvalue(res, i, 0));
		if (p < 0 || p >= opts.partitions)
			continue;
		committed[p] = PQgetisnull(res, i, 1) ? -1 :
			strtoll(PQgetvalue(res, i, 1), NULL, 10);
		if (!PQgetisnull(res, i, 2))
			*lag_sum += strtoll(PQgetvalue(res, i, 2), NULL, 10);
	}
	PQclear(res);
	return true;
}

/* waits, reaping children, until every member has exited or the deadline */
static void
wait_members(Child *ch, int n, int64_t deadline)
{
	while (!all_reaped(ch, n, 1) && mono_us() < deadline)
	{
		reap_nohang(ch, n);
		sleep_ms(20);
	}
	reap_nohang(ch, n);
}

int
main(int argc, char **argv)
{
	char		err[2048];
	PGconn	   *admin;
	PGresult   *res;
	const char *params[2];
	int			nchildren = 0;
	int			nmembers;
	int			started;		/* members started of the first ones */
	int			i,
				p;
	int64_t		run_start,
				producers_end;
	struct sigaction sa;
	ProducerLog plogs[NPRODUCERS];
	MemberLog  *mlogs;
	Scenario	sc;
	long long  *target;
	long long  *committed;
	long long	lag_sum = 0;
	Delivery  **by_pos;
	Check		checks[NCHECKS] = {
		{"every committed record was delivered at least once and the group's committed offsets passed it", 0},
		{"no partition was read by two members at once", 0},
		{"per session and partition, delivered offsets strictly increased", 0},
		{"no record was delivered twice before the first kill (leave and join only)", 0},
		{"no rolled-back record (nor anything not sent there) was delivered", 0},
		{"the records each killed member held uncommitted were delivered again", 0},
		{"the scenario ran as planned (clean clients, leave, join, kills, reconnect, drain, group dropped)", 0},
	};
	int			passed = 0;
	bool		left_sent = false,
				joined = false,
				killed1 = false,
				killed2 = false;
	long		rec_c = 0,
				rec_r = 0,
				rec_u = 0;
	size_t		repeats = 0,
				k;
	int			status;

	stress_common_init("group_stress", NCHECKS);
	tidy_libpq_errors = true;	/* as this program always printed them */
	t0_wall_us = wall_us();
	parent_pid = getpid();
	parse_options(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a command to a member that has exited */
	nmembers = opts.members + 1;	/* and the joiner */
	snprintf(topic, sizeof(topic), "group_stress_%lld_%ld",
			 (long long) time(NULL), (long) parent_pid);
	snprintf(group_id, sizeof(group_id), "%s_g", topic);

	memset(&sc, 0, sizeof(sc));
	sc.first_kill_us = LLONG_MAX;
	sc.second_kill_us = LLONG_MAX;
	sc.joiner = opts.members;
	snprintf(sc.drain_error, sizeof(sc.drain_error), "it did not start");
	snprintf(sc.drop_error, sizeof(sc.drop_error), "it was not tried");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_parent_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_member_hung;
	sigaction(SIGUSR1, &sa, NULL);

	printf("group_stress: topic %s, group %s, %d partitions, %d members (+1 joining), %d producers, %d s, seed %llu\n",
		   topic, group_id, opts.partitions, opts.members, NPRODUCERS,
		   opts.seconds, opts.seed);

	set_alarm_message(1, "group_stress: the run did not finish in time (server not answering?)\n"
					  "group_stress: 0 passed, %d failed\n", NCHECKS);
	alarm(alarm_secs_until(opts.seconds + HARD_STOP_AFTER));

	/* local resources first: a failure then leaves nothing behind */
	make_tmpdir();
	children = calloc((size_t) (NPRODUCERS + nmembers), sizeof(Child));
	mlogs = calloc((size_t) nmembers, sizeof(MemberLog));
	target = calloc((size_t) opts.partitions, sizeof(long long));
	committed = calloc((size_t) opts.partitions, sizeof(long long));
	if (children == NULL || mlogs == NULL || target == NULL || committed == NULL)
		setup_failed("set-up", "out of memory");

	admin = connect_local("group_stress admin", err, sizeof(err));
	if (admin == NULL)
		setup_failed("set-up", err);
	if (!query_ok(admin,
				  "SELECT to_regprocedure('pgq_poll(text,text,integer,integer,text)') IS NOT NULL",
				  0, NULL, &res, err, sizeof(err)) ||
		strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		if (res)
			snprintf(err, sizeof(err),
					 "function pgq_poll(text, text, integer, integer, text) does not exist: is the extension (with its group functions) created in this database?");
		PQclear(res);
		setup_failed("set-up", err);
	}
	PQclear(res);
	{
		char		parts[16];
		const char *cparams[2];

		snprintf(parts, sizeof(parts), "%d", opts.partitions);
		cparams[0] = topic;
		cparams[1] = parts;
		if (!query_ok(admin, "SELECT pgq_create_topic($1::text, $2::int)", 2,
					  cparams, NULL, err, sizeof(err)))
			setup_failed("creating the topic", err);
	}
	params[0] = group_id;
	if (!query_ok(admin,
				  "SELECT pgq_alter_group($1::text, '{\"session.timeout.ms\": " STR(SESSION_TIMEOUT_MS) "}')",
				  1, params, NULL, err, sizeof(err)))
	{
		params[0] = topic;
		query_ok(admin, "SELECT pgq_drop_topic($1::text)", 1, params, NULL,
				 NULL, 0);
		setup_failed("configuring the group", err);
	}

	/*
	 * The run: the producers and m0 start at once, the other first members
	 * join one by one while records flow (rebalances with records in flight,
	 * in phase 1).
	 */
	run_start = mono_us();
	producers_end = run_start + (int64_t) opts.seconds * 1000000;
	sc.fork_failed = !start_child(&nchildren, true, 0, producers_end);
	started = 1;
	for (i = 0; i < NPRODUCERS && !sc.fork_failed; i++)
		sc.fork_failed = !start_child(&nchildren, false, i, producers_end);

	/* the scenario's timeline, until the producers are done */
	while (!sc.fork_failed)
	{
		double		el = (double) (mono_us() - run_start) / 1e6;

		reap_nohang(children, nchildren);
		while (started < opts.members && !sc.fork_failed &&
			   el >= STAGGER_SPAN * opts.seconds * started / (opts.members - 1))
		{
			printf("group_stress: +%.3fs: m%d joins the group\n",
				   rel(wall_us()), started);
			sc.fork_failed = !start_child(&nchildren, true, started,
										  producers_end);
			started++;
		}
		if (!left_sent && el >= LEAVE_AT * opts.seconds)
		{
			printf("group_stress: +%.3fs: m%d leaves the group gracefully\n",
				   rel(wall_us()), LEAVER);
			send_command(children, nchildren, LEAVER, 'L');
			left_sent = true;
		}
		if (!joined && el >= JOIN_AT * opts.seconds)
		{
			printf("group_stress: +%.3fs: m%d joins the group\n",
				   rel(wall_us()), sc.joiner);
			sc.fork_failed = !start_child(&nchildren, true, sc.joiner,
										  producers_end);
			joined = true;
		}
		if (!killed1 && el >= KILL_RESTART_AT * opts.seconds)
		{
			if (!kill_member_backend(admin, children, nchildren,
									 KILLED_RESTARTED, false, &sc.first_kill_us,
									 &sc.hang_timed_out[0], sc.kill_error[0],
									 sizeof(sc.kill_error[0])))
			{
				printf("group_stress: killing m%d's backend failed: %s\n",
					   KILLED_RESTARTED, sc.kill_error[0]);
				if (sc.first_kill_us == LLONG_MAX)
					sc.first_kill_us = wall_us();
			}
			killed1 = true;
		}
		if (!killed2 && el >= KILL_FINAL_AT * opts.seconds)
		{
			if (!kill_member_backend(admin, children, nchildren,
									 KILLED_FOR_GOOD, true, &sc.second_kill_us,
									 &sc.hang_timed_out[1], sc.kill_error[1],
									 sizeof(sc.kill_error[1])))
				printf("group_stress: killing m%d's backend failed: %s\n",
					   KILLED_FOR_GOOD, sc.kill_error[1]);
			killed2 = true;
		}
		if (el >= opts.seconds && all_reaped(children, nchildren, 0))
			break;
		if (el >= opts.seconds + PRODUCER_GRACE_S)
		{
			printf("group_stress: producers still running %d s after the end: killing them\n",
				   PRODUCER_GRACE_S);
			kill_left(children, nchildren, 0);
			break;
		}
		sleep_ms(10);
	}
	if (sc.fork_failed)
		kill_left(children, nchildren, -1);	/* check 7 fails: no point going on */

	/* the drain: until the committed offsets pass every committed record */
	for (i = 0; i < NPRODUCERS; i++)
		load_producer(i, &plogs[i]);
	for (k = 0; k < nsends; k++)
		if (sends[k].fate == 'C' && sends[k].partition >= 0 &&
			sends[k].partition < opts.partitions &&
			sends[k].offset + 1 > target[sends[k].partition])
			target[sends[k].partition] = sends[k].offset + 1;
	printf("group_stress: +%.3fs: producers done; draining\n", rel(wall_us()));
	{
		int64_t		drain_start = mono_us();
		int64_t		deadline = drain_start + (int64_t) DRAIN_MAX_S * 1000000;

		for (;;)
		{
			int			behind = 0;

			reap_nohang(children, nchildren);
			if (!query_committed(admin, committed, &lag_sum, sc.drain_error,
								 sizeof(sc.drain_error)))
				break;
			for (p = 0; p < opts.partitions; p++)
				if (target[p] > 0 && committed[p] < target[p])
				{
					if (behind++ == 0)
						snprintf(sc.drain_error, sizeof(sc.drain_error),
								 "after %d s partition %d's committed offset was %lld, below %lld (one past its last committed record)",
								 DRAIN_MAX_S, p, committed[p], target[p]);
				}
			if (behind == 0)
			{
				sc.drain_done = true;
				sc.drain_s = (double) (mono_us() - drain_start) / 1e6;
				break;
			}
			if (all_reaped(children, nchildren, 1))
			{
				snprintf(sc.drain_error, sizeof(sc.drain_error),
						 "every member had exited with %d partition%s behind",
						 behind, behind == 1 ? "" : "s");
				break;
			}
			if (mono_us() >= deadline)
				break;
			sleep_ms(100);
		}
	}
	printf("group_stress: +%.3fs: drain %s (lag %lld); members commit and leave\n",
		   rel(wall_us()), sc.drain_done ? "done" : "incomplete", lag_sum);

	/* the end: the members still running commit, leave and exit */
	for (i = 0; i < nchildren; i++)
		if (children[i].is_member && !children[i].reaped)
			send_command(children, nchildren, children[i].id, 'Q');
	wait_members(children, nchildren, mono_us() + (int64_t) QUIT_WAIT_S * 1000000);
	if (!all_reaped(children, nchildren, -1))
	{
		printf("group_stress: members still running %d s after being told to quit: killing them\n",
			   QUIT_WAIT_S);
		kill_left(children, nchildren, -1);
	}
	if (!query_committed(admin, committed, &lag_sum, err, sizeof(err)))
	{
		printf("group_stress: reading pgq_consumer_lag at the end failed: %s\n", err);
		for (p = 0; p < opts.partitions; p++)
			committed[p] = -1;
	}

	/* the group: every member left or (m2) expired long ago */
	if (!opts.keep)
	{
		int64_t		give_up = mono_us() + 3 * 1000000;

		params[0] = group_id;
		for (;;)
		{
			if (query_ok(admin, "SELECT pgq_drop_group($1::text, true)", 1,
						 params, NULL, sc.drop_error, sizeof(sc.drop_error)))
			{
				sc.group_dropped = true;
				break;
			}
			if (mono_us() >= give_up)
				break;
			sleep_ms(200);
		}
	}

	/* analysis */
	for (i = 0; i < nmembers; i++)
		load_member(i, &mlogs[i]);
	sort_sends();
	by_pos = xmalloc((ndeliveries + 1) * sizeof(Delivery *));
	for (k = 0; k < ndeliveries; k++)
		by_pos[k] = &deliveries[k];
	qsort(by_pos, ndeliveries, sizeof(Delivery *), cmp_delivery_ptr_by_position);
	for (k = 1; k < ndeliveries; k++)
		if (by_pos[k]->partition == by_pos[k - 1]->partition &&
			by_pos[k]->offset == by_pos[k - 1]->offset)
			repeats++;

	check_all_committed_delivered(&checks[0], by_pos, committed);
	passed += check_verdict(&checks[0], 1);
	check_no_concurrent_owners(&checks[1]);
	passed += check_verdict(&checks[1], 2);
	check_offsets_increase(&checks[2], mlogs, nmembers);
	passed += check_verdict(&checks[2], 3);
	check_no_duplicates_before_kill(&checks[3], by_pos, sc.first_kill_us);
	passed += check_verdict(&checks[3], 4);
	check_no_rolled_back_delivered(&checks[4]);
	passed += check_verdict(&checks[4], 5);
	check_uncommitted_redelivered(&checks[5], by_pos, mlogs);
	passed += check_verdict(&checks[5], 6);
	check_scenario(&checks[6], &sc, children, nchildren, plogs, mlogs, nmembers);
	passed += check_verdict(&checks[6], 7);

	/* summary */
	for (k = 0; k < nsends; k++)
	{
		if (sends[k].fate == 'C')
			rec_c++;
		else if (sends[k].fate == 'R')
			rec_r++;
		else
			rec_u++;
	}
	printf("group_stress: %.1f s; %zu records sent (%ld committed, %ld rolled back, %ld unknown); %zu deliveries in %zu polls with records, %zu of them repeats; drain %.1f s",
		   elapsed_s(), nsends, rec_c, rec_r, rec_u, ndeliveries, npolls,
		   repeats, sc.drain_s);
	for (i = 0; i < nmembers; i++)
		if (mlogs[i].started)
			printf("%s m%d %zu/%ld polls/%d session%s", i == 0 ? "; members:" : ",",
				   i, member_deliveries(i, -1, LLONG_MAX), mlogs[i].polls,
				   mlogs[i].sessions, mlogs[i].sessions == 1 ? "" : "s");
	printf("\n");
	for (i = 0; i < nmembers; i++)
		if (mlogs[i].max_gap_ms > SESSION_TIMEOUT_MS * 3 / 4)
			printf("group_stress: warning: m%d went %lld ms without polling (until +%.3fs), close to or over session.timeout.ms (%d): an overloaded machine can make a live member lose its partitions and cause duplicates (check 4)\n",
				   i, mlogs[i].max_gap_ms, rel(mlogs[i].max_gap_us),
				   SESSION_TIMEOUT_MS);

	/* tear-down */
	status = passed == NCHECKS ? 0 : 1;
	set_alarm_message(status, "group_stress: warning: dropping topic %s did not finish in time\n"
					  "group_stress: %d passed, %d failed\n",
					  topic, passed, NCHECKS - passed);
	alarm(alarm_secs_until(opts.seconds + HARD_STOP_AFTER));
	if (!opts.keep)
	{
		params[0] = topic;
		if (!query_ok(admin, "SELECT pgq_drop_topic($1::text)", 1, params,
					  NULL, err, sizeof(err)))
			printf("group_stress: warning: could not drop topic %s: %s\n",
				   topic, err);
	}
	else
		printf("group_stress: kept topic %s and group %s\n", topic, group_id);
	PQfinish(admin);
	if (status == 0 && !opts.keep)
		remove_tmpdir(NPRODUCERS, "member", nmembers);
	else
		printf("group_stress: client logs kept in %s\n", tmpdir);
	alarm(0);

	printf("group_stress: %d passed, %d failed\n", passed, NCHECKS - passed);
	return status;
}
