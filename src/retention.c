/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  Rolling partitions over to new segments and dropping old segments,
 *	  run by the background worker (worker.c).
 *
 * A partition's newest segment is its active one: records are appended to
 * it.  The worker rolls a partition over to a new, empty segment when the
 * active one is older than segment.ms (or retention.ms, if shorter) or
 * larger than segment.bytes (or retention.bytes, if smaller), and is not
 * empty.  It drops the oldest segments, never the active one, once they
 * closed more than retention.ms ago, or while the partition without them
 * would still be at least retention.bytes large (Kafka's rules, whole
 * segments at a time).  Dropping a segment advances the partition's
 * log_start_offset to the next segment's base offset.  Storage is reclaimed
 * by DROP TABLE, so it never depends on VACUUM.
 *
 * Rolling must keep offsets in segment order.  Under the partition's append
 * lock the worker marks the partition "rolling" and takes the next offset as
 * the new segment's base; senders that come meanwhile wait
 * (partition_wait_roll).  The new segment's catalog row then commits, and
 * only after that does the worker make it the active segment and let the
 * senders go.  Every way out of a roll clears the flag: an error before the
 * commit goes on with the old segment, and nothing after the commit can
 * fail.  A crash anywhere leaves the catalog right: either the new segment
 * committed (empty, base = the next offset) or it did not exist.  A worker
 * killed in the middle of a roll leaves the flag set; the restarted worker
 * clears such flags first (partition_state_reset_rolling).
 *
 * Locks are short: a segment is dropped only if ConditionalLockRelationOid
 * gets its AccessExclusiveLock at once (no reader is scanning it and no
 * transaction that wrote to it is open); otherwise it waits for the next
 * round.  Readers that had looked the partition up before the drop look it
 * up again (fetch.c).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "config.h"
#include "segment.h"
#include "worker.h"

typedef struct SegmentRow
{
	int32		topic_id;
	int32		partition;
	int32		segment_no;
	int64		base_offset;
	Oid			relid;
	TimestampTz created_at;
	int64		retention_ms;
	int64		retention_bytes;
	int64		segment_ms;
	int64		segment_bytes;
} SegmentRow;

/* Reads every segment of every topic, in partition and offset order. */
static SegmentRow *
segments_list(int *nrows)
{
	SegmentRow *rows;
	uint64		i;

	SPI_connect();
	catalog_query("SELECT t.topic_id, s.partition, s.segment_no, s.base_offset, s.relid,"
				  "       s.created_at, t.config"
				  "  FROM " PGQ_SCHEMA ".topic t, " PGQ_SCHEMA ".segment s"
				  " WHERE s.topic_id OPERATOR(pg_catalog.=) t.topic_id"
				  " ORDER BY t.topic_id, s.partition, s.base_offset, s.segment_no",
				  0, NULL, NULL, NULL, true);

	rows = MemoryContextAlloc(TopTransactionContext, sizeof(SegmentRow) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Jsonb	   *config;

		rows[i].topic_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		rows[i].partition = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		rows[i].segment_no = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		rows[i].base_offset = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		rows[i].relid = DatumGetObjectId(SPI_getbinval(tup, desc, 5, &isnull));
		rows[i].created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		config = DatumGetJsonbP(SPI_getbinval(tup, desc, 7, &isnull));
		rows[i].retention_ms = config_get_int(&pgq_topic_config, config, "retention.ms");
		rows[i].retention_bytes = config_get_int(&pgq_topic_config, config, "retention.bytes");
		rows[i].segment_ms = config_get_int(&pgq_topic_config, config, "segment.ms");
		rows[i].segment_bytes = config_get_int(&pgq_topic_config, config, "segment.bytes");
	}
	*nrows = SPI_processed;
	SPI_finish();
	return rows;
}

/*
 * Drops one old segment and moves the log start past it, if its lock can be
 * had at once.  Runs in its own transaction; returns false if it did nothing.
 */
static bool
segment_drop_old(SegmentRow *seg, int64 next_base)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, INT8OID};
	Datum		args[3];
	bool		dropped = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (ConditionalLockRelationOid(seg->relid, AccessExclusiveLock) &&
		SearchSysCacheExists1(RELOID, ObjectIdGetDatum(seg->relid)))
	{
		args[0] = Int32GetDatum(seg->topic_id);
		args[1] = Int32GetDatum(seg->partition);
		args[2] = Int64GetDatum(next_base);
		SPI_connect();
		catalog_query("UPDATE " PGQ_SCHEMA ".partition"
					  "   SET log_start_offset = GREATEST(log_start_offset, $3)"
					  " WHERE topic_id OPERATOR(pg_catalog.=) $1"
					  "   AND partition OPERATOR(pg_catalog.=) $2",
					  3, argtypes, args, NULL, false);
		args[0] = ObjectIdGetDatum(seg->relid);
		argtypes[0] = OIDOID;
		catalog_query("DELETE FROM " PGQ_SCHEMA ".segment WHERE relid OPERATOR(pg_catalog.=) $1",
					  1, argtypes, args, NULL, false);
		/* its lock is ours and its table exists: so does its row */
		if (SPI_processed != 1)
			elog(ERROR, "segment %u of partition %d of topic %d has no catalog row",
				 seg->relid, seg->partition, seg->topic_id);
		SPI_finish();
		segment_drop(seg->relid);
		catalog_change_register();
		dropped = true;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return dropped;
}

/* Ends a roll: makes the new segment active and lets the senders go. */
static void
segment_roll_finish(PgqPartitionState *state, int32 topic_id, Oid new_relid)
{
	LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
	if (OidIsValid(new_relid))
		state->active_relid = new_relid;
	state->rolling = false;
	LWLockRelease(&state->append_lock);
	ConditionVariableBroadcast(topic_wakeup_cv(topic_id));
}

/* Rolls a partition over to a new segment (see the file header). */
static void
segment_roll(SegmentRow *active)
{
	Oid			argtypes[5] = {INT4OID, INT4OID, INT4OID, INT8OID, OIDOID};
	Datum		args[5];
	PgqCatalogContext save;
	PgqTopic   *topic;
	PgqPartitionState *state;
	Oid			incarnation;
	Oid			new_relid;
	LockRelId	new_lock;
	int64		base;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	/* the active segment's lock keeps the partition state from going away */
	LockRelationOid(active->relid, AccessShareLock);
	topic = topic_lookup_by_id(active->topic_id);
	if (topic == NULL || segment_max_offset(active->relid) < 0)
	{
		/* dropped meanwhile, or nothing to roll */
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}
	incarnation = topic_partition_info(topic, active->partition)->offset_floor;
	state = partition_state_lookup(active->topic_id, active->partition, incarnation, true);
	partition_ensure_loaded(topic, active->partition, state);

	SPI_connect();
	catalog_owner_switch(&save);
	new_relid = segment_create(active->topic_id, active->partition, active->segment_no + 1, 0);
	catalog_owner_restore(&save);
	new_lock.relId = new_relid;
	new_lock.dbId = MyDatabaseId;

	LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
	if (state->active_relid != active->relid)
	{
		LWLockRelease(&state->append_lock);
		elog(ERROR, "partition %d of topic %d was rolled concurrently",
			 active->partition, active->topic_id);
	}
	state->rolling = true;
	base = (int64) pg_atomic_read_u64(&state->next_offset);
	LWLockRelease(&state->append_lock);

	/*
	 * From here until segment_roll_finish the partition's senders wait, so
	 * every way out must finish the roll.  The new segment's session lock,
	 * taken before the commit and kept after it, keeps the partition's
	 * state in place (a drop of the topic needs AccessExclusiveLock on every
	 * segment) without a second transaction, which could fail in turn.
	 */
	PG_TRY();
	{
		args[0] = Int32GetDatum(active->topic_id);
		args[1] = Int32GetDatum(active->partition);
		args[2] = Int32GetDatum(active->segment_no + 1);
		args[3] = Int64GetDatum(base);
		args[4] = ObjectIdGetDatum(new_relid);
		catalog_query("INSERT INTO " PGQ_SCHEMA ".segment"
					  " (topic_id, partition, segment_no, base_offset, relid, created_at)"
					  " VALUES ($1, $2, $3, $4, $5, pg_catalog.clock_timestamp())",
					  5, argtypes, args, NULL, false);
		SPI_finish();
		catalog_change_register();
		LockRelationIdForSession(&new_lock, AccessShareLock);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* the new segment does not exist: go on with the old one */
		segment_roll_finish(state, active->topic_id, InvalidOid);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* committed: switch to the new segment (unless the topic was dropped) */
	state = partition_state_lookup(active->topic_id, active->partition, incarnation, false);
	if (state != NULL)
		segment_roll_finish(state, active->topic_id, new_relid);
	UnlockRelationIdForSession(&new_lock, AccessShareLock);
}

/*
 * now minus ms milliseconds, saturating at -infinity: a limit too large to
 * express as a timestamp difference (Kafka users set retention.ms to
 * Long.MAX_VALUE, 9223372036854775807, for "forever") is never reached,
 * rather than wrapping around to a moment in the future.
 */
static TimestampTz
time_minus_ms(TimestampTz now, int64 ms)
{
	int64		us;
	TimestampTz result;

	if (pg_mul_s64_overflow(ms, 1000, &us) || pg_sub_s64_overflow(now, us, &result))
		return DT_NOBEGIN;
	return result;
}

/*
 * Has the segment no record at all, committed or not?  A heap that was
 * never written to has no page, so mostly this costs nothing; one that holds
 * only rolled-back (perhaps vacuumed) records needs a look at its index.
 * A segment dropped meanwhile counts as empty: there is nothing to roll.
 */
static bool
segment_is_empty(Oid relid, int64 bytes)
{
	Relation	rel;
	bool		empty;

	if (bytes == 0)
		return true;
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
		return true;
	empty = segment_max_offset(relid) < 0;
	table_close(rel, AccessShareLock);
	return empty;
}

/*
 * Is the active segment due to be rolled over?  Only if it is too old or
 * too large, and not empty: rolling an empty segment would gain nothing, and
 * an idle partition past segment.ms would otherwise cost a transaction every
 * round.  Runs in a transaction.
 */
static bool
segment_roll_due(SegmentRow *active, int64 bytes, TimestampTz now)
{
	int64		roll_ms = active->segment_ms;
	int64		roll_bytes = active->segment_bytes;

	if (active->retention_ms >= 0)
		roll_ms = Min(roll_ms, active->retention_ms);
	if (active->retention_bytes > 0)
		roll_bytes = Min(roll_bytes, active->retention_bytes);
	if (bytes >= roll_bytes)
		return true;			/* bytes > 0: not empty */
	if (active->created_at >= time_minus_ms(now, roll_ms))
		return false;
	return !segment_is_empty(active->relid, bytes);
}

/*
 * Is the extension here at the version of this library?  If not (it has not
 * been updated yet), the worker leaves it alone, and says so once.
 */
static bool
retention_layout_ok(void)
{
	static bool warned = false;

	if (catalog_layout_ok())
		return true;
	if (!warned)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgqueue worker skips database \"%s\" until its extension is updated",
						get_database_name(MyDatabaseId)),
				 errhint("Run ALTER EXTENSION pgqueue UPDATE in that database.")));
	warned = true;
	return false;
}

/*
 * One retention round over every partition of every topic of the current
 * database: drop what expired, roll what is due.  Runs outside any
 * transaction; each change is a transaction of its own.
 */
void
retention_round(void)
{
	SegmentRow *rows;
	int			nrows;
	int			i;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "pgqueue retention",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("pgqueue", true)) || !retention_layout_ok())
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextDelete(cxt);
		return;
	}
	rows = segments_list(&nrows);
	old = MemoryContextSwitchTo(cxt);
	{
		SegmentRow *copy = palloc(sizeof(SegmentRow) * Max(nrows, 1));
		int64	   *bytes = palloc(sizeof(int64) * Max(nrows, 1));
		bool	   *roll = palloc0(sizeof(bool) * Max(nrows, 1));
		TimestampTz listed_at = GetCurrentTimestamp();

		memcpy(copy, rows, sizeof(SegmentRow) * nrows);
		rows = copy;
		for (i = 0; i < nrows; i++)
		{
			CHECK_FOR_INTERRUPTS();
			bytes[i] = segment_size(rows[i].relid);
		}
		/* the last segment of each partition is its active one */
		for (i = 0; i < nrows; i++)
			if (i + 1 == nrows || rows[i + 1].topic_id != rows[i].topic_id ||
				rows[i + 1].partition != rows[i].partition)
				roll[i] = segment_roll_due(&rows[i], bytes[i], listed_at);
		MemoryContextSwitchTo(old);
		PopActiveSnapshot();
		CommitTransactionCommand();

		for (i = 0; i < nrows;)
		{
			int			first = i;
			int			last;
			int64		total = 0;
			TimestampTz now = GetCurrentTimestamp();
			int			s;

			CHECK_FOR_INTERRUPTS();
			while (i < nrows && rows[i].topic_id == rows[first].topic_id &&
				   rows[i].partition == rows[first].partition)
				total += bytes[i++];
			last = i - 1;

			/* drop old segments, oldest first, never the active one */
			for (s = first; s < last; s++)
			{
				bool		expired_by_time = rows[s].retention_ms >= 0 &&
					rows[s + 1].created_at < time_minus_ms(now, rows[s].retention_ms);
				bool		expired_by_size = rows[s].retention_bytes >= 0 &&
					total - bytes[s] >= rows[s].retention_bytes;

				if (!(expired_by_time || expired_by_size))
					break;
				if (!segment_drop_old(&rows[s], rows[s + 1].base_offset))
					break;
				total -= bytes[s];
			}

			/* roll the active segment over when it is due */
			if (roll[last])
				segment_roll(&rows[last]);
		}
	}
	MemoryContextDelete(cxt);
}
