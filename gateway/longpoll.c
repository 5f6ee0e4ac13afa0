/*-------------------------------------------------------------------------
 *
 * longpoll.c
 *	  Fetch requests parked until a commit makes one of their partitions
 *	  readable: a few pgq_wait statements, each for many requests.
 *
 * A Fetch whose read found nothing to answer is parked here with its
 * (topic, partition, offset) entries and its deadline.  The requests
 * parked in one role share one wait, a pgq_wait over all their entries on
 * a connection of the waiting pool, in that role (its rights, as their
 * reads have).  When it returns, the requests with an entry it reports
 * ready, and those whose time is up, are woken: api_fetch.c reads them
 * again and answers.  The others stay parked and wait again, together
 * with the requests parked meanwhile.  So any number of parked requests
 * needs no more connections than the waiting pool has, and none of them
 * waits more than a few milliseconds for a wait to take it.
 *
 * A request parked while a connection of the pool is free gets a wait of
 * its own there: a few consumers that fetch often never disturb each
 * other's waits.  A wait of one request is its own read, when it has one
 * (LongPollOps.read: pgq_fetch_partitions with a timeout): one statement
 * waits and then reads the records that ended the wait, where a pgq_wait
 * would be followed by a read, so a caught-up consumer's record takes one
 * statement less and one round trip less to reach it.  One parked while
 * every connection holds a wait must not
 * sit out those waits (up to a client's max.wait.ms): unless one of them
 * ends within ROOM_GRACE_MS (as busy consumers' waits do), one is
 * cancelled (pg_cancel: pg_cancel_backend from another connection), and
 * waits again with the new requests' entries added (a cancelled read is
 * parked again, behind them).  A cancel that reaches
 * the server before its statement started is lost, so it is sent again if
 * the wait has not ended CANCEL_RETRY_MS later.  A cancel that arrives
 * after its wait ended can only cancel another wait (the waiting pool runs
 * nothing else: waits, and reads that wait), which then waits again:
 * harmless.
 *
 * A wait that fails otherwise (its connection was lost, a topic was
 * dropped) wakes all its requests: their reads report what happened.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "longpoll.h"
#include "pgbin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

/* how long a cancelled wait may take to end before it is cancelled again */
#define CANCEL_RETRY_MS		50
/* how long unassigned requests wait for a wait to end before one is cancelled */
#define ROOM_GRACE_MS		10

static const char wait_sql[] =
"SELECT entry FROM pgq_wait($1::text[], $2::int4[], $3::int8[], $4)";

typedef struct Parked
{
	struct Parked *next;		/* in its wait's list, or the unassigned one */
	void	   *arg;
	int			nentries;
	int64_t		deadline_ms;
	char	   *role;			/* NULL: the gateway's own */
	const LongPollOps *ops;
	int			first;			/* its first entry's index in its wait */
} Parked;

typedef struct Wait
{
	struct Wait *next;			/* the running waits */
	char	   *role;
	Parked	   *parked;			/* the requests it waits for, in order */
	bool		cancelling;
	struct event *retry;		/* sends the cancel again */
} Wait;

static Parked *unassigned;		/* parked, in no wait yet: oldest first */
static Wait *waits;
static int	nwaits;

static void longpoll_kick(void);
static void wait_retry_cb(evutil_socket_t fd, short what, void *arg);

int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends p to the list whose last next pointer is *tail; returns p's. */
static Parked **
append(Parked **tail, Parked *p)
{
	p->next = NULL;
	*tail = p;
	return &p->next;
}

/*
 * Ends p's parking: frees it and calls its woken, or with a result (its
 * read's), its answered.
 */
static void
parked_end(Parked *p, PGresult *res, const char *sqlstate)
{
	PgRoleContext prev = pg_enter_role(p->role);

	if (res != NULL || sqlstate != NULL)
		p->ops->answered(p->arg, res, sqlstate);
	else
		p->ops->woken(p->arg);
	pg_leave_role(prev);
	free(p->role);
	free(p);
}

static void
parked_wake(Parked *p)
{
	parked_end(p, NULL, NULL);
}

/* Appends a list of parked requests to the unassigned ones. */
static void
unassigned_append(Parked *list)
{
	Parked	  **tail;

	for (tail = &unassigned; *tail; tail = &(*tail)->next)
		;
	*tail = list;
}

static bool
is_cancel(const char *sqlstate)
{
	return sqlstate != NULL && strcmp(sqlstate, "57014") == 0;
}

static void
wait_free(Wait *w)
{
	Wait	  **pw;

	for (pw = &waits; *pw; pw = &(*pw)->next)
		if (*pw == w)
		{
			*pw = w->next;
			nwaits--;
			break;
		}
	if (w->retry)
		event_free(w->retry);
	free(w->role);
	free(w);
}

/*
 * The wait ended: wake its requests that have a ready entry or no time
 * left (all of them if it failed), and park the others again.
 */
static void
wait_done(PGresult *res, const char *sqlstate, void *arg)
{
	Wait	   *w = arg;
	Parked	   *parked = w->parked;
	Parked	   *p;
	Parked	   *again = NULL;
	Parked	  **again_tail = &again;
	bool		cancelled = is_cancel(sqlstate);
	bool		failed = !cancelled && (res == NULL || sqlstate != NULL ||
									   PQresultStatus(res) != PGRES_TUPLES_OK);
	int64_t		now = monotonic_ms();
	bool	   *ready = NULL;
	int			n = 0;
	int			i;

	wait_free(w);
	for (p = parked; p; p = p->next)
		n += p->nentries;
	if (!failed && !cancelled && (ready = calloc(n > 0 ? n : 1, sizeof(bool))) == NULL)
		failed = true;			/* out of memory: all read again */
	for (i = 0; ready && i < PQntuples(res); i++)
	{
		/* entry is 1-based, in the order the entries were given */
		int32_t		entry = pgr_int4(res, i, 0, 0) - 1;

		if (entry >= 0 && entry < n)
			ready[entry] = true;
	}
	p = parked;
	while (p)
	{
		Parked	   *next = p->next;
		bool		wake = failed || p->deadline_ms - now <= 1;

		for (i = p->first; !wake && ready && i < p->first + p->nentries; i++)
			wake = ready[i];
		if (wake)
			parked_wake(p);
		else
			again_tail = append(again_tail, p);
		p = next;
	}
	free(ready);

	/*
	 * Behind the requests that were waiting for room: when this wait was
	 * cancelled to make room for another role's, that role gets the
	 * connection it freed.
	 */
	unassigned_append(again);
	longpoll_kick();
}

/*
 * A request's own read ended: its result is the request's answer, unless
 * it was cancelled to make room (then the request is parked again, behind
 * those it made room for, and reads again if its time is up).
 */
static void
read_done(PGresult *res, const char *sqlstate, void *arg)
{
	Wait	   *w = arg;
	Parked	   *p = w->parked;

	wait_free(w);
	if (!is_cancel(sqlstate))
		parked_end(p, res, sqlstate);
	else if (p->deadline_ms - monotonic_ms() <= 1)
		parked_wake(p);
	else
		unassigned_append(p);	/* its next is NULL: it was alone */
	longpoll_kick();
}

/* Starts a wait in role for every unassigned request parked in it. */
static void
wait_start(const char *role)
{
	Wait	   *w = calloc(1, sizeof(Wait));
	Parked	  **pp = &unassigned;
	Parked	  **tail;
	Parked	   *p;
	int32_t		timeout_ms;
	PgParams	params;
	KWriter    *topics,
			   *partitions,
			   *offsets;
	int64_t		now = monotonic_ms();
	int64_t		first_deadline = INT64_MAX;
	int			n = 0;
	PgRoleContext prev;
	bool		ok;

	if (w == NULL || (role != NULL && (w->role = strdup(role)) == NULL))
	{
		free(w);
		w = NULL;
	}

	/* take the role's requests out of the unassigned list, in order */
	tail = w ? &w->parked : NULL;
	while ((p = *pp) != NULL)
	{
		if (!pg_same_role(p->role, role))
		{
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (w == NULL)
		{
			/* out of memory: they read again, and answer what they find */
			parked_wake(p);
			continue;
		}
		p->first = n;
		n += p->nentries;
		if (p->deadline_ms < first_deadline)
			first_deadline = p->deadline_ms;
		tail = append(tail, p);
	}
	if (w == NULL)
		return;

	w->next = waits;
	waits = w;
	nwaits++;
	timeout_ms = (int32_t) (first_deadline - now > 1 ? first_deadline - now : 1);

	p = w->parked;
	if (p != NULL && p->next == NULL && p->ops->read != NULL)
	{
		/* one request: its own read waits */
		prev = pg_enter_role(role);
		ok = p->ops->read(p->arg, POOL_WAIT, timeout_ms, read_done, w);
		pg_leave_role(prev);
		if (!ok)
		{
			/* out of memory: it reads again at once */
			wait_free(w);
			parked_wake(p);
		}
		return;
	}

	pgp_init(&params);
	topics = pgp_array(&params, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, n);
	partitions = pgp_array(&params, PGB_INT4_ARRAY_OID, PGB_INT4_OID, n);
	offsets = pgp_array(&params, PGB_INT8_ARRAY_OID, PGB_INT8_OID, n);
	for (p = w->parked; p && topics && partitions && offsets; p = p->next)
		p->ops->entries(p->arg, topics, partitions, offsets);
	pgp_int4(&params, timeout_ms);
	prev = pg_enter_role(role);
	ok = pgp_submit(&params, POOL_WAIT, wait_sql, true, wait_done, w);
	pg_leave_role(prev);
	if (!ok)
	{
		/* too many entries for one statement: they read again instead */
		gw_log("could not park %d partitions in one wait", n);
		wait_done(NULL, NULL, w);
	}
}

static void
wait_cancel(Wait *w)
{
	struct timeval delay = {0, CANCEL_RETRY_MS * 1000};

	w->cancelling = true;
	(void) pg_cancel(POOL_WAIT, w);
	if (w->retry == NULL)
		w->retry = evtimer_new(gw_base, wait_retry_cb, w);
	if (w->retry)
		evtimer_add(w->retry, &delay);
}

static void
wait_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	wait_cancel(arg);
}

/*
 * Every connection holds a wait and requests are unassigned: cancel one
 * wait, which then waits again with them too (one of their role if there
 * is one).  If one is being cancelled already, that is the room coming.
 */
static void
make_room(evutil_socket_t fd, short what, void *arg)
{
	Wait	   *w;
	Wait	   *victim = NULL;

	if (unassigned == NULL || nwaits < gw_config.pool_size)
		return;
	for (w = waits; w; w = w->next)
	{
		if (w->cancelling)
			return;
		if (victim == NULL || (!pg_same_role(victim->role, unassigned->role) &&
							   pg_same_role(w->role, unassigned->role)))
			victim = w;
	}
	if (victim)
		wait_cancel(victim);
}

/*
 * Gives every unassigned request a wait, or makes room for one after
 * ROOM_GRACE_MS: busy consumers' waits end every few milliseconds with a
 * record, and the next wait takes the unassigned requests along, with no
 * cancel; only waits that stay parked are cancelled.
 */
static void
longpoll_kick(void)
{
	static struct event *room;
	struct timeval grace = {0, ROOM_GRACE_MS * 1000};

	while (unassigned != NULL && nwaits < gw_config.pool_size)
		wait_start(unassigned->role);
	if (unassigned == NULL)
		return;
	if (room == NULL)
		room = evtimer_new(gw_base, make_room, NULL);
	if (room == NULL)
		make_room(-1, 0, NULL);
	else if (!evtimer_pending(room, NULL))
		evtimer_add(room, &grace);
}

void
longpoll_park(void *arg, int nentries, int64_t deadline_ms, const LongPollOps *ops)
{
	Parked	   *p = calloc(1, sizeof(Parked));
	const char *role = pg_current_role();

	if (p == NULL || (role != NULL && (p->role = strdup(role)) == NULL))
	{
		free(p);
		ops->woken(arg);		/* out of memory: it reads again at once */
		return;
	}
	p->arg = arg;
	p->nentries = nentries;
	p->deadline_ms = deadline_ms;
	p->ops = ops;
	unassigned_append(p);
	longpoll_kick();
}
