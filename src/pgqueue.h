/*-------------------------------------------------------------------------
 *
 * pgqueue.h
 *	  Declarations shared by every pgqueue source file.  Each module has a
 *	  header of its own (topic.h, partition_state.h, fetch.h, ...).
 *
 * Vocabulary, used the same way in every file:
 *
 *	topic		a named, configured log, split into partitions 0..n-1.
 *	partition	an ordered, append-only sub-log of a topic.
 *	segment		one heap table holding a contiguous range of one
 *				partition's offsets (pgqueue.t<topic>_p<partition>_s<n>).  A
 *				partition's log is its segments in base_offset order; retention
 *				drops whole segments instead of deleting rows.
 *	record		one row of a segment: offset, timestamp, key, value, headers.
 *	offset		msg_offset, assigned from a per-partition counter in shared
 *				memory; strictly increasing within a partition.
 *	high watermark	the next offset to be assigned.
 *	pending		a record whose inserting transaction has not ended (as seen
 *				by the reader's snapshot), or is the reader's own.
 *	last stable offset (LSO)	the offset of the first pending record, or the
 *				high watermark if none: readers never go past it.
 *
 * The ordering guarantee rests on one invariant, kept by send.c: a
 * partition's offset is assigned and its record inserted (heap and index,
 * hence WAL) while holding the partition's append lock.  So within a
 * partition, index entries and WAL records appear in offset order, and a
 * reader that stops at the first pending record can never later see a lower
 * offset appear (see fetch.c for the argument).  It holds on a hot standby
 * too, because the standby replays the WAL in that order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQUEUE_H
#define PGQUEUE_H

#include "postgres.h"

#include "fmgr.h"

#define PGQ_SCHEMA				"pgqueue"

/*
 * The extension version this library implements (the Makefile's
 * EXTVERSION): it works only with the SQL objects of that version
 * (catalog_check_layout).
 */
#ifndef PGQ_EXTVERSION
#error "PGQ_EXTVERSION must be defined (see the Makefile)"
#endif

/* pgqueue.c: set-up, and what every SQL function uses */
extern int	pgq_max_partitions;
extern Datum pgq_require_arg(FunctionCallInfo fcinfo, int argno, const char *argname);

#endif							/* PGQUEUE_H */
