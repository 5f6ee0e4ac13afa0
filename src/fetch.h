/*-------------------------------------------------------------------------
 *
 * fetch.h
 *	  Reading a partition up to its last stable offset (fetch.c), and
 *	  waiting for records to read (wait.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_FETCH_H
#define PGQ_FETCH_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "nodes/execnodes.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"
#include "topic.h"

/* fetch.c */
typedef bool (*PgqRecordCallback) (void *arg, int64 offset, HeapTuple tuple,
								   TupleDesc desc);
extern int64 partition_scan(PgqTopic *topic, int32 partition, int64 from_offset,
							int64 max_records, Snapshot snapshot,
							PgqRecordCallback callback, void *arg,
							bool *stopped_pending, bool *gone);
extern void records_result_init(FunctionCallInfo fcinfo);
extern int64 partition_read(PgqTopic *topic, int32 partition, int64 from_offset,
							int64 max_records, ReturnSetInfo *rsinfo, int64 *next_offset,
							bool *gone);
extern void served_records_flush(void);
extern void check_read_limits(int32 max_records, int32 timeout_ms);
extern void check_offset_in_range(PgqTopic *topic, int32 partition, int64 offset);
extern void check_offset_not_past_end(PgqTopic *topic, int32 partition, int64 offset);
extern int64 partition_last_stable_offset(PgqTopic *topic, int32 partition, int64 *hwm);
extern int64 partition_offset_for_time(PgqTopic *topic, int32 partition, TimestampTz target);

/*
 * One (topic, partition, offset) of a call that reads or waits for many
 * partitions (pgq_fetch_partitions, pgq_wait).
 */
typedef struct PgqReadEntry
{
	text	   *topic_name;
	PgqTopic   *topic;			/* NULL: no such topic */
	int32		partition;
	int64		offset;
} PgqReadEntry;

extern int	read_entries_get(FunctionCallInfo fcinfo, int argno, PgqReadEntry **entries);
extern void read_entries_lookup(PgqReadEntry *entries, int n);
extern bool read_entry_ready(PgqReadEntry *e);
extern int	read_entries_wait(PgqReadEntry *entries, int n, int32 timeout_ms, bool *ready);

/*
 * wait.c: long polling.  A reader runs a read step until it returns records
 * or the timeout passes, sleeping between tries until a send to the topic
 * ends.
 */
typedef int64 (*PgqReadStep) (void *arg);
extern void wait_for_records(PgqTopic *topic, int32 timeout_ms, PgqReadStep step,
							 void *arg);
extern void send_wakeup_register(int32 topic_id);
extern void wait_register_xact_callback(void);

#endif							/* PGQ_FETCH_H */
