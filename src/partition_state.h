/*-------------------------------------------------------------------------
 *
 * partition_state.h
 *	  The shared-memory state of a partition, the catalog generation and
 *	  the readers' wake-up condition variables (partition_state.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_PARTITION_STATE_H
#define PGQ_PARTITION_STATE_H

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

/*
 * An entry exists for every partition that has been appended to (or read
 * through the partitions view) since the server started; it is removed only
 * when its topic is dropped, or its creating transaction aborts, or when
 * the extension is created again in its database.  While a backend uses an
 * entry it must hold a lock on one of the partition's segment tables, which
 * keeps a concurrent drop from removing the entry.  An entry serves only the
 * partition whose offset floor sequence is its incarnation; met by another
 * with the same key, it counts as absent (partition_state.c).
 */
typedef struct PgqPartitionKey
{
	Oid			dbid;
	int32		topic_id;
	int32		partition;
} PgqPartitionKey;

typedef struct PgqPartitionState
{
	PgqPartitionKey key;		/* hash key; immutable */

	/*
	 * The OID of the partition's offset floor sequence (pgqueue.partition):
	 * which partition with this key the entry describes, since a key is
	 * reused after DROP and CREATE EXTENSION.  Written with PgqShared's lock
	 * held exclusively (and the append lock), after the fields below were
	 * reset; read under PgqShared's lock, or without it by
	 * partition_state_peek.
	 */
	Oid			incarnation;

	/*
	 * Held across offset assignment and the insert of the record, so that
	 * offsets enter the index (and the WAL) in order.  Protects loaded,
	 * rolling, active_relid, floor and the writing of next_offset.
	 */
	LWLock		append_lock;
	bool		loaded;			/* next_offset and active_relid are valid;
								 * once set, may be tested without the lock */
	bool		rolling;		/* the worker is switching to a new segment */
	Oid			active_relid;	/* the segment new records go to */
	pg_atomic_uint64 next_offset;	/* the high watermark; read without lock */
	int64		floor;			/* every offset assigned is below it, durably */

	slock_t		mutex;			/* protects stable_hint and the count */
	int64		stable_hint;	/* every offset below it is settled */
	/* the records in [counted_from, counted_below), all settled offsets */
	int64		counted_from;
	int64		counted_below;
	int64		counted_records;
} PgqPartitionState;

struct PgqTopic;					/* topic.h */

extern Size partition_state_shmem_size(void);
extern void partition_state_shmem_startup(LWLock *lock);
extern PgqPartitionState *partition_state_lookup(int32 topic_id, int32 partition,
												 Oid incarnation, bool create);
extern PgqPartitionState *partition_state_peek(int32 topic_id, int32 partition,
											   Oid incarnation, PgqPartitionState **hint);
extern void partition_ensure_loaded(struct PgqTopic *topic, int32 partition,
									PgqPartitionState *state);
extern void partition_state_forget(Oid dbid, int32 topic_id, int32 from_partition);
extern int64 partition_state_get_stable_hint(PgqPartitionState *state);
extern void partition_state_advance_stable_hint(PgqPartitionState *state, int64 offset);
extern int64 partition_state_get_count(PgqPartitionState *state, int64 from, int64 *records);
extern void partition_state_set_count(PgqPartitionState *state, int64 from, int64 below,
									  int64 records);
extern void partition_wait_roll(int32 topic_id, PgqPartitionState *state);
extern void partition_state_reset_rolling(void);
extern ConditionVariable *topic_wakeup_cv(int32 topic_id);
extern ConditionVariable *topics_wakeup_any_cv(void);
extern uint64 pgq_catalog_generation(void);
extern void pgq_catalog_generation_bump(void);
extern void pgq_catalog_invalidate_local(void);

#endif							/* PGQ_PARTITION_STATE_H */
