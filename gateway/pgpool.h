/*-------------------------------------------------------------------------
 *
 * pgpool.h
 *	  Starting and stopping the pools of pgpool.c, for main.c (pg_submit is
 *	  in gateway.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_PGPOOL_H
#define PGQK_PGPOOL_H

#include <stdbool.h>

/* Opens gw_config.pool_size connections per pool kind; false on bad conninfo. */
extern bool pool_start(void);

/*
 * Closes every connection; the statements running or queued get their
 * callbacks with res NULL.
 */
extern void pool_stop(void);

#endif							/* PGQK_PGPOOL_H */
