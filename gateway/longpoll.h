/*-------------------------------------------------------------------------
 *
 * longpoll.h
 *	  Parked Fetch requests, woken when a commit makes one of their
 *	  partitions readable (longpoll.c), for api_fetch.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_LONGPOLL_H
#define PGQK_LONGPOLL_H

#include "gateway.h"
#include "kbuf.h"

#include <stdint.h>

/* What longpoll.c does with a parked request (arg is the request's). */
typedef struct LongPollOps
{
	/* Appends the request's entries to pgq_wait's three array parameters. */
	void		(*entries) (void *arg, KWriter *topics, KWriter *partitions,
							KWriter *offsets);
	/* Ends the request's parking: the caller reads its partitions again. */
	void		(*woken) (void *arg);

	/*
	 * Optional (NULL: the request has only shared waits): submits the
	 * request's own read on pool, one statement that waits up to
	 * timeout_ms for one of its entries to be ready and then reads them
	 * (pgq_fetch_partitions with timeout_ms), with done(res, sqlstate,
	 * done_arg) as its callback; false if it could not be submitted.
	 * answered then gets its result, the request's answer.
	 */
	bool		(*read) (void *arg, PgPoolKind pool, int32_t timeout_ms, PgCallback done,
						 void *done_arg);
	void		(*answered) (void *arg, PGresult *res, const char *sqlstate);
} LongPollOps;

/*
 * Parks a request of nentries (topic, partition, offset) entries until
 * one of them is ready (a read there would answer), its deadline (on
 * monotonic_ms's clock) passes, or its wait fails; then, once, from the
 * loop and in the role the request was parked in, either woken is called,
 * or, if the request had a read of its own that waited, answered.
 */
extern void longpoll_park(void *arg, int nentries, int64_t deadline_ms,
						  const LongPollOps *ops);

/* Milliseconds of CLOCK_MONOTONIC. */
extern int64_t monotonic_ms(void);

#endif							/* PGQK_LONGPOLL_H */
