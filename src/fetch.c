/*-------------------------------------------------------------------------
 *
 * fetch.c
 *	  Reading a partition up to its last stable offset: pgq_fetch,
 *	  pgq_fetch_partitions (many partitions, with their bounds),
 *	  pgq_offsets_for_time and the pgq_partitions view.
 *
 * partition_scan reads a partition's segments in offset order through their
 * offset index with SnapshotAny, and classifies every record against the
 * reader's MVCC snapshot S:
 *
 *	visible		committed before S: served;
 *	dead		rolled back (or deleted): skipped, its offset is a gap;
 *	pending		its transaction was running when S was taken, or is the
 *				reader's own: the scan stops here.  This offset is the last
 *				stable offset as of S.
 *
 * Why a reader can never see a lower offset appear after serving offset n:
 * send.c inserts a partition's records, index entries included, in offset
 * order under the append lock.  If n is visible to S, n's transaction
 * committed before S was taken, so every m < n had its index entry in place
 * before S, hence before the scan started, and the scan meets m before n.
 * If m's transaction had not committed by S, m is pending and the scan stops
 * before n; otherwise m is visible (served) or dead (never visible).  The
 * argument needs no shared-memory state, so it holds on a hot standby too:
 * replay applies the WAL, hence the index entries, in the same order.
 *
 * The snapshot is the active one: the statement's in READ COMMITTED, the
 * transaction's in REPEATABLE READ (which then sees no records committed
 * after its snapshot, as it would with a table).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "catalog.h"
#include "fetch.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(pgq_fetch);
PG_FUNCTION_INFO_V1(pgq_offsets_for_time);
PG_FUNCTION_INFO_V1(pgq_partitions_info);
PG_FUNCTION_INFO_V1(pgq_fetch_partitions);

typedef enum RecordStatus
{
	RECORD_VISIBLE,
	RECORD_DEAD,
	RECORD_PENDING
} RecordStatus;

/* how far the WAL must be flushed before what was read is served */
static XLogRecPtr served_upto = InvalidXLogRecPtr;

/*
 * Notes how far the WAL must be flushed for a visible record to be durable:
 * its inserting transaction's commit record.  A record whose xmin is hinted
 * committed needs at most its page's LSN: the hint is set once the commit
 * is flushed, or earlier only when the page's LSN is past the commit (so a
 * flush up to the page's LSN covers it).  Otherwise the commit LSN that clog
 * keeps for asynchronous commits tells (it is invalid for synchronous ones,
 * which were flushed before they became visible).  The caller holds a share
 * lock on the buffer.
 */
static void
served_record_note(HeapTupleHeader header, Buffer buffer)
{
	XLogRecPtr	lsn = BufferGetLSNAtomic(buffer);

	if (!HeapTupleHeaderXminCommitted(header))
		lsn = Max(lsn, TransactionIdGetCommitLSN(HeapTupleHeaderGetRawXmin(header)));
	served_upto = Max(served_upto, lsn);
}

/* Classifies a record against the snapshot; the caller holds a share lock on the buffer. */
static RecordStatus
record_status(HeapTuple tuple, Snapshot snapshot, Buffer buffer)
{
	HeapTupleHeader header = tuple->t_data;
	TransactionId xmin;

	if (HeapTupleSatisfiesVisibility(tuple, snapshot, buffer))
	{
		/* our own uncommitted records are not served, as in read_committed */
		if (!HeapTupleHeaderXminCommitted(header) &&
			TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(header)))
			return RECORD_PENDING;
		return RECORD_VISIBLE;
	}
	if (HeapTupleHeaderXminInvalid(header))
		return RECORD_DEAD;

	xmin = HeapTupleHeaderGetRawXmin(header);
	if (TransactionIdIsCurrentTransactionId(xmin) || XidInMVCCSnapshot(xmin, snapshot))
		return RECORD_PENDING;

	/* the inserter had ended by the snapshot, yet the record is invisible */
	return RECORD_DEAD;
}

/*
 * Scans a partition from from_offset in offset order, up to (not including)
 * upto_offset, calling callback for each visible record until it returns
 * false, max_records were passed to it, a pending record is met
 * (*stopped_pending) or the range ends.  Returns the offset to continue
 * from: past the last record seen, or the pending one.  Segments are locked
 * with AccessShareLock only while they are scanned.
 *
 * A position below the partition's log start (as last loaded, or as loaded
 * again when retention dropped a segment under the scan) means that the
 * records there are gone: an error, unless gone is given, which is then set
 * (and the position returned unchanged).  *exhausted (if given) tells
 * whether the scan ran out of records or of its range, rather than
 * stopping at a pending record, at max_records or where the callback said.
 */
static int64
scan_segments(PgqTopic *topic, int32 partition, int64 from_offset, int64 upto_offset,
			  int64 max_records, Snapshot snapshot,
			  PgqRecordCallback callback, void *arg, bool *stopped_pending,
			  bool *gone, bool *exhausted)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);
	int64		position = from_offset;
	int64		count = 0;
	int			first = 0;
	int			i;
	bool		reloaded = false;
	bool		done = false;
	bool		stopped = false;

	*stopped_pending = false;

restart:
	if (position < info->log_start_offset)
	{
		if (gone == NULL)
			check_offset_in_range(topic, partition, position);
		*gone = true;
		return position;
	}

	/* skip the segments that end before the position */
	first = 0;
	while (first + 1 < info->nsegments && info->segments[first + 1].base_offset <= position)
		first++;

	for (i = first; i < info->nsegments; i++)
	{
		Relation	rel;
		Relation	index;
		IndexScanDesc scan;
		ScanKeyData key;
		TupleTableSlot *slot;
		TupleDesc	desc;

		CHECK_FOR_INTERRUPTS();

		rel = try_table_open(info->segments[i].relid, AccessShareLock);
		if (rel == NULL)
		{
			/*
			 * Retention dropped the segment after we looked the partition
			 * up: look again.
			 */
			if (reloaded)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("topic \"%s\" does not exist", topic->name),
						 errdetail("It was dropped concurrently.")));
			topic_partition_info_forget(topic, partition);
			info = topic_partition_info(topic, partition);
			reloaded = true;
			goto restart;
		}
		index = index_open(segment_index(rel), AccessShareLock);
		desc = RelationGetDescr(rel);
		slot = table_slot_create(rel, NULL);

		ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
					Int64GetDatum(position));
		scan = index_beginscan(rel, index, SnapshotAny, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);

		while (!done && index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
			HeapTuple	tuple = bslot->base.tuple;
			RecordStatus status;
			bool		isnull;
			int64		offset;

			LockBuffer(bslot->buffer, BUFFER_LOCK_SHARE);
			status = record_status(tuple, snapshot, bslot->buffer);
			if (status == RECORD_VISIBLE)
				served_record_note(tuple->t_data, bslot->buffer);
			LockBuffer(bslot->buffer, BUFFER_LOCK_UNLOCK);

			offset = DatumGetInt64(heap_getattr(tuple, 1, desc, &isnull));
			if (offset >= upto_offset)
			{
				done = true;
				break;
			}
			if (status == RECORD_PENDING)
			{
				*stopped_pending = true;
				position = offset;
				done = stopped = true;
			}
			else
			{
				position = offset + 1;
				if (status == RECORD_VISIBLE)
				{
					count++;
					if (!callback(arg, offset, tuple, desc) || count >= max_records)
						done = stopped = true;
				}
			}
			CHECK_FOR_INTERRUPTS();
		}

		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		/* what was read is copied: hold no lock while a long poll waits */
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		if (done)
			break;
	}
	if (exhausted != NULL)
		*exhausted = !stopped;
	return position;
}

/*
 * Locks a partition's newest segment, which keeps the partition's shared
 * state in place (partition_state.c), and makes sure the topic was not
 * dropped before the lock was granted.
 */
static void
lock_newest_segment(PgqTopic *topic, Oid relid)
{
	LockRelationOid(relid, AccessShareLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", topic->name),
				 errdetail("It was dropped concurrently.")));
}

static bool
scan_skip(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	return true;
}

static bool
scan_stop(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	return false;
}

/*
 * Scans a partition from from_offset like scan_segments, never past its last
 * stable offset, even when from_offset is above it: a reader must not see
 * offset n while a record below n is pending, whatever offset it asked for.
 *
 * The partition's stable hint (every offset below it is settled) makes that
 * cheap: only the offsets between the hint and from_offset need checking,
 * and the hint moves up with every scan that starts at or below it.  The
 * partition's newest segment stays locked meanwhile, which keeps its shared
 * state in place (partition_state.c).  gone: see scan_segments (NULL: an
 * error).
 */
int64
partition_scan(PgqTopic *topic, int32 partition, int64 from_offset,
			   int64 max_records, Snapshot snapshot,
			   PgqRecordCallback callback, void *arg, bool *stopped_pending,
			   bool *gone)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);
	Oid			newest = info->segments[info->nsegments - 1].relid;
	PgqPartitionState *state;
	int64		hint;
	int64		position;
	bool		exhausted;

	/*
	 * No offset at or above from_offset has been assigned yet: nothing to
	 * read, and no segment to open.  A poll over many partitions mostly
	 * meets such partitions, and this keeps their cost to a look at shared
	 * memory, through the pointer partition_state_peek keeps.  A record
	 * assigned after the check belongs to a transaction that had not
	 * committed when our snapshot was taken, so it would be pending anyway.
	 * Only a primary keeps the counter (loaded once per server start, as a
	 * send would).
	 *
	 * The first check takes no lock at all, against the pattern of
	 * partition_state.c: without a segment lock a concurrent drop may remove
	 * or recycle the entry under us, but then the answer can only be wrong
	 * towards "nothing now", which serves nothing and moves no position,
	 * for a topic that is gone anyway.
	 */
	*stopped_pending = false;
	if (!RecoveryInProgress())
	{
		state = partition_state_peek(topic->topic_id, partition, info->offset_floor,
									 &info->state_hint);
		if (state != NULL && state->loaded)
		{
			pg_read_barrier();	/* next_offset was set before loaded */
			if (from_offset >= (int64) pg_atomic_read_u64(&state->next_offset))
				return from_offset;
		}
	}

	lock_newest_segment(topic, newest);
	state = partition_state_lookup(topic->topic_id, partition, info->offset_floor, true);
	if (!RecoveryInProgress())
	{
		partition_ensure_loaded(topic, partition, state);
		if (from_offset >= (int64) pg_atomic_read_u64(&state->next_offset))
		{
			UnlockRelationOid(newest, AccessShareLock);
			return from_offset;
		}
	}

	hint = Max(partition_state_get_stable_hint(state), info->log_start_offset);

	if (from_offset > hint)
	{
		int64		stop = scan_segments(topic, partition, hint, from_offset, PG_INT64_MAX,
										 snapshot, scan_skip, NULL, stopped_pending, NULL, NULL);

		/*
		 * Everything below stop is settled, but not necessarily what lies
		 * between stop and from_offset: those offsets may not be assigned
		 * yet.  (Records at or above from_offset that the snapshot sees were
		 * inserted after every lower offset, so the check above met those.)
		 */
		partition_state_advance_stable_hint(state, stop);
		if (*stopped_pending)
		{
			/* a record below from_offset is still pending: nothing is readable */
			UnlockRelationOid(newest, AccessShareLock);
			return from_offset;
		}
		hint = stop;
	}

	position = scan_segments(topic, partition, from_offset, PG_INT64_MAX, max_records,
							 snapshot, callback, arg, stopped_pending, gone, &exhausted);

	/*
	 * Ran out of records below the high watermark: the offsets left are a
	 * trailing gap (rolled back and vacuumed, or skipped by the offset
	 * floor after a restart), or records inserted since the scan passed.
	 * Every offset below the high watermark read under the append lock has
	 * its index entry, so a second look at the offsets between finds the
	 * latter (as pending: they are not in our snapshot); if there are none,
	 * the position moves past the gap to the high watermark, so that a
	 * caught-up member can commit the end and show no lag.
	 */
	if (exhausted && (gone == NULL || !*gone) && !RecoveryInProgress() &&
		position < (int64) pg_atomic_read_u64(&state->next_offset))
	{
		int64		end;
		bool		pending;

		int64		stop;

		LWLockAcquire(&state->append_lock, LW_SHARED);
		end = (int64) pg_atomic_read_u64(&state->next_offset);
		LWLockRelease(&state->append_lock);
		stop = scan_segments(topic, partition, position, end, PG_INT64_MAX, snapshot,
							 scan_stop, NULL, &pending, gone, &exhausted);
		if (gone == NULL || !*gone)
		{
			if (exhausted)
				position = end;
			else if (pending)
			{
				/*
				 * A record inserted after the first look passed: the read
				 * stops at it, as if the first look had met it, so that the
				 * caller knows the position is the last stable offset.
				 */
				position = stop;
				*stopped_pending = true;
			}
		}
	}
	if (from_offset <= hint)
		partition_state_advance_stable_hint(state, position);
	UnlockRelationOid(newest, AccessShareLock);
	return position;
}

/* ----------------------------------------------------------------
 * pgq_fetch
 * ----------------------------------------------------------------
 */

/*
 * What is left of the limits of a pgq_fetch_partitions call, for the whole
 * call and for the partition being read (-1: no limit).  A record's size is
 * the bytes of its key, value and headers.  KIP-74: the first record the
 * call serves is served whatever its size, so that a reader always makes
 * progress; after it, a record that does not fit ends the read before it.
 */
typedef struct FetchLimits
{
	int64		records;		/* the call's records left */
	int64		bytes;			/* the call's bytes left */
	int64		part_records;	/* the partition's records left */
	int64		part_bytes;		/* the partition's bytes left */
	bool		served_any;		/* the call served a record */
	bool		cut;			/* a limit ended the partition's read */
	int64		refused;		/* the record that did not fit, or -1 */
} FetchLimits;

typedef struct FetchState
{
	ReturnSetInfo *rsinfo;
	PgqTopic   *topic;
	Datum		topic_name;		/* made at the first record served */
	int32		partition;
	int64		served;
	FetchLimits *limits;		/* pgq_fetch_partitions's, or NULL */
} FetchState;

/* the widest result a record is written into (pgq_fetch_partitions's) */
#define FETCH_MAX_COLS		12
#define FETCH_RECORD_COLS	7

/* A varlena column of a stored record, fetched from TOAST if need be. */
static Datum
record_varlena(Datum d, bool null, bool *isnull)
{
	*isnull = null;
	if (null)
		return (Datum) 0;
	if (VARATT_IS_EXTERNAL(DatumGetPointer(d)))
		return PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(d)));
	return d;
}

/* The bytes of a record's key, value and headers, without detoasting them. */
static int64
record_size(Datum *cols, bool *nulls)
{
	static const int varlena_cols[] = {SEG_KEY, SEG_VALUE, SEG_HEADERS};
	int64		size = 0;
	int			i;

	for (i = 0; i < (int) lengthof(varlena_cols); i++)
		if (!nulls[varlena_cols[i]])
			size += toast_raw_datum_size(cols[varlena_cols[i]]) - VARHDRSZ;
	return size;
}

/* Whether a record of this size may be served; if not, the read ends before it. */
static bool
fetch_limits_admit(FetchLimits *lim, int64 offset, int64 size)
{
	if (lim->served_any &&
		((lim->bytes >= 0 && size > lim->bytes) ||
		 (lim->part_bytes >= 0 && size > lim->part_bytes)))
	{
		lim->refused = offset;
		lim->cut = true;
		return false;
	}
	return true;
}

static void
limit_charge(int64 *left, int64 amount, bool *cut)
{
	if (*left < 0)
		return;
	*left = Max(*left - amount, 0);
	if (*left == 0)
		*cut = true;
}

/* Charges a served record; returns false once a limit is reached. */
static bool
fetch_limits_charge(FetchLimits *lim, int64 size)
{
	lim->served_any = true;
	limit_charge(&lim->records, 1, &lim->cut);
	limit_charge(&lim->part_records, 1, &lim->cut);
	limit_charge(&lim->bytes, size, &lim->cut);
	limit_charge(&lim->part_bytes, size, &lim->cut);
	return !lim->cut;
}

/*
 * Writes a record into the result, as its first FETCH_RECORD_COLS columns
 * (pgq_fetch_partitions's further columns are null in a record's row).
 */
static bool
fetch_emit(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	FetchState *fs = (FetchState *) arg;
	int			natts = fs->rsinfo->setDesc->natts;
	Datum		values[FETCH_MAX_COLS];
	bool		nulls[FETCH_MAX_COLS];
	Datum		cols[SEG_NATTS];
	bool		colnulls[SEG_NATTS];
	int64		size = 0;
	int			i;

	Assert(natts >= FETCH_RECORD_COLS && natts <= FETCH_MAX_COLS);

	/* one pass over the record: the columns after key are not at fixed offsets */
	heap_deform_tuple(tuple, desc, cols, colnulls);
	if (fs->limits != NULL)
	{
		size = record_size(cols, colnulls);
		if (!fetch_limits_admit(fs->limits, offset, size))
			return false;
	}
	if (fs->topic_name == (Datum) 0)
		fs->topic_name = PointerGetDatum(cstring_to_text(fs->topic->name));
	for (i = FETCH_RECORD_COLS; i < natts; i++)
		nulls[i] = true;
	values[0] = fs->topic_name;
	nulls[0] = false;
	values[1] = Int32GetDatum(fs->partition);
	nulls[1] = false;
	values[2] = Int64GetDatum(offset);
	nulls[2] = false;
	values[3] = record_varlena(cols[SEG_KEY], colnulls[SEG_KEY], &nulls[3]);
	values[4] = record_varlena(cols[SEG_VALUE], colnulls[SEG_VALUE], &nulls[4]);
	values[5] = record_varlena(cols[SEG_HEADERS], colnulls[SEG_HEADERS], &nulls[5]);
	values[6] = cols[SEG_TIMESTAMP];
	nulls[6] = colnulls[SEG_TIMESTAMP];
	tuplestore_putvalues(fs->rsinfo->setResult, fs->rsinfo->setDesc, values, nulls);
	fs->served++;
	if (fs->limits != NULL)
		return fetch_limits_charge(fs->limits, size);
	return true;
}

/*
 * Sets up the result of a function returning records (pgq_fetch, pgq_poll),
 * as InitMaterializedSRF does, but with the rows in a generation context of
 * their own: they are all freed together at the end of the query, and
 * packed without the power-of-two rounding of the query's allocation set
 * (a third less memory for small records), in blocks of at most 64 kB,
 * below malloc's mmap threshold, whose memory the next batch reuses rather
 * than mapping and faulting in new pages.
 */
#define RECORDS_MAX_BLOCK	(64 * 1024)

void
records_result_init(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext rows;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rows = GenerationContextCreate(rsinfo->econtext->ecxt_per_query_memory, "pgqueue records",
								   0, ALLOCSET_DEFAULT_INITSIZE, RECORDS_MAX_BLOCK);
	old = MemoryContextSwitchTo(rows);
	tuplestore_end(rsinfo->setResult);
	rsinfo->setResult = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
											  false, work_mem);
	MemoryContextSwitchTo(old);
}

/*
 * Reads up to max_records visible records of a partition from from_offset
 * into the result tuplestore of a pgq_fetch-shaped function.  Returns how
 * many it served and sets *next_offset to where the next read continues.
 * gone: see scan_segments (NULL: an error).
 */
int64
partition_read(PgqTopic *topic, int32 partition, int64 from_offset, int64 max_records,
			   ReturnSetInfo *rsinfo, int64 *next_offset, bool *gone)
{
	FetchState	fs;
	bool		pending;

	fs.rsinfo = rsinfo;
	fs.topic = topic;
	fs.topic_name = (Datum) 0;
	fs.partition = partition;
	fs.served = 0;
	fs.limits = NULL;
	*next_offset = partition_scan(topic, partition, from_offset, max_records,
								  GetActiveSnapshot(), fetch_emit, &fs, &pending, gone);
	return fs.served;
}

/*
 * Makes sure that what a reader is served is durable: with
 * synchronous_commit = off a record is visible before its commit record is
 * flushed, and a crash could then lose a served offset and reuse it.  Only
 * as much WAL as the served records need is flushed (see
 * served_record_note), so a reader does not wait for everybody else's WAL.
 */
void
served_records_flush(void)
{
	XLogRecPtr	upto = served_upto;

	served_upto = InvalidXLogRecPtr;
	if (RecoveryInProgress() || XLogRecPtrIsInvalid(upto))
		return;
	XLogFlush(upto);			/* at once if it is flushed already */
}

void
check_offset_in_range(PgqTopic *topic, int32 partition, int64 offset)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);

	if (offset < info->log_start_offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset %lld is out of range for partition %d of topic \"%s\"",
						(long long) offset, partition, topic->name),
				 errdetail("The log starts at offset %lld.",
						   (long long) info->log_start_offset)));
}

/*
 * A committed offset or a seek may point at the high watermark (the next
 * record), not past it: records sent later up to that offset would be
 * skipped without anyone having read them.
 */
void
check_offset_not_past_end(PgqTopic *topic, int32 partition, int64 offset)
{
	int64		hwm;

	(void) partition_last_stable_offset(topic, partition, &hwm);
	if (offset > hwm)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset %lld is past the end of partition %d of topic \"%s\"",
						(long long) offset, partition, topic->name),
				 errdetail("The high watermark is %lld.", (long long) hwm)));
}

/* The limits of a read: max_records > 0, timeout_ms >= 0. */
void
check_read_limits(int32 max_records, int32 timeout_ms)
{
	if (max_records <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be greater than zero")));
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must not be negative")));
}

typedef struct FetchStep
{
	PgqTopic   *topic;
	int32		partition;
	int64		offset;
	int32		max_records;
	ReturnSetInfo *rsinfo;
	int64		served;
} FetchStep;

static int64
fetch_step(void *arg)
{
	FetchStep  *fs = (FetchStep *) arg;
	int64		next;

	fs->served = partition_read(fs->topic, fs->partition, fs->offset, fs->max_records,
								fs->rsinfo, &next, NULL);
	return fs->served;
}

/*
 * pgq_fetch(topic, partition, msg_offset, max_records, timeout_ms): up to
 * max_records visible records from msg_offset on, stopping at the last
 * stable offset; with timeout_ms > 0 and nothing to return, waits for a
 * send to the topic to commit (see wait.c).
 */
Datum
pgq_fetch(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	int32		partition = DatumGetInt32(pgq_require_arg(fcinfo, 1, "partition"));
	int64		offset = DatumGetInt64(pgq_require_arg(fcinfo, 2, "msg_offset"));
	int32		max_records = DatumGetInt32(pgq_require_arg(fcinfo, 3, "max_records"));
	int32		timeout_ms = DatumGetInt32(pgq_require_arg(fcinfo, 4, "timeout_ms"));
	FetchStep	fs;

	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msg_offset must not be negative")));
	check_read_limits(max_records, timeout_ms);

	fs.topic = topic_lookup(name, false);
	topic_check_privilege(fs.topic, PGQ_PRIV_CONSUME);
	topic_check_partition(fs.topic, partition);
	check_offset_in_range(fs.topic, partition, offset);

	records_result_init(fcinfo);
	fs.partition = partition;
	fs.offset = offset;
	fs.max_records = max_records;
	fs.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	fs.served = 0;
	wait_for_records(fs.topic, timeout_ms, fetch_step, &fs);
	if (fs.served > 0)
		served_records_flush();
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * pgq_offsets_for_time
 * ----------------------------------------------------------------
 */

typedef struct TimeSearch
{
	TimestampTz target;
	int64		found;			/* -1 if none yet */
} TimeSearch;

static bool
time_search_step(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	TimeSearch *ts = (TimeSearch *) arg;
	bool		isnull;
	TimestampTz t = DatumGetTimestampTz(heap_getattr(tuple, 2, desc, &isnull));

	if (t >= ts->target)
	{
		ts->found = offset;
		return false;
	}
	return true;
}

/*
 * The first readable offset of a partition whose timestamp is at or after
 * the given time, or -1.  Scans from the log start: timestamps are the
 * producers' and need not increase with offsets.
 */
int64
partition_offset_for_time(PgqTopic *topic, int32 partition, TimestampTz target)
{
	TimeSearch	ts = {target, -1};
	bool		pending;

	partition_scan(topic, partition, topic_partition_info(topic, partition)->log_start_offset,
				   PG_INT64_MAX, GetActiveSnapshot(), time_search_step, &ts, &pending, NULL);
	return ts.found;
}

/*
 * pgq_offsets_for_time(topic, timestamp): per partition, the first readable
 * offset whose timestamp is at or after the given time, or NULL.
 */
Datum
pgq_offsets_for_time(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	TimestampTz target = DatumGetTimestampTz(pgq_require_arg(fcinfo, 1, "timestamp"));
	PgqTopic   *topic;
	ReturnSetInfo *rsinfo;
	int32		p;

	topic = topic_lookup(name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	for (p = 0; p < topic->partitions; p++)
	{
		int64		found;
		Datum		values[2];
		bool		nulls[2] = {false, false};

		CHECK_FOR_INTERRUPTS();
		found = partition_offset_for_time(topic, p, target);

		values[0] = Int32GetDatum(p);
		values[1] = Int64GetDatum(found);
		nulls[1] = found < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * The pgq_partitions view
 * ----------------------------------------------------------------
 */


/*
 * The high watermark of a partition, and (if settled is given) the offset
 * below which every offset is known to be settled: the partition's stable
 * hint, at least the log start.  On a standby there is no counter in shared
 * memory and the high watermark is the highest offset present plus one.
 */
static int64
partition_high_watermark(PgqTopic *topic, int32 partition, int64 *settled)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);
	PgqSegment *newest = &info->segments[info->nsegments - 1];
	PgqPartitionState *state;
	int64		hwm;

	lock_newest_segment(topic, newest->relid);
	state = partition_state_lookup(topic->topic_id, partition, info->offset_floor, true);
	if (!RecoveryInProgress())
	{
		partition_ensure_loaded(topic, partition, state);
		hwm = (int64) pg_atomic_read_u64(&state->next_offset);
	}
	else
	{
		hwm = Max(info->log_start_offset, newest->base_offset);
		hwm = Max(hwm, segment_max_offset(newest->relid) + 1);
	}
	if (settled != NULL)
		*settled = Max(info->log_start_offset, partition_state_get_stable_hint(state));
	UnlockRelationOid(newest->relid, AccessShareLock);
	return hwm;
}

/*
 * The last stable offset of a partition (and its high watermark).  On a
 * primary the search starts from the partition's stable hint and advances
 * it, so repeated calls are cheap.
 */
int64
partition_last_stable_offset(PgqTopic *topic, int32 partition, int64 *hwm)
{
	int64		from;
	int64		stop;
	bool		pending;

	/* the high watermark must be read before the scan starts */
	*hwm = partition_high_watermark(topic, partition, &from);
	stop = partition_scan(topic, partition, from, PG_INT64_MAX, GetActiveSnapshot(),
						  scan_skip, NULL, &pending, NULL);
	return pending ? stop : *hwm;
}

/* Counts the records below an offset (pgq_partitions_info). */
typedef struct RecordCount
{
	int64		below;
	int64		records;
} RecordCount;

static bool
scan_count(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	RecordCount *rc = (RecordCount *) arg;

	if (offset >= rc->below)
		return false;
	rc->records++;
	return true;
}

/*
 * The records of a partition's readable log, [log start, stop): gaps (the
 * offsets of rolled-back sends, and those the offset floor skips after a
 * restart) do not count.  Every offset below stop is settled, so any
 * snapshot counts the same, and the count so far is kept in the partition's
 * shared state: each call counts only the records that became stable since
 * the last (all of them after a restart or a segment drop).  If retention
 * drops a segment under the scan, the count starts again from the new log
 * start.
 */
static int64
partition_count_records(PgqTopic *topic, int32 partition, int64 stop)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);
	Oid			newest = info->segments[info->nsegments - 1].relid;
	PgqPartitionState *state;
	RecordCount rc;
	int64		from;
	bool		pending;
	bool		gone;

	lock_newest_segment(topic, newest);
	state = partition_state_lookup(topic->topic_id, partition, info->offset_floor, true);
	rc.below = stop;
	do
	{
		int64		counted;

		from = topic_partition_info(topic, partition)->log_start_offset;
		counted = partition_state_get_count(state, from, &rc.records);
		if (counted > stop)
		{
			/* counted past our stop by a later call: count again */
			counted = from;
			rc.records = 0;
		}
		gone = false;
		(void) partition_scan(topic, partition, counted, PG_INT64_MAX, GetActiveSnapshot(),
							  scan_count, &rc, &pending, &gone);
	} while (gone);
	partition_state_set_count(state, from, stop, rc.records);
	UnlockRelationOid(newest, AccessShareLock);
	return rc.records;
}

/*
 * One row per partition of every topic: log start, high watermark, last
 * stable offset, the records in the readable log (counted) and the bytes of
 * its segment tables.
 */
Datum
pgq_partitions_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	List	   *names = NIL;
	ListCell   *lc;
	uint64		i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	SPI_connect();
	catalog_query("SELECT name FROM " PGQ_SCHEMA ".topic ORDER BY name", 0, NULL, NULL, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

		names = lappend(names, cstring_to_text(SPI_getvalue(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	foreach(lc, names)
	{
		PgqTopic   *topic = topic_lookup((text *) lfirst(lc), true);
		int32		p;

		if (topic == NULL)
			continue;			/* dropped meanwhile */

		for (p = 0; p < topic->partitions; p++)
		{
			int64		hwm;
			int64		stop = partition_last_stable_offset(topic, p, &hwm);
			int64		records = partition_count_records(topic, p, stop);
			PgqPartitionInfo *info = topic_partition_info(topic, p);	/* as the count left it */
			int64		bytes = 0;
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};
			int			s;

			CHECK_FOR_INTERRUPTS();
			for (s = 0; s < info->nsegments; s++)
				bytes += segment_size(info->segments[s].relid);

			values[0] = CStringGetTextDatum(topic->name);
			values[1] = Int32GetDatum(p);
			values[2] = Int64GetDatum(info->log_start_offset);
			values[3] = Int64GetDatum(hwm);
			values[4] = Int64GetDatum(stop);
			values[5] = Int64GetDatum(records);
			values[6] = Int64GetDatum(bytes);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Reading many partitions in one call: pgq_fetch_partitions, and the
 * readiness check behind pgq_wait (wait.c)
 * ----------------------------------------------------------------
 */

/* The elements of a one-dimensional array argument that must not be null. */
static int
entries_array(FunctionCallInfo fcinfo, int argno, const char *argname, Datum **elems,
			  bool **nulls, bool nulls_ok)
{
	ArrayType  *array = DatumGetArrayTypeP(pgq_require_arg(fcinfo, argno, argname));
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			n;
	int			i;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, elems, nulls, &n);
	for (i = 0; i < n && !nulls_ok; i++)
		if ((*nulls)[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", argname)));
	return n;
}

/*
 * The (topic, partition, offset) entries of a call that reads or waits for
 * many partitions, from its arguments argno (topics text[]), argno + 1
 * (partitions integer[]) and argno + 2 (msg_offsets bigint[]).  topics has
 * one element per partition, or a single one that applies to every
 * partition.  The topics are looked up by read_entries_lookup.
 */
int
read_entries_get(FunctionCallInfo fcinfo, int argno, PgqReadEntry **entries)
{
	Datum	   *names;
	Datum	   *parts;
	Datum	   *offsets;
	bool	   *nulls;
	int			nnames;
	int			n;
	int			noffsets;
	int			i;
	PgqReadEntry *e;
	text	  **distinct;
	int			ndistinct = 0;

	nnames = entries_array(fcinfo, argno, "topics", &names, &nulls, false);
	n = entries_array(fcinfo, argno + 1, "partitions", &parts, &nulls, false);
	noffsets = entries_array(fcinfo, argno + 2, "msg_offsets", &offsets, &nulls, false);
	if (nnames != n && nnames != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("topics has %d elements but partitions has %d", nnames, n),
				 errhint("Give one topic per partition, or a single topic for all of them.")));
	if (noffsets != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("msg_offsets has %d elements but partitions has %d", noffsets, n)));

	e = palloc0(sizeof(PgqReadEntry) * Max(n, 1));
	distinct = palloc(sizeof(text *) * Max(nnames, 1));
	for (i = 0; i < n; i++)
	{
		text	   *name = DatumGetTextPP(names[nnames == 1 ? 0 : i]);
		int			len = VARSIZE_ANY_EXHDR(name);
		int			k;

		/* entries of one topic share one name, which read_entries_lookup relies on */
		for (k = ndistinct - 1; k >= 0; k--)
			if ((int) VARSIZE_ANY_EXHDR(distinct[k]) == len &&
				memcmp(VARDATA_ANY(distinct[k]), VARDATA_ANY(name), len) == 0)
				break;
		if (k < 0)
			distinct[k = ndistinct++] = name;
		e[i].topic_name = distinct[k];
		e[i].partition = DatumGetInt32(parts[i]);
		e[i].offset = DatumGetInt64(offsets[i]);
	}
	read_entries_lookup(e, n);
	*entries = e;
	return n;
}

/*
 * Looks the entries' topics up (again: a wait does it before each read, so
 * that it reads through current segment lists), each distinct name once: a
 * second topic_lookup of a name could reload its cache entry, or remove it
 * if the topic was dropped meanwhile, under an entry that points to it.  An
 * unknown topic leaves its entries' topic NULL (a per-entry error); the
 * caller must hold the consume right on every topic that exists.
 */
void
read_entries_lookup(PgqReadEntry *entries, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		PgqReadEntry *e = &entries[i];
		int			k;

		for (k = i - 1; k >= 0; k--)
			if (entries[k].topic_name == e->topic_name)
				break;
		if (k >= 0)
		{
			e->topic = entries[k].topic;
			continue;
		}
		e->topic = topic_lookup(e->topic_name, true);
		if (e->topic != NULL)
			topic_check_privilege(e->topic, PGQ_PRIV_CONSUME);
	}
}

/* The per-entry error of a read, or NULL: see the README's table. */
static const char *
read_entry_error(PgqReadEntry *e, int64 *log_start, int64 *hwm)
{
	PgqPartitionInfo *info;

	if (e->topic == NULL || e->partition < 0 || e->partition >= e->topic->partitions)
		return "42704";			/* Kafka's UNKNOWN_TOPIC_OR_PARTITION */
	info = topic_partition_info(e->topic, e->partition);
	*log_start = info->log_start_offset;
	*hwm = partition_high_watermark(e->topic, e->partition, NULL);

	/*
	 * Past the high watermark is out of range only on a primary: a standby
	 * may not have replayed yet what a client read on the primary.
	 */
	if (e->offset < *log_start || (!RecoveryInProgress() && e->offset > *hwm))
		return "22023";			/* Kafka's OFFSET_OUT_OF_RANGE */
	return NULL;
}

/*
 * Whether a read of the entry's partition from its offset would answer now
 * (pgq_wait): it would serve a record, or move past a gap of rolled-back
 * sends, or report an error (unknown topic or partition, offset out of
 * range).  Uses the active snapshot.
 */
bool
read_entry_ready(PgqReadEntry *e)
{
	int64		log_start;
	int64		hwm;
	int64		next;
	bool		pending;
	bool		gone = false;

	if (e->topic == NULL || e->partition < 0 || e->partition >= e->topic->partitions ||
		e->offset < topic_partition_info(e->topic, e->partition)->log_start_offset)
		return true;
	next = partition_scan(e->topic, e->partition, e->offset, 1, GetActiveSnapshot(),
						  scan_stop, NULL, &pending, &gone);
	if (gone || next > e->offset)
		return true;
	/* nothing to read: only an offset past the end makes a read answer */
	return read_entry_error(e, &log_start, &hwm) != NULL;
}

/* A limit argument: NULL is no limit (-1); otherwise it must be positive. */
static int64
limit_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		return -1;
	v = PG_GETARG_INT32(argno);
	if (v <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be greater than zero", argname)));
	return v;
}

/* A per-partition limits array: NULL, or one element per partition (NULL: no limit). */
static int64 *
limits_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int n)
{
	Datum	   *elems;
	bool	   *nulls;
	int64	   *limits;
	int			count;
	int			i;

	if (PG_ARGISNULL(argno))
		return NULL;
	count = entries_array(fcinfo, argno, argname, &elems, &nulls, true);
	if (count != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s has %d elements but partitions has %d", argname, count, n)));
	limits = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		limits[i] = nulls[i] ? -1 : DatumGetInt32(elems[i]);
		if (!nulls[i] && limits[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must contain only values greater than zero", argname)));
	}
	return limits;
}

/* The row that ends a partition's part of pgq_fetch_partitions's result. */
static void
fetch_partition_row(ReturnSetInfo *rsinfo, PgqReadEntry *e, int64 log_start, int64 hwm,
					int64 lso, int64 next, const char *error)
{
	Datum		values[FETCH_MAX_COLS];
	bool		nulls[FETCH_MAX_COLS];
	int			i;

	for (i = 0; i < FETCH_MAX_COLS; i++)
		nulls[i] = true;
	values[0] = PointerGetDatum(e->topic_name);
	nulls[0] = false;
	values[1] = Int32GetDatum(e->partition);
	nulls[1] = false;
	if (log_start >= 0)
	{
		values[7] = Int64GetDatum(log_start);
		values[8] = Int64GetDatum(hwm);
		values[9] = Int64GetDatum(lso);
		nulls[7] = nulls[8] = nulls[9] = false;
	}
	if (next >= 0)
	{
		values[10] = Int64GetDatum(next);
		nulls[10] = false;
	}
	if (error != NULL)
	{
		values[11] = CStringGetTextDatum(error);
		nulls[11] = false;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * pgq_fetch_partitions(topics, partitions, msg_offsets, max_records,
 * max_bytes, partition_max_records, partition_max_bytes, timeout_ms): reads
 * many partitions in one call, for Kafka's Fetch.  For each entry in input
 * order: the records read from it, then a row for the partition (msg_offset
 * NULL) with its log start, high watermark and last stable offset, where
 * the next read continues, and an error code (NULL if none).
 *
 * With timeout_ms > 0 it first waits, as pgq_wait does, until a read of one
 * of the entries would answer (a record, a gap to move past, an error) or
 * the timeout passes, and then reads them all with a snapshot taken after
 * the wait: a long poll in one statement, where a wait and a read would
 * take two.
 *
 * Every partition is read with one snapshot (the statement's, or the one
 * taken after the wait), and the last stable offset reported is the one
 * that bounded that read: when the read ran to its end (nothing left, or a
 * record pending to the snapshot), the reported LSO is where it stopped and equals next_offset, so "no records,
 * next_offset = LSO" means that nothing below it is missing, even if a send
 * committed while the call read other partitions.  When a limit ended the
 * read, the LSO is looked up after it (from the partition's stable hint,
 * cheaply) and is above next_offset if more records are readable.
 */
Datum
pgq_fetch_partitions(PG_FUNCTION_ARGS)
{
	PgqReadEntry *entries;
	int			n = read_entries_get(fcinfo, 0, &entries);
	int64		max_records = limit_arg(fcinfo, 3, "max_records");
	int64		max_bytes = limit_arg(fcinfo, 4, "max_bytes");
	int64	   *part_records = limits_array_arg(fcinfo, 5, "partition_max_records", n);
	int64	   *part_bytes = limits_array_arg(fcinfo, 6, "partition_max_bytes", n);
	int32		timeout_ms = DatumGetInt32(pgq_require_arg(fcinfo, 7, "timeout_ms"));
	bool		new_snapshot = false;
	ReturnSetInfo *rsinfo;
	FetchLimits lim;
	int64		served = 0;
	int			i;

	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must not be negative")));
	if (timeout_ms > 0 && !IsolationUsesXactSnapshot())
	{
		bool	   *ready = palloc0(sizeof(bool) * Max(n, 1));

		/* the wait's checks saw more than the statement's snapshot may */
		(void) read_entries_wait(entries, n, timeout_ms, ready);
		pfree(ready);
		PushActiveSnapshot(GetLatestSnapshot());
		new_snapshot = true;
	}

	records_result_init(fcinfo);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	lim.records = max_records;
	lim.bytes = max_bytes;
	lim.served_any = false;

	for (i = 0; i < n; i++)
	{
		PgqReadEntry *e = &entries[i];
		int64		log_start = -1;
		int64		hwm = -1;
		int64		lso;
		int64		lso_hwm;
		int64		next;
		bool		pending = false;
		bool		gone = false;
		const char *error;
		FetchState	fs;

		CHECK_FOR_INTERRUPTS();
		error = read_entry_error(e, &log_start, &hwm);
		if (error != NULL)
		{
			lso = log_start >= 0 ? partition_last_stable_offset(e->topic, e->partition, &lso_hwm) : -1;
			fetch_partition_row(rsinfo, e, log_start, Max(hwm, lso), lso, -1, error);
			continue;
		}

		lim.part_records = part_records != NULL ? part_records[i] : -1;
		lim.part_bytes = part_bytes != NULL ? part_bytes[i] : -1;
		lim.refused = -1;
		lim.cut = lim.records == 0 || lim.bytes == 0;
		next = e->offset;
		fs.rsinfo = rsinfo;
		fs.topic = e->topic;
		fs.topic_name = PointerGetDatum(e->topic_name);
		fs.partition = e->partition;
		fs.served = 0;
		fs.limits = &lim;
		if (!lim.cut)			/* else the call's limits are used up */
		{
			next = partition_scan(e->topic, e->partition, e->offset, PG_INT64_MAX,
								  GetActiveSnapshot(), fetch_emit, &fs, &pending, &gone);
			if (lim.refused >= 0)
				next = lim.refused;
		}
		served += fs.served;
		if (gone && fs.served == 0)
		{
			/* retention dropped the records at the offset while we read */
			log_start = topic_partition_info(e->topic, e->partition)->log_start_offset;
			lso = partition_last_stable_offset(e->topic, e->partition, &lso_hwm);
			fetch_partition_row(rsinfo, e, log_start, Max(lso_hwm, lso), lso, -1, "22023");
			continue;
		}

		if (lim.cut || gone)
		{
			/* the read did not reach its bound: look it up */
			lso = Max(partition_last_stable_offset(e->topic, e->partition, &lso_hwm), next);
			hwm = Max(hwm, lso_hwm);
		}
		else if (next > e->offset || !pending)
			lso = next;			/* where the read stopped: pending, or the end */
		else
		{
			/*
			 * Stopped at once by a pending record, maybe one below the
			 * offset asked for: report that one.
			 */
			lso = Min(partition_last_stable_offset(e->topic, e->partition, &lso_hwm), next);
		}
		fetch_partition_row(rsinfo, e, topic_partition_info(e->topic, e->partition)->log_start_offset,
							Max(hwm, lso), lso, next, NULL);
	}
	if (new_snapshot)
		PopActiveSnapshot();
	if (served > 0)
		served_records_flush();
	return (Datum) 0;
}
