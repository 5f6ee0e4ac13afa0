/*-------------------------------------------------------------------------
 *
 * pgpool.c
 *	  The gateway's connections to pgqueue: three pools of non-blocking
 *	  libpq connections, and a FIFO of jobs (one SQL statement each) per
 *	  pool.
 *
 *	  A job runs on the first idle connection of its pool; a connection
 *	  runs one job at a time, and its result goes to the job's callback.
 *	  The pools differ only in their sessions and their use:
 *	    POOL_DEFAULT  the server's synchronous_commit: acks=all produces,
 *	                  and every other statement
 *	    POOL_LOCAL    synchronous_commit = local (set in the connection's
 *	                  options): acks 0 and 1 need not wait for standbys
 *	    POOL_WAIT     pgq_wait long polls, which hold their connection for
 *	                  up to a client's max.wait.ms and must not starve the
 *	                  other pools
 *
 *	  A connection that is lost (the server restarted, failed over, or
 *	  killed the backend) is reconnected with a growing delay, through the
 *	  same conninfo: a multi-host one with target_session_attrs=read-write
 *	  then finds the promoted standby.  The job it was running gets its
 *	  callback with res NULL (Kafka's NOT_LEADER_OR_FOLLOWER, retriable),
 *	  and so do queued jobs while the pool has no connection up or coming
 *	  up.  Whether the statement committed before the connection broke is
 *	  unknown: the client retries, as with a broker that failed (the
 *	  idempotent producer makes that retry safe).
 *
 *	  Statements are prepared: the first time a connection runs a statement
 *	  (its text and parameter types), it prepares it under a name, an extra
 *	  round trip, and from then on executes it by that name, so the server
 *	  does not parse and plan it again for each request (that took about as
 *	  long as running a one-record Produce or an empty Fetch).  The
 *	  handlers' statements are fixed texts; the first MAX_PREPARED distinct
 *	  ones are kept, and any others run unnamed.  So the gateway needs
 *	  session state on its connections: point it at Postgres, or at a
 *	  pooler in session mode, not at one in transaction mode.
 *
 *	  Every call here returns without waiting on the network: sockets are
 *	  watched by libevent, and callbacks run from the event loop, never
 *	  from inside pg_submit.
 *
 *	  Roles (docs/gateway.md, "Authentication and TLS"): a job carries the
 *	  role it runs as, the role context when it was submitted (pg_set_role:
 *	  server.c sets it to the client's authenticated role around a handler,
 *	  and a job's callback runs in its job's role, so that the statements a
 *	  handler chains from its callbacks keep their client's role).  A
 *	  connection remembers the role its session is in; a job for another
 *	  role first runs set_config('role', ...) on it, an extra round trip
 *	  only on a switch, and the dispatch prefers an idle connection already
 *	  in the job's role.  Without SASL every role is NULL: the gateway's own,
 *	  and nothing is ever switched.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "pgpool.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

/* reconnecting: the first delay, doubled after each failure up to the last */
#define RECONNECT_MIN_MS	100
#define RECONNECT_MAX_MS	1000
/* a connection attempt that takes longer fails (libpq leaves that to us) */
#define CONNECT_TIMEOUT_SECS	10

typedef struct PgJob
{
	struct PgJob *next;
	char	   *sql;
	int			nparams;
	Oid		   *types;
	char	  **values;
	int		   *lengths;
	int		   *formats;
	bool		result_binary;
	char	   *role;			/* SET ROLE to this first; NULL: the gateway's own */
	bool		roleless;		/* failed early without its role: chains nothing */
	int			stmt;			/* its prepared statement, or -1: none */
	PgCallback	cb;
	void	   *arg;
} PgJob;

typedef enum PgConnState
{
	PC_DOWN,					/* waiting to reconnect */
	PC_CONNECTING,
	PC_IDLE,
	PC_BUSY						/* running a job */
} PgConnState;

typedef struct Pool Pool;

typedef struct PgConn
{
	Pool	   *pool;
	PgConnState state;
	PGconn	   *pg;
	struct event *io;			/* the socket's readiness */
	evutil_socket_t io_fd;		/* what io watches, */
	short		io_what;		/* and for what */
	struct event *timer;		/* connect timeout, or reconnect delay */
	int			delay_ms;		/* the next reconnect delay */
	bool		failing;		/* the last attempt failed (logged once) */
	bool		announce;		/* log when connected */
	PgJob	   *job;			/* the job running */
	PGresult   *result;			/* its result so far */
	char	   *role;			/* the session's role; NULL: the gateway's own */
	bool		switching;		/* running the set_config of job's role first */
	bool		preparing;		/* preparing job's statement first */
	uint64_t	prepared;		/* the statements prepared in the session (bits) */
} PgConn;

struct Pool
{
	PgPoolKind	kind;
	const char *name;
	PgConn	   *conns;
	int			nconns;
	PgJob	   *head;			/* the queued jobs, oldest first */
	PgJob	  **tailp;
	PgJob	   *failed;			/* jobs to fail from the loop */
	struct event *kick;			/* runs pool_kick_cb from the loop */
	/* connection parameters, NULL-terminated */
	const char **keywords;
	const char **values;
};

static Pool pools[3];
static bool stopping;

/* the statements that are prepared on the connections that run them */
#define MAX_PREPARED		64
typedef struct Prepared
{
	char	   *sql;
	int			nparams;
	Oid		   *types;			/* NULL: the server infers them */
} Prepared;

static Prepared prepared[MAX_PREPARED];
static int	nprepared;

/*
 * The role context of pg_submit (see the header): role_context_set is
 * false outside a handler or a callback, where no statement is submitted
 * today; if one ever were while clients authenticate, it is refused rather
 * than run with the gateway's own rights.
 */
static const char *role_context;
static bool role_context_set;

#define SET_ROLE_SQL "SELECT pg_catalog.set_config('role', $1, false)"

static void conn_connect(PgConn *pc);
static void pool_fail_later(Pool *pool, PgJob *job);
static void conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void pool_dispatch(Pool *pool);
static PgRoleContext pg_enter_no_role(void);

/* ------------------------------------------------------------------ jobs */

static void
job_free(PgJob *job)
{
	int			i;

	for (i = 0; i < job->nparams; i++)
		free(job->values[i]);
	free(job->values);
	free(job->types);
	free(job->lengths);
	free(job->formats);
	free(job->sql);
	free(job->role);
	free(job);
}

/* Runs a job's callback with res and frees the job (and res). */
static void
job_finish(PgJob *job, PGresult *res)
{
	const char *sqlstate = NULL;

	if (res && PQresultStatus(res) != PGRES_TUPLES_OK &&
		PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (sqlstate == NULL)
			sqlstate = "XX000";
	}
	PgRoleContext prev;

	/* a job that lost its role (out of memory) chains nothing (see above) */
	if (job->roleless)
		prev = pg_enter_no_role();
	else
		prev = pg_enter_role(job->role);
	job->cb(res, sqlstate, job->arg);
	pg_leave_role(prev);
	if (res)
		PQclear(res);
	job_free(job);
}

PgRoleContext
pg_enter_role(const char *role)
{
	PgRoleContext prev = {role_context, role_context_set};

	role_context = role;
	role_context_set = true;
	return prev;
}

static PgRoleContext
pg_enter_no_role(void)
{
	PgRoleContext prev = {role_context, role_context_set};

	role_context = NULL;
	role_context_set = false;
	return prev;
}

void
pg_leave_role(PgRoleContext prev)
{
	role_context = prev.role;
	role_context_set = prev.set;
}

const char *
pg_current_role(void)
{
	return role_context;
}

bool
pg_same_role(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void *
copy_array(const void *src, size_t size)
{
	void	   *dst;

	if (src == NULL)
		return NULL;
	dst = malloc(size);
	if (dst)
		memcpy(dst, src, size);
	return dst;
}

static PgJob *
job_new(const char *sql, int nparams, const Oid *types, const char *const *values,
		const int *lengths, const int *formats)
{
	PgJob	   *job = calloc(1, sizeof(PgJob));
	int			i;
	bool		ok;

	if (job == NULL)
		return NULL;
	job->nparams = nparams;
	job->sql = strdup(sql);
	job->values = calloc(nparams > 0 ? nparams : 1, sizeof(char *));
	job->types = copy_array(types, nparams * sizeof(Oid));
	job->lengths = copy_array(lengths, nparams * sizeof(int));
	job->formats = copy_array(formats, nparams * sizeof(int));
	ok = job->sql && job->values && (!types || job->types) &&
		(!lengths || job->lengths) && (!formats || job->formats);
	for (i = 0; ok && i < nparams; i++)
	{
		size_t		len;

		if (values == NULL || values[i] == NULL)
			continue;
		/* a binary value's length is given; a text one ends with its NUL */
		if (formats && formats[i] == 1)
			len = lengths[i];
		else
			len = strlen(values[i]) + 1;
		job->values[i] = malloc(len > 0 ? len : 1);
		if (job->values[i] == NULL)
			ok = false;
		else
			memcpy(job->values[i], values[i], len);
	}
	if (!ok)
	{
		job_free(job);
		return NULL;
	}
	return job;
}

/*
 * The prepared statement of a job's text and parameter types, added if
 * there is room; -1 if there is none.
 */
static int
prepared_find(const PgJob *job)
{
	Prepared   *ps;
	int			i;

	for (i = 0; i < nprepared; i++)
	{
		ps = &prepared[i];
		if (ps->nparams == job->nparams && strcmp(ps->sql, job->sql) == 0 &&
			(ps->types == NULL) == (job->types == NULL) &&
			(ps->types == NULL || memcmp(ps->types, job->types, job->nparams * sizeof(Oid)) == 0))
			return i;
	}
	if (nprepared == MAX_PREPARED)
		return -1;
	ps = &prepared[nprepared];
	ps->sql = strdup(job->sql);
	ps->types = copy_array(job->types, job->nparams * sizeof(Oid));
	if (ps->sql == NULL || (job->types != NULL && ps->types == NULL))
	{
		free(ps->sql);
		free(ps->types);
		return -1;
	}
	ps->nparams = job->nparams;
	return nprepared++;
}

static void
prepared_name(int stmt, char *name, size_t size)
{
	snprintf(name, size, "pgqk_%d", stmt);
}

/* ----------------------------------------------------------- connections */

static bool
conn_up(const PgConn *pc)
{
	return pc->state == PC_IDLE || pc->state == PC_BUSY;
}

/* Watches the connection's socket for what (EV_READ, EV_WRITE or both). */
static void
conn_watch(PgConn *pc, short what)
{
	evutil_socket_t fd = PQsocket(pc->pg);

	if (pc->io && pc->io_fd == fd && pc->io_what == what)
		return;
	if (pc->io)
		event_free(pc->io);
	pc->io = NULL;
	if (fd < 0)
		return;
	pc->io = event_new(gw_base, fd, what | EV_PERSIST, conn_io_cb, pc);
	pc->io_fd = fd;
	pc->io_what = what;
	if (pc->io)
		event_add(pc->io, NULL);
}

static void
conn_unwatch(PgConn *pc)
{
	if (pc->io)
		event_free(pc->io);
	pc->io = NULL;
	if (pc->timer)
		evtimer_del(pc->timer);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn	   *pc = arg;

	if (pc->state == PC_DOWN)
		conn_connect(pc);
	else if (pc->state == PC_CONNECTING)
	{
		gw_log("pool %s: connecting to the database timed out", pc->pool->name);
		pc->failing = true;
		PQfinish(pc->pg);
		pc->pg = NULL;
		conn_unwatch(pc);
		pc->state = PC_DOWN;
		/* reconnect at once: the timeout was the wait */
		conn_connect(pc);
	}
}

/*
 * The connection is gone (or never came up): forget it, fail its job, and
 * reconnect after a delay.
 */
static void
conn_lost(PgConn *pc, const char *why)
{
	struct timeval delay;
	PgJob	   *job = pc->job;
	bool		was_up = conn_up(pc);

	if (was_up || !pc->failing)
		gw_log("pool %s: %s: %s; reconnecting in %d ms", pc->pool->name,
			   was_up ? "lost the connection to the database" : "could not connect to the database",
			   why, pc->delay_ms);
	pc->failing = true;
	pc->announce = true;
	conn_unwatch(pc);
	PQfinish(pc->pg);
	pc->pg = NULL;
	pc->job = NULL;
	if (pc->result)
		PQclear(pc->result);
	pc->result = NULL;
	/* a new session starts in the gateway's own role */
	free(pc->role);
	pc->role = NULL;
	pc->switching = false;
	pc->preparing = false;
	pc->prepared = 0;			/* a new session has none */
	pc->state = PC_DOWN;
	if (!stopping)
	{
		delay.tv_sec = pc->delay_ms / 1000;
		delay.tv_usec = (pc->delay_ms % 1000) * 1000;
		evtimer_add(pc->timer, &delay);
		pc->delay_ms = pc->delay_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : pc->delay_ms * 2;
	}
	/* the job fails, and the queue too if nothing else is up: from the loop */
	pool_fail_later(pc->pool, job);
}

/* A libpq message on one line: the log has one line per event. */
static char *
one_line(char *msg)
{
	char	   *p;
	size_t		len;

	for (p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == ' ')
		msg[--len] = '\0';
	return msg;
}

static char *
pq_error(PGconn *pg)
{
	return pg ? one_line(PQerrorMessage(pg)) : "out of memory";
}

/* libpq's notices (e.g. the server's FATAL before it closes) go to our log */
static void
notice_processor(void *arg, const char *message)
{
	PgConn	   *pc = arg;
	char		buf[1024];

	snprintf(buf, sizeof(buf), "%s", message);
	gw_log("pool %s: %s", pc->pool->name, one_line(buf));
}

static void
conn_connect(PgConn *pc)
{
	struct timeval timeout = {CONNECT_TIMEOUT_SECS, 0};

	pc->pg = PQconnectStartParams(pc->pool->keywords, pc->pool->values, 0);
	if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD)
	{
		pc->state = PC_CONNECTING;	/* so that conn_lost logs it as a failed connect */
		conn_lost(pc, pq_error(pc->pg));
		return;
	}
	PQsetNoticeProcessor(pc->pg, notice_processor, pc);
	pc->state = PC_CONNECTING;
	evtimer_add(pc->timer, &timeout);
	/* PQconnectStart's state is PGRES_POLLING_WRITING */
	conn_watch(pc, EV_WRITE);
}

/* One step of a connection attempt, when its socket is ready. */
static void
conn_connect_step(PgConn *pc)
{
	/*
	 * With a multi-host conninfo, PQconnectPoll may close the socket and
	 * open one to the next host (the first refused us, or is read-only),
	 * often under the same descriptor number: epoll forgot the closed one,
	 * so conn_watch's "same fd, nothing to do" would leave the new socket
	 * unwatched and the attempt would hang until its timeout.  Watch anew
	 * after every step.
	 */
	if (pc->io)
		event_free(pc->io);
	pc->io = NULL;

	switch (PQconnectPoll(pc->pg))
	{
		case PGRES_POLLING_READING:
			conn_watch(pc, EV_READ);
			break;
		case PGRES_POLLING_WRITING:
			conn_watch(pc, EV_WRITE);
			break;
		case PGRES_POLLING_FAILED:
			conn_lost(pc, pq_error(pc->pg));
			break;
		case PGRES_POLLING_OK:
			evtimer_del(pc->timer);
			if (PQsetnonblocking(pc->pg, 1) != 0)
			{
				conn_lost(pc, pq_error(pc->pg));
				break;
			}
			if (pc->announce)
				gw_log("pool %s: connected to the database (%s:%s)", pc->pool->name,
					   PQhost(pc->pg), PQport(pc->pg));
			pc->failing = false;
			pc->announce = false;
			pc->delay_ms = RECONNECT_MIN_MS;
			pc->state = PC_IDLE;
			conn_watch(pc, EV_READ);
			pool_dispatch(pc->pool);
			break;
		default:
			break;
	}
}

/*
 * Sends a job's statement on an idle connection, or first the set_config
 * that puts the session in the job's role ('none' is RESET ROLE: no role
 * can be named so).
 */
static void
conn_run(PgConn *pc, PgJob *job)
{
	int			rc;
	int			ok;

	pc->job = job;
	pc->state = PC_BUSY;
	pc->switching = !pg_same_role(pc->role, job->role);
	if (pc->switching)
	{
		const char *role = job->role ? job->role : "none";

		ok = PQsendQueryParams(pc->pg, SET_ROLE_SQL, 1, NULL, &role, NULL, NULL, 0);
	}
	else if (job->stmt >= 0)
	{
		char		name[32];

		prepared_name(job->stmt, name, sizeof(name));
		pc->preparing = (pc->prepared & (UINT64_C(1) << job->stmt)) == 0;
		if (pc->preparing)
			ok = PQsendPrepare(pc->pg, name, job->sql, job->nparams, job->types);
		else
			ok = PQsendQueryPrepared(pc->pg, name, job->nparams,
									 (const char *const *) job->values, job->lengths,
									 job->formats, job->result_binary ? 1 : 0);
	}
	else
		ok = PQsendQueryParams(pc->pg, job->sql, job->nparams, job->types,
							   (const char *const *) job->values, job->lengths,
							   job->formats, job->result_binary ? 1 : 0);
	if (!ok)
	{
		conn_lost(pc, pq_error(pc->pg));
		return;
	}
	rc = PQflush(pc->pg);
	if (rc < 0)
		conn_lost(pc, pq_error(pc->pg));
	else
		conn_watch(pc, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
}

/*
 * The socket of a busy connection is ready: send what is left, read what
 * came, and once the statement's results are all in, end the job.
 */
static void
conn_busy_io(PgConn *pc, short what)
{
	PGresult   *res;
	PgJob	   *job;

	if ((what & EV_READ) && !PQconsumeInput(pc->pg))
	{
		conn_lost(pc, pq_error(pc->pg));
		return;
	}
	if (pc->io_what & EV_WRITE)
	{
		int			rc = PQflush(pc->pg);

		if (rc < 0)
		{
			conn_lost(pc, pq_error(pc->pg));
			return;
		}
		if (rc == 0)
			conn_watch(pc, EV_READ);
	}
	while (!PQisBusy(pc->pg))
	{
		res = PQgetResult(pc->pg);
		if (res == NULL)
			break;
		/* one statement gives one result; keep an error over anything else */
		if (pc->result == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR)
		{
			if (pc->result)
				PQclear(pc->result);
			pc->result = res;
		}
		else
			PQclear(res);
	}
	if (PQisBusy(pc->pg))
		return;					/* more to come */

	if (PQstatus(pc->pg) == CONNECTION_BAD)
	{
		/* e.g. the backend was terminated: its error is the connection's */
		conn_lost(pc, pc->result ? PQresultErrorField(pc->result, PG_DIAG_MESSAGE_PRIMARY) : pq_error(pc->pg));
		return;
	}
	job = pc->job;
	res = pc->result;
	pc->result = NULL;
	if (pc->switching && res && PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		/* in the job's role now: run the job itself */
		PQclear(res);
		free(pc->role);
		pc->role = job->role ? strdup(job->role) : NULL;
		if (job->role && pc->role == NULL)
		{
			/* out of memory: the session's role is unknown, start anew */
			pc->job = NULL;
			pool_fail_later(pc->pool, job);
			conn_lost(pc, "out of memory");
			return;
		}
		conn_run(pc, job);
		return;
	}
	if (pc->preparing && res && PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		/* prepared: now run it */
		PQclear(res);
		pc->prepared |= UINT64_C(1) << job->stmt;
		conn_run(pc, job);
		return;
	}
	/*
	 * The job's result; or the error of its statement's preparation, which
	 * is the statement's; or the set_config's error (the role was revoked
	 * from the gateway's: 42501, which the job's callback maps), after
	 * which the session is still in its previous role.
	 */
	pc->switching = false;
	pc->preparing = false;
	pc->job = NULL;
	pc->state = PC_IDLE;
	/* the callback may submit jobs: this connection can take one at once */
	job_finish(job, res);
	pool_dispatch(pc->pool);
}

static void
conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn	   *pc = arg;
	PGnotify   *n;

	switch (pc->state)
	{
		case PC_CONNECTING:
			conn_connect_step(pc);
			break;
		case PC_BUSY:
			conn_busy_io(pc, what);
			break;
		case PC_IDLE:
			/* nothing is expected: a notice, or the server closing it */
			if (!PQconsumeInput(pc->pg) || PQstatus(pc->pg) == CONNECTION_BAD)
			{
				conn_lost(pc, pq_error(pc->pg));
				break;
			}
			while ((n = PQnotifies(pc->pg)) != NULL)
				PQfreemem(n);
			break;
		case PC_DOWN:
			break;
	}
}

/* ----------------------------------------------------------------- pools */

/* An idle connection for a job of role: one in that role if any; or NULL. */
static PgConn *
pool_idle_conn(Pool *pool, const char *role)
{
	PgConn	   *any = NULL;
	int			i;

	for (i = 0; i < pool->nconns; i++)
	{
		PgConn	   *pc = &pool->conns[i];

		if (pc->state != PC_IDLE)
			continue;
		if (pg_same_role(pc->role, role))
			return pc;
		if (any == NULL)
			any = pc;
	}
	return any;
}

/* Gives queued jobs to idle connections, or fails them if none can come. */
static void
pool_dispatch(Pool *pool)
{
	int			i;
	bool		any_coming = false;
	PgConn	   *pc;

	while (pool->head && (pc = pool_idle_conn(pool, pool->head->role)) != NULL)
	{
		PgJob	   *job = pool->head;

		pool->head = job->next;
		if (pool->head == NULL)
			pool->tailp = &pool->head;
		job->next = NULL;
		conn_run(pc, job);
	}
	if (pool->head == NULL)
		return;
	for (i = 0; i < pool->nconns; i++)
		any_coming |= pool->conns[i].state != PC_DOWN;
	if (!any_coming)
		pool_fail_later(pool, NULL);
}

/*
 * Schedules pool_kick_cb: it fails the job (if any), and the queue if the
 * pool has no connection up or coming up.  Callbacks run from the loop
 * only, never from inside pg_submit or a connection's handling.
 */
static void
pool_fail_later(Pool *pool, PgJob *job)
{
	if (job)
	{
		job->next = pool->failed;
		pool->failed = job;
	}
	if (pool->kick)
		event_active(pool->kick, EV_TIMEOUT, 0);
}

static void
pool_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	Pool	   *pool = arg;
	int			i;

	while (pool->failed)
	{
		PgJob	   *job = pool->failed;

		pool->failed = job->next;
		job_finish(job, NULL);
	}
	for (i = 0; i < pool->nconns; i++)
	{
		if (pool->conns[i].state != PC_DOWN)
		{
			pool_dispatch(pool);
			return;
		}
	}
	while (pool->head)
	{
		PgJob	   *job = pool->head;

		pool->head = job->next;
		if (pool->head == NULL)
			pool->tailp = &pool->head;
		job_finish(job, NULL);
	}
}

void
pg_submit(PgPoolKind kind, const char *sql, int nparams, const Oid *types,
		  const char *const *values, const int *lengths, const int *formats,
		  bool result_binary, PgCallback cb, void *arg)
{
	Pool	   *pool = &pools[kind];
	PgJob	   *job;

	if (!role_context_set && gw_config.sasl)
	{
		/* see role_context: never the gateway's rights by mistake */
		gw_log("internal error: a statement submitted outside any client's request is refused");
		job = calloc(1, sizeof(PgJob));
		if (job == NULL)
			abort();
		job->roleless = true;
		job->cb = cb;
		job->arg = arg;
		pool_fail_later(pool, job);
		return;
	}
	job = job_new(sql, nparams, types, values, lengths, formats);
	if (job != NULL && role_context != NULL)
	{
		job->role = strdup(role_context);
		if (job->role == NULL)
		{
			job_free(job);
			job = NULL;
		}
	}
	if (job == NULL)
	{
		/* out of memory: the client gets a retriable error, from the loop */
		gw_log("out of memory queuing a statement");
		job = calloc(1, sizeof(PgJob));
		if (job == NULL)
			abort();			/* not even a few bytes: nothing else to do */
		job->roleless = true;
		job->cb = cb;
		job->arg = arg;
		pool_fail_later(pool, job);
		return;
	}
	job->result_binary = result_binary;
	job->stmt = prepared_find(job);
	job->cb = cb;
	job->arg = arg;
	*pool->tailp = job;
	pool->tailp = &job->next;
	pool_dispatch(pool);
}

static void
cancel_done(PGresult *res, const char *sqlstate, void *arg)
{
	if (sqlstate != NULL)
		gw_log("could not cancel a statement: %s", PQresultErrorMessage(res));
}

bool
pg_cancel(PgPoolKind kind, void *arg)
{
	Pool	   *pool = &pools[kind];
	int			i;

	for (i = 0; i < pool->nconns; i++)
	{
		PgConn	   *pc = &pool->conns[i];

		if (pc->state == PC_BUSY && pc->job != NULL && pc->job->arg == arg)
		{
			char		pid[16];
			const char *values[1] = {pid};
			/* the gateway's own role: its login role started the backend */
			PgRoleContext prev = pg_enter_role(NULL);

			snprintf(pid, sizeof(pid), "%d", PQbackendPID(pc->pg));
			pg_submit(POOL_DEFAULT, "SELECT pg_catalog.pg_cancel_backend($1::int4)", 1, NULL,
					  values, NULL, NULL, false, cancel_done, NULL);
			pg_leave_role(prev);
			return true;
		}
	}
	return false;
}

/*
 * The connection parameters of a pool kind: the conninfo's, a default
 * application_name, and for POOL_LOCAL synchronous_commit = local added to
 * its options.
 */
static bool
pool_params(Pool *pool)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *errmsg = NULL;
	int			n = 0;
	int			i = 0;
	const char *options = NULL;

	opts = PQconninfoParse(gw_config.conninfo, &errmsg);
	if (opts == NULL)
	{
		gw_log("invalid --conninfo: %s", errmsg ? errmsg : "out of memory");
		PQfreemem(errmsg);
		return false;
	}
	for (o = opts; o->keyword; o++)
		n++;
	pool->keywords = calloc(n + 3, sizeof(char *));
	pool->values = calloc(n + 3, sizeof(char *));
	if (!pool->keywords || !pool->values)
		return false;
	for (o = opts; o->keyword; o++)
	{
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "options") == 0)
		{
			options = o->val;
			continue;
		}
		pool->keywords[i] = strdup(o->keyword);
		pool->values[i] = strdup(o->val);
		i++;
	}
	pool->keywords[i] = strdup("fallback_application_name");
	pool->values[i] = strdup("pgqueue-kafka");
	i++;
	if (pool->kind == POOL_LOCAL || options)
	{
		char		buf[1024];

		snprintf(buf, sizeof(buf), "%s%s%s", options ? options : "",
				 options && pool->kind == POOL_LOCAL ? " " : "",
				 pool->kind == POOL_LOCAL ? "-c synchronous_commit=local" : "");
		pool->keywords[i] = strdup("options");
		pool->values[i] = strdup(buf);
		i++;
	}
	PQconninfoFree(opts);
	return true;
}

static void
pool_free_params(Pool *pool)
{
	int			i;

	for (i = 0; pool->keywords && pool->keywords[i]; i++)
	{
		free((void *) pool->keywords[i]);
		free((void *) pool->values[i]);
	}
	free(pool->keywords);
	free(pool->values);
	pool->keywords = NULL;
	pool->values = NULL;
}

bool
pool_start(void)
{
	static const char *const names[] = {"default", "local", "wait"};
	int			k;
	int			i;

	for (k = 0; k < 3; k++)
	{
		Pool	   *pool = &pools[k];

		pool->kind = (PgPoolKind) k;
		pool->name = names[k];
		pool->head = NULL;
		pool->tailp = &pool->head;
		if (!pool_params(pool))
			return false;
		pool->kick = event_new(gw_base, -1, 0, pool_kick_cb, pool);
		pool->nconns = gw_config.pool_size;
		pool->conns = calloc(pool->nconns, sizeof(PgConn));
		if (pool->kick == NULL || pool->conns == NULL)
			return false;
		for (i = 0; i < pool->nconns; i++)
		{
			PgConn	   *pc = &pool->conns[i];

			pc->pool = pool;
			pc->delay_ms = RECONNECT_MIN_MS;
			pc->io_fd = -1;
			/* the first connection of a pool logs when it is up */
			pc->announce = (i == 0);
			pc->timer = evtimer_new(gw_base, conn_timer_cb, pc);
			if (pc->timer == NULL)
				return false;
			conn_connect(pc);
		}
	}
	return true;
}

void
pool_stop(void)
{
	int			k;
	int			i;

	stopping = true;
	for (k = 0; k < 3; k++)
	{
		Pool	   *pool = &pools[k];

		for (i = 0; i < pool->nconns; i++)
		{
			PgConn	   *pc = &pool->conns[i];
			PgJob	   *job = pc->job;

			conn_unwatch(pc);
			if (pc->timer)
				event_free(pc->timer);
			pc->timer = NULL;
			if (pc->result)
				PQclear(pc->result);
			pc->result = NULL;
			if (pc->pg)
				PQfinish(pc->pg);
			pc->pg = NULL;
			free(pc->role);
			pc->role = NULL;
			pc->job = NULL;
			pc->state = PC_DOWN;
			if (job)
			{
				job->next = pool->failed;
				pool->failed = job;
			}
		}
	}
	/* the callbacks may queue more: fail jobs until none is left anywhere */
	for (;;)
	{
		PgJob	   *job = NULL;

		for (k = 0; k < 3 && job == NULL; k++)
		{
			Pool	   *pool = &pools[k];

			if ((job = pool->failed) != NULL)
				pool->failed = job->next;
			else if ((job = pool->head) != NULL)
			{
				pool->head = job->next;
				if (pool->head == NULL)
					pool->tailp = &pool->head;
			}
		}
		if (job == NULL)
			break;
		job_finish(job, NULL);
	}
	for (k = 0; k < 3; k++)
	{
		Pool	   *pool = &pools[k];

		if (pool->kick)
			event_free(pool->kick);
		pool->kick = NULL;
		free(pool->conns);
		pool->conns = NULL;
		pool->nconns = 0;
		pool_free_params(pool);
	}
}
