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

#include "kbuf.h"

#include <stdint.h>

/* Appends a parked request's entries to pgq_wait's three array parameters. */
typedef void (*LongPollEntries) (void *arg, KWriter *topics, KWriter *partitions,
								 KWriter *offsets);

/* Ends a request's parking: the caller reads its partitions again. */
typedef void (*LongPollWoken) (void *arg);

/*
 * Parks a request of nentries (topic, partition, offset) entries until
 * one of them is ready (a read there would answer), its deadline (on
 * monotonic_ms's clock) passes, or its wait fails; then woken(arg) is
 * called once, from the loop, in the role the request was parked in.
 */
extern void longpoll_park(void *arg, int nentries, int64_t deadline_ms,
						  LongPollEntries entries, LongPollWoken woken);

/* Milliseconds of CLOCK_MONOTONIC. */
extern int64_t monotonic_ms(void);

#endif							/* PGQK_LONGPOLL_H */
