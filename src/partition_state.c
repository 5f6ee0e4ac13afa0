/*-------------------------------------------------------------------------
 *
 * partition_state.c
 *	  Partition state in shared memory.
 *
 * A fixed-size shared hash table (pgqueue.max_partitions entries) maps
 * (database, topic, partition) to a PgqPartitionState: the offset counter
 * (high watermark), the segment new records go to, the append lock, and a
 * hint of how far the log is known to be settled.  The entries are a cache
 * of what the catalog and the segment tables say: an entry is loaded from
 * them the first time the partition is appended to after a restart, so the
 * counter never goes below an offset that is in a segment (see
 * partition_ensure_loaded).
 *
 * Locking: PgqShared->lock protects the hash table's structure (shared to
 * look up, exclusive to insert, remove or reinitialise).  The fields of an
 * entry are protected as partition_state.h says.  Entries are removed only by
 * partition_state_forget, called when the dropping transaction commits (or
 * the creating one aborts) while it still holds AccessExclusiveLock on the
 * segment tables, so an entry cannot vanish under a backend that holds a
 * lock on one of its segments.
 *
 * Incarnations.  The key (database, topic_id, partition) does not identify
 * a partition for ever: DROP EXTENSION removes every topic without
 * pgq_drop_topic, and a later CREATE EXTENSION restarts topic_id_seq, so a
 * new topic gets the key of a dead one.  The install script forgets the
 * entries of its database (pgq_forget_shared_state), but only on the server
 * that runs it: a hot standby replays the catalog changes and keeps its
 * entries, stable hints included, also once promoted.  So every entry
 * carries an incarnation, the OID of its partition's offset floor sequence,
 * which every server reads from the catalog (PgqPartitionInfo.offset_floor)
 * and which no other partition has while this one exists (a new relation
 * gets the OID of a dropped one only after the OID counter wraps around).
 *
 * The invariant: an entry serves only a caller whose catalog shows the
 * entry's incarnation.  partition_state_lookup and partition_state_peek take
 * the incarnation the caller read; an entry with another one counts as
 * absent, and a lookup that may create reinitialises it (not loaded, not
 * rolling, stable hint 0) with PgqShared->lock held exclusively.  Nobody can
 * be using the earlier incarnation's entry then: that would need a lock on
 * one of its segment tables, and the table no longer exists.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "miscadmin.h"
#include "common/hashfn.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "utils/wait_event.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"

#include "partition_state.h"
#include "segment.h"

/*
 * Readers waiting for records (long polls) sleep on a condition variable
 * chosen by hashing (database, topic); a sending transaction broadcasts on
 * its topics' variables when it ends.  The variables are a fixed array, never
 * freed, so a waiter needs no lock to stay safe while a topic is dropped;
 * topics sharing a variable only cause spurious wake-ups, after which the
 * waiter checks again.
 */
#define PGQ_WAKEUP_SLOTS	1024

typedef struct PgqShared
{
	LWLock	   *lock;			/* protects the structure of the hash table */
	int			append_tranche; /* tranche of the entries' append locks */
	pg_atomic_uint64 catalog_generation;	/* bumped by every committed change
											 * to topic metadata */
	ConditionVariable wakeup[PGQ_WAKEUP_SLOTS]; /* see above; no lock */
	ConditionVariable wakeup_any;	/* for readers of several topics (wait.c) */
} PgqShared;

static PgqShared *pgq_shared = NULL;
static HTAB *pgq_partitions = NULL;

Size
partition_state_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(PgqShared)),
					hash_estimate_size(pgq_max_partitions, sizeof(PgqPartitionState)));
}

/* Called from the shmem startup hook, holding AddinShmemInitLock. */
void
partition_state_shmem_startup(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	pgq_shared = ShmemInitStruct("pgqueue", sizeof(PgqShared), &found);
	if (!found)
	{
		pgq_shared->lock = lock;
		pgq_shared->append_tranche = LWLockNewTrancheId();
		pg_atomic_init_u64(&pgq_shared->catalog_generation, 1);
		for (int i = 0; i < PGQ_WAKEUP_SLOTS; i++)
			ConditionVariableInit(&pgq_shared->wakeup[i]);
		ConditionVariableInit(&pgq_shared->wakeup_any);
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(PgqPartitionKey);
	info.entrysize = sizeof(PgqPartitionState);
	pgq_partitions = ShmemInitHash("pgqueue partitions",
								   pgq_max_partitions, pgq_max_partitions,
								   &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);

	LWLockRegisterTranche(pgq_shared->append_tranche, "pgqueue_append");
}

/*
 * Makes an entry an empty (not loaded) one of the given incarnation: a new
 * entry, or one left by an earlier incarnation of its key.  The caller holds
 * PgqShared->lock exclusively, so no other backend looks the entry up
 * meanwhile, and nobody uses an earlier incarnation's entry (see the file
 * header); the append lock and the mutex are taken all the same, for the
 * fields they protect.  The incarnation is set last, after a barrier, for
 * partition_state_peek, which reads it without a lock.
 */
static void
partition_state_reset(PgqPartitionState *state, Oid incarnation)
{
	LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
	state->loaded = false;
	state->rolling = false;
	state->active_relid = InvalidOid;
	pg_atomic_write_u64(&state->next_offset, 0);
	state->floor = 0;
	SpinLockAcquire(&state->mutex);
	state->stable_hint = 0;
	state->counted_from = 0;
	state->counted_below = 0;
	state->counted_records = 0;
	SpinLockRelease(&state->mutex);
	pg_write_barrier();
	state->incarnation = incarnation;
	LWLockRelease(&state->append_lock);
}

/*
 * Returns the shared state of a partition of a topic of the current database,
 * creating an empty (not loaded) entry if create is true.  incarnation is the
 * partition's offset floor sequence, as the caller's catalog says
 * (PgqPartitionInfo.offset_floor): an entry of another incarnation counts as
 * absent, and is reinitialised if create is true.  Returns NULL if there is
 * no entry and create is false.  The caller must hold a lock on one of the
 * partition's segment tables, and know that the table still exists, while it
 * uses the result.
 */
PgqPartitionState *
partition_state_lookup(int32 topic_id, int32 partition, Oid incarnation, bool create)
{
	PgqPartitionKey key;
	PgqPartitionState *state;
	bool		found;

	Assert(OidIsValid(incarnation));
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.topic_id = topic_id;
	key.partition = partition;

	LWLockAcquire(pgq_shared->lock, LW_SHARED);
	state = hash_search(pgq_partitions, &key, HASH_FIND, NULL);
	if (state != NULL && state->incarnation != incarnation)
		state = NULL;			/* an earlier incarnation's */
	LWLockRelease(pgq_shared->lock);
	if (state != NULL || !create)
		return state;

	LWLockAcquire(pgq_shared->lock, LW_EXCLUSIVE);
	state = hash_search(pgq_partitions, &key, HASH_ENTER_NULL, &found);
	if (state == NULL)
	{
		LWLockRelease(pgq_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of pgqueue partition slots"),
				 errdetail("Shared memory holds the state of at most %d partitions.",
						   pgq_max_partitions),
				 errhint("Increase pgqueue.max_partitions and restart the server.")));
	}
	if (!found)
	{
		LWLockInitialize(&state->append_lock, pgq_shared->append_tranche);
		pg_atomic_init_u64(&state->next_offset, 0);
		SpinLockInit(&state->mutex);
		state->incarnation = InvalidOid;
	}
	if (state->incarnation != incarnation)
		partition_state_reset(state, incarnation);
	LWLockRelease(pgq_shared->lock);
	return state;
}

/*
 * The shared state of a partition for a look that tolerates a stale answer
 * (partition_scan's first check), without the lock: the entry kept in *hint
 * if it still has this partition's key and incarnation, else the one looked
 * up (then kept; NULL if there is none of this incarnation).
 * The table's entries are allocated once (HASH_FIXED_SIZE) and removed only
 * when their topic is dropped or the creation of the topic or partition is
 * rolled back, so a kept pointer always points into the table; at worst at
 * an entry reused for another partition (its key and incarnation tell), or
 * at this partition's removed entry, for a partition that no longer exists.
 * *hint lives in the backend's topic cache (PgqPartitionInfo), which is
 * reloaded after any topic is dropped or changed.
 */
PgqPartitionState *
partition_state_peek(int32 topic_id, int32 partition, Oid incarnation,
					 PgqPartitionState **hint)
{
	PgqPartitionState *state = *hint;

	if (state != NULL && state->incarnation == incarnation &&
		state->key.dbid == MyDatabaseId &&
		state->key.topic_id == topic_id && state->key.partition == partition)
	{
		pg_read_barrier();		/* the fields were reset before incarnation
								 * was set (partition_state_reset) */
		return state;
	}
	state = partition_state_lookup(topic_id, partition, incarnation, false);
	*hint = state;
	return state;
}

/*
 * Removes the entries of partitions >= from_partition of a topic.  Called at
 * the commit of a transaction that dropped the topic, or at the abort of one
 * that created the topic or added the partitions.
 */
void
partition_state_forget(Oid dbid, int32 topic_id, int32 from_partition)
{
	HASH_SEQ_STATUS seq;
	PgqPartitionState *state;

	LWLockAcquire(pgq_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, pgq_partitions);
	while ((state = hash_seq_search(&seq)) != NULL)
	{
		if (state->key.dbid == dbid &&
			(topic_id == 0 || state->key.topic_id == topic_id) &&
			state->key.partition >= from_partition)
			hash_search(pgq_partitions, &state->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(pgq_shared->lock);
}

/* The condition variable that readers of a topic wait on. */
ConditionVariable *
topic_wakeup_cv(int32 topic_id)
{
	uint32		h = hash_combine(murmurhash32((uint32) MyDatabaseId),
								 murmurhash32((uint32) topic_id));

	return &pgq_shared->wakeup[h % PGQ_WAKEUP_SLOTS];
}

/*
 * The condition variable that readers waiting for several topics at once
 * sleep on (a process sleeps on one condition variable at a time): a sending
 * transaction broadcasts on it too, when it has sleepers (see wait.c).
 */
ConditionVariable *
topics_wakeup_any_cv(void)
{
	return &pgq_shared->wakeup_any;
}

/*
 * The catalog generation lets backends cache catalog data (topic metadata,
 * group configs): a cache entry loaded at generation g is valid while the
 * generation is still g.  The shared counter is bumped after a transaction
 * that changed the catalog has committed; a backend's own changes bump its
 * local counter at once, so that it does not use what it cached before them
 * (the sum only ever grows, which is all a cache needs).
 */
static uint64 catalog_local_changes = 0;

uint64
pgq_catalog_generation(void)
{
	return pg_atomic_read_u64(&pgq_shared->catalog_generation) + catalog_local_changes;
}

void
pgq_catalog_generation_bump(void)
{
	pg_atomic_fetch_add_u64(&pgq_shared->catalog_generation, 1);
}

/* Forgets everything this backend cached from the catalog. */
void
pgq_catalog_invalidate_local(void)
{
	catalog_local_changes++;
}

int64
partition_state_get_stable_hint(PgqPartitionState *state)
{
	int64		hint;

	SpinLockAcquire(&state->mutex);
	hint = state->stable_hint;
	SpinLockRelease(&state->mutex);
	return hint;
}

/* Records that every offset below 'offset' is settled (committed or dead). */
void
partition_state_advance_stable_hint(PgqPartitionState *state, int64 offset)
{
	SpinLockAcquire(&state->mutex);
	if (offset > state->stable_hint)
		state->stable_hint = offset;
	SpinLockRelease(&state->mutex);
}

/*
 * The records counted so far from a log start (pgq_partitions): returns the
 * offset the count reached (from itself if nothing was counted from there)
 * and sets *records.  Offsets below it are settled, so the count never
 * changes; only a new log start (retention) starts it again.
 */
int64
partition_state_get_count(PgqPartitionState *state, int64 from, int64 *records)
{
	int64		below = from;

	*records = 0;
	SpinLockAcquire(&state->mutex);
	if (state->counted_from == from && state->counted_below > from)
	{
		below = state->counted_below;
		*records = state->counted_records;
	}
	SpinLockRelease(&state->mutex);
	return below;
}

/* Remembers a count of the records in [from, below), if it goes further. */
void
partition_state_set_count(PgqPartitionState *state, int64 from, int64 below, int64 records)
{
	SpinLockAcquire(&state->mutex);
	if (state->counted_from != from || below > state->counted_below)
	{
		state->counted_from = from;
		state->counted_below = below;
		state->counted_records = records;
	}
	SpinLockRelease(&state->mutex);
}

/*
 * Waits until the worker has finished rolling the partition over to a new
 * segment (retention.c).  The roll broadcasts on the topic's wake-up
 * condition variable when it is done.
 */
void
partition_wait_roll(int32 topic_id, PgqPartitionState *state)
{
	ConditionVariable *cv = topic_wakeup_cv(topic_id);

	ConditionVariablePrepareToSleep(cv);
	for (;;)
	{
		bool		rolling;

		LWLockAcquire(&state->append_lock, LW_SHARED);
		rolling = state->rolling;
		LWLockRelease(&state->append_lock);
		if (!rolling)
			break;
		ConditionVariableSleep(cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Clears the rolling flag of every partition of the current database: called
 * when its worker starts, since a worker that died in the middle of a roll
 * leaves it set.  Other databases' partitions are rolled by their own
 * workers, which may be in the middle of a roll right now.  The
 * entries are marked not loaded, so the next sender reads the partition's
 * newest segment from the catalog again, whether the roll committed or not.
 */
void
partition_state_reset_rolling(void)
{
	HASH_SEQ_STATUS seq;
	PgqPartitionState *state;
	int			i;

	LWLockAcquire(pgq_shared->lock, LW_SHARED);
	hash_seq_init(&seq, pgq_partitions);
	while ((state = hash_seq_search(&seq)) != NULL)
	{
		if (state->key.dbid != MyDatabaseId)
			continue;
		LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
		if (state->rolling)
		{
			state->rolling = false;
			state->loaded = false;
		}
		LWLockRelease(&state->append_lock);
	}
	LWLockRelease(pgq_shared->lock);
	for (i = 0; i < PGQ_WAKEUP_SLOTS; i++)
		ConditionVariableBroadcast(&pgq_shared->wakeup[i]);
}

/*
 * Loads a partition's shared state after a restart (or its first use):
 * the next offset is above every offset in the partition's newest segment,
 * whatever the state of the transaction that inserted it, and never below
 * the segment's base offset, the log start offset or the offset floor.  Computed without the
 * append lock and installed under it only if nobody did meanwhile; nobody
 * can have appended in between, since appending needs a loaded entry.
 */
void
partition_ensure_loaded(PgqTopic *topic, int32 partition, PgqPartitionState *state)
{
	PgqPartitionInfo *info;
	PgqSegment *newest;
	int64		next;
	int64		floor;

	if (state->loaded)			/* set once, under the lock; a stale false is
								 * rechecked below */
	{
		pg_read_barrier();		/* see next_offset as it was when loaded was set */
		return;
	}

	info = topic_partition_info(topic, partition);
	newest = &info->segments[info->nsegments - 1];
	floor = offset_floor_read(info->offset_floor);
	next = Max(newest->base_offset, segment_max_offset(newest->relid) + 1);
	next = Max(next, info->log_start_offset);
	next = Max(next, floor);

	LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
	if (!state->loaded)
	{
		pg_atomic_write_u64(&state->next_offset, (uint64) next);
		state->floor = floor;
		state->active_relid = newest->relid;
		pg_write_barrier();		/* loaded is tested without the lock */
		state->loaded = true;
	}
	LWLockRelease(&state->append_lock);
}
