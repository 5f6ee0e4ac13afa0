/*-------------------------------------------------------------------------
 *
 * producer.c
 *	  Idempotent producers, as Kafka's: a producer id and epoch from
 *	  pgq_init_producer, and per (producer, partition) sequence numbers that
 *	  the append checks, so that a retried send appends nothing and returns
 *	  the offsets of the first attempt.  See docs/producers.md.
 *
 * The sequence numbers travel with the records: a segment row has the
 * producer id, epoch and sequence of an idempotent send, and a partial index
 * on (producer_id, producer_epoch, sequence) finds a producer's newest
 * records.  Nothing else is written per send.  What the append checks lives
 * in shared memory, one ProducerState per (database, topic, partition,
 * producer): the producer's epoch, the next sequence it must send, and its
 * last PGQ_PRODUCER_WINDOW runs (a run is a batch: consecutive sequences at
 * consecutive offsets, written by one transaction).  A state that is not in
 * shared memory (after a restart, a failover, a restore, or after it
 * expired) is rebuilt from the index, as Kafka rebuilds its producer state
 * from the log; it is lost only with the segments that held the records.
 *
 * Locking: ProducersShared->lock protects both hash tables.  A state's
 * fields are read and written only by the holder of its partition's append
 * lock (send.c), which also holds this lock shared, so that the state
 * cannot be removed meanwhile; entries are added and removed with this
 * lock exclusive.  Lock order: append lock, then this lock.
 *
 * A batch whose transaction has not ended yet is in a state with its xid.
 * A send that depends on it (a retry of it, or the next sequence after it,
 * from another transaction) waits for that transaction to end, then looks
 * again: the retry then returns the committed batch's offsets, or appends
 * if it rolled back (never both, never neither), and the next sequence
 * appends after a committed batch and is out of order after a rolled-back
 * one.
 *
 * Producer ids come from pgqueue.producer_id_seq.  A transactional id has a
 * row in pgqueue.producer, with its producer id and current epoch; each
 * pgq_init_producer of that id raises the epoch, which fences the earlier
 * ones.  Producer ids without a transactional id have no row and epoch 0.
 * The current epoch of each producer in use is cached in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "producer.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(pgq_init_producer);

/* Kafka's error codes for these, in the class PQ of pgqueue's own */
#define ERRCODE_PGQ_OUT_OF_ORDER_SEQUENCE		MAKE_SQLSTATE('P','Q','0','0','1')
#define ERRCODE_PGQ_DUPLICATE_SEQUENCE			MAKE_SQLSTATE('P','Q','0','0','2')
#define ERRCODE_PGQ_INVALID_PRODUCER_EPOCH		MAKE_SQLSTATE('P','Q','0','0','3')
#define ERRCODE_PGQ_UNKNOWN_PRODUCER_ID			MAKE_SQLSTATE('P','Q','0','0','4')

/* Kafka's epochs are 16-bit: past this a transactional id gets a new producer id */
#define PGQ_PRODUCER_EPOCH_MAX	32767

/* the runs remembered per producer and partition (Kafka: 5 batches) */
#define PGQ_PRODUCER_WINDOW		5

/* GUCs */
int			pgq_max_producer_states = 8192;
int			pgq_producer_id_expiration = 86400000;	/* ms, Kafka's 1 day */

typedef struct ProducerKey
{
	Oid			dbid;
	int64		producer_id;
} ProducerKey;

typedef struct Producer
{
	ProducerKey key;
	int32		epoch;			/* the current epoch */
	TimestampTz last_used;
} Producer;

typedef struct ProducerStateKey
{
	Oid			dbid;
	int32		topic_id;
	int32		partition;
	int64		producer_id;
} ProducerStateKey;

typedef struct ProducerRun
{
	int32		first_seq;
	int32		count;
	int64		first_offset;
	TransactionId xid;			/* the writer; InvalidTransactionId once committed */
} ProducerRun;

typedef struct ProducerState
{
	ProducerStateKey key;
	Oid			incarnation;	/* the partition's offset floor (partition_state.h) */
	int32		epoch;
	int32		next_seq;		/* the sequence the producer must send next */
	int			nruns;
	ProducerRun runs[PGQ_PRODUCER_WINDOW];	/* oldest first */
	TimestampTz last_used;
} ProducerState;

typedef struct ProducersShared
{
	LWLock	   *lock;
} ProducersShared;

static ProducersShared *producers_shared = NULL;
static HTAB *producers = NULL;
static HTAB *producer_states = NULL;

/*
 * Epochs raised by this transaction's pgq_init_producer, applied to the
 * cache at commit; each with the subtransaction that raised it, so that a
 * rolled-back savepoint takes its raises back.
 */
typedef struct EpochRaise
{
	ProducerKey key;
	int32		epoch;
	SubTransactionId subid;
} EpochRaise;

static List *epochs_raised = NIL;
static bool xact_callbacks_registered = false;

Size
producer_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(ProducersShared));

	size = add_size(size, hash_estimate_size(pgq_max_producer_states, sizeof(Producer)));
	return add_size(size, hash_estimate_size(pgq_max_producer_states, sizeof(ProducerState)));
}

/* Called from the shmem startup hook, holding AddinShmemInitLock. */
void
producer_shmem_startup(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	producers_shared = ShmemInitStruct("pgqueue producers", sizeof(ProducersShared), &found);
	if (!found)
		producers_shared->lock = lock;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ProducerKey);
	info.entrysize = sizeof(Producer);
	producers = ShmemInitHash("pgqueue producer table",
							  pgq_max_producer_states, pgq_max_producer_states,
							  &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ProducerStateKey);
	info.entrysize = sizeof(ProducerState);
	producer_states = ShmemInitHash("pgqueue producer state table",
									pgq_max_producer_states, pgq_max_producer_states,
									&info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

static void
producer_key_init(ProducerKey *key, int64 producer_id)
{
	memset(key, 0, sizeof(*key));	/* hashed as bytes, padding included */
	key->dbid = MyDatabaseId;
	key->producer_id = producer_id;
}

static void
state_key_init(ProducerStateKey *key, int32 topic_id, int32 partition, int64 producer_id)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->topic_id = topic_id;
	key->partition = partition;
	key->producer_id = producer_id;
}

static void
producers_full_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("too many idempotent producers"),
			 errdetail("Shared memory holds the state of at most %d producers, and of as many (producer, partition) pairs.",
					   pgq_max_producer_states),
			 errhint("Raise pgqueue.max_producer_states, or lower pgqueue.producer_id_expiration.")));
}

/*
 * Reads the idempotence arguments of a send at argno, argno + 1 and
 * argno + 2 (producer_id, producer_epoch, sequence): all NULL (not an
 * idempotent send: returns false) or all given and valid.
 */
bool
producer_args_get(FunctionCallInfo fcinfo, int argno, PgqProducerArgs *args)
{
	bool		given = !PG_ARGISNULL(argno);

	args->producer_id = -1;
	if (given != !PG_ARGISNULL(argno + 1) || given != !PG_ARGISNULL(argno + 2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("producer_id, producer_epoch and sequence must be given together")));
	if (!given)
		return false;
	args->producer_id = PG_GETARG_INT64(argno);
	args->epoch = PG_GETARG_INT32(argno + 1);
	args->sequence = PG_GETARG_INT32(argno + 2);
	if (args->producer_id < 0 || args->epoch < 0 || args->sequence < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("producer_id, producer_epoch and sequence must not be negative")));
	return true;
}

/*
 * The partition of an idempotent record that has neither a key nor an
 * explicit partition: fixed by the producer id, so that a retry goes where
 * the first attempt went (the round robin of other sends would not).
 */
int32
producer_partition(PgqTopic *topic, const PgqProducerArgs *args)
{
	return (int32) ((uint64) args->producer_id % (uint64) topic->partitions);
}

/* The current epoch of a producer from the catalog, or -1 if it was never issued. */
static int32
producer_catalog_epoch(int64 producer_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(producer_id)};
	int32		epoch = -1;
	bool		isnull;

	SPI_connect();
	catalog_query("SELECT producer_epoch FROM " PGQ_SCHEMA ".producer WHERE producer_id = $1",
				  1, argtypes, args, NULL, true);
	if (SPI_processed > 0)
		epoch = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	else
	{
		/* no transactional id: epoch 0, if the sequence has handed it out */
		catalog_query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM "
					  PGQ_SCHEMA ".producer_id_seq", 0, NULL, NULL, NULL, true);
		if (producer_id <= DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 1, &isnull)))
			epoch = 0;
	}
	SPI_finish();
	return epoch;
}

/*
 * Checks that the producer id was issued and that the epoch is its current
 * one (a later pgq_init_producer of its transactional id fences it).
 */
void
producer_check_epoch(const PgqProducerArgs *args)
{
	ProducerKey key;
	Producer   *p;
	int32		epoch = -1;
	bool		found;

	producer_key_init(&key, args->producer_id);
	LWLockAcquire(producers_shared->lock, LW_SHARED);
	p = hash_search(producers, &key, HASH_FIND, NULL);
	if (p != NULL)
	{
		epoch = p->epoch;
		p->last_used = GetCurrentTransactionStartTimestamp();	/* a race here is harmless */
	}
	LWLockRelease(producers_shared->lock);

	if (p == NULL)
	{
		epoch = producer_catalog_epoch(args->producer_id);
		if (epoch < 0)
			ereport(ERROR,
					(errcode(ERRCODE_PGQ_UNKNOWN_PRODUCER_ID),
					 errmsg("unknown producer id %lld", (long long) args->producer_id),
					 errhint("Get a producer id and epoch from pgq_init_producer().")));
		LWLockAcquire(producers_shared->lock, LW_EXCLUSIVE);
		p = hash_search(producers, &key, HASH_ENTER_NULL, &found);
		if (p == NULL)
		{
			LWLockRelease(producers_shared->lock);
			producers_full_error();
		}
		/* a pgq_init_producer that committed meanwhile may have entered a higher one */
		if (!found || p->epoch < epoch)
			p->epoch = epoch;
		epoch = p->epoch;
		p->last_used = GetCurrentTransactionStartTimestamp();
		LWLockRelease(producers_shared->lock);
	}

	if (args->epoch != epoch)
		ereport(ERROR,
				(errcode(ERRCODE_PGQ_INVALID_PRODUCER_EPOCH),
				 errmsg("producer %lld has epoch %d, not %d",
						(long long) args->producer_id, epoch, args->epoch),
				 args->epoch < epoch ?
				 errdetail("A later pgq_init_producer() of its transactional id fenced this epoch.") : 0));
}

/* ----------------------------------------------------------------
 * Rebuilding a state from the log
 * ----------------------------------------------------------------
 */

/* The state of a producer in a partition, as its records say. */
typedef struct RebuiltState
{
	int32		epoch;
	int32		next_seq;		/* -1: no record */
	int			nruns;
	ProducerRun runs[PGQ_PRODUCER_WINDOW];	/* newest first while collecting */
} RebuiltState;

/*
 * Adds a record (met newest first) to the runs: it extends the oldest run
 * so far if it comes right before it, by sequence and by offset, from the
 * same transaction.  Returns false once the window is full and the record
 * would start another run.
 */
static bool
rebuilt_add(RebuiltState *rs, int32 seq, int64 offset, TransactionId xid)
{
	ProducerRun *run = rs->nruns > 0 ? &rs->runs[rs->nruns - 1] : NULL;

	if (rs->next_seq < 0)
		rs->next_seq = seq + 1;
	if (run != NULL && run->first_seq == seq + 1 && run->first_offset == offset + 1 &&
		run->xid == xid)
	{
		run->first_seq = seq;
		run->first_offset = offset;
		run->count++;
		return true;
	}
	if (rs->nruns == PGQ_PRODUCER_WINDOW)
		return false;
	run = &rs->runs[rs->nruns++];
	run->first_seq = seq;
	run->count = 1;
	run->first_offset = offset;
	run->xid = xid;
	return true;
}

/*
 * The writer of a record if its transaction may still commit
 * (InvalidTransactionId if it committed), or FrozenTransactionId if it
 * rolled back.
 */
static TransactionId
record_writer(HeapTuple tuple, Buffer buffer)
{
	HeapTupleHeader header = tuple->t_data;
	TransactionId xmin;

	if (HeapTupleHeaderXminCommitted(header))
		return InvalidTransactionId;
	if (HeapTupleHeaderXminInvalid(header))
		return FrozenTransactionId;
	xmin = HeapTupleHeaderGetRawXmin(header);
	if (TransactionIdIsCurrentTransactionId(xmin) || TransactionIdIsInProgress(xmin))
		return xmin;
	if (TransactionIdDidCommit(xmin))
		return InvalidTransactionId;
	return FrozenTransactionId;
}

/*
 * Reads a producer's newest records in one segment, newest first, into rs.
 * Returns false when rs needs no older records.
 */
static bool
rebuild_from_segment(Oid relid, int64 producer_id, RebuiltState *rs)
{
	Relation	rel = try_table_open(relid, AccessShareLock);
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	TupleDesc	desc;
	bool		more = true;

	if (rel == NULL)
		return true;			/* dropped by retention meanwhile: older ones too */
	index = index_open(segment_producer_index(rel), AccessShareLock);
	desc = RelationGetDescr(rel);
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(producer_id));
	scan = index_beginscan(rel, index, SnapshotAny, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (more && index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
		HeapTuple	tuple = bslot->base.tuple;
		TransactionId writer;
		bool		isnull;
		int32		epoch;

		LockBuffer(bslot->buffer, BUFFER_LOCK_SHARE);
		writer = record_writer(tuple, bslot->buffer);
		LockBuffer(bslot->buffer, BUFFER_LOCK_UNLOCK);
		if (writer == FrozenTransactionId)
			continue;			/* rolled back: never appended */

		epoch = DatumGetInt32(heap_getattr(tuple, SEG_PRODUCER_EPOCH + 1, desc, &isnull));
		if (rs->next_seq >= 0 && epoch != rs->epoch)
		{
			more = false;		/* an older epoch: its sequences are over */
			break;
		}
		rs->epoch = epoch;
		more = rebuilt_add(rs,
						   DatumGetInt32(heap_getattr(tuple, SEG_SEQUENCE + 1, desc, &isnull)),
						   DatumGetInt64(heap_getattr(tuple, SEG_OFFSET + 1, desc, &isnull)),
						   writer);
		CHECK_FOR_INTERRUPTS();
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return more;
}

/*
 * Makes sure shared memory has the state of the producer in the partition,
 * rebuilding it from the partition's segments, newest first, if not.  Takes
 * heavyweight locks: call it holding no LWLock.
 */
void
producer_state_ensure(PgqTopic *topic, int32 partition, Oid incarnation,
					  const PgqProducerArgs *args)
{
	ProducerStateKey key;
	ProducerState *st;
	RebuiltState rs;
	PgqPartitionInfo *info;
	bool		found;
	int			s;
	int			i;

	state_key_init(&key, topic->topic_id, partition, args->producer_id);
	LWLockAcquire(producers_shared->lock, LW_SHARED);
	st = hash_search(producer_states, &key, HASH_FIND, NULL);
	found = st != NULL && st->incarnation == incarnation;
	LWLockRelease(producers_shared->lock);
	if (found)
		return;

	memset(&rs, 0, sizeof(rs));
	rs.next_seq = -1;
	info = topic_partition_info(topic, partition);
	for (s = info->nsegments - 1; s >= 0; s--)
		if (!rebuild_from_segment(info->segments[s].relid, args->producer_id, &rs))
			break;

	LWLockAcquire(producers_shared->lock, LW_EXCLUSIVE);
	st = hash_search(producer_states, &key, HASH_ENTER_NULL, &found);
	if (st == NULL)
	{
		LWLockRelease(producers_shared->lock);
		producers_full_error();
	}
	if (!found || st->incarnation != incarnation)
	{
		/* (if found, another backend rebuilt it meanwhile: keep its state) */
		st->incarnation = incarnation;
		st->epoch = rs.epoch;
		st->next_seq = rs.next_seq;
		st->nruns = rs.nruns;
		for (i = 0; i < rs.nruns; i++)
			st->runs[i] = rs.runs[rs.nruns - 1 - i];	/* oldest first */
		st->last_used = GetCurrentTransactionStartTimestamp();
	}
	LWLockRelease(producers_shared->lock);
}

/* ----------------------------------------------------------------
 * The check at append
 * ----------------------------------------------------------------
 */

/*
 * Forgets the runs whose transaction rolled back, and marks those that
 * committed.  A rolled-back run takes the runs after it with it (they were
 * appended by the same transaction, or it would have waited), and the
 * producer must send its first sequence again.
 */
static void
state_settle(ProducerState *st)
{
	int			i;

	for (i = 0; i < st->nruns; i++)
	{
		ProducerRun *run = &st->runs[i];

		/*
		 * The commit log first: the usual case is the producer's previous
		 * send, committed, and asking the proc array would take
		 * ProcArrayLock, which committing backends hold exclusively, with
		 * the append lock held.  A transaction is in the commit log as
		 * committed before it leaves the proc array, hence the second look.
		 */
		if (!TransactionIdIsValid(run->xid))
			continue;
		if (TransactionIdDidCommit(run->xid))
			run->xid = InvalidTransactionId;
		else if (TransactionIdIsCurrentTransactionId(run->xid) ||
				 TransactionIdIsInProgress(run->xid))
			continue;
		else if (TransactionIdDidCommit(run->xid))
			run->xid = InvalidTransactionId;
		else
		{
			st->next_seq = run->first_seq;
			st->nruns = i;
			break;
		}
	}
}

/* Whether another transaction's run is still open (and decides what follows). */
static bool
run_open(const ProducerRun *run)
{
	return TransactionIdIsValid(run->xid) && !TransactionIdIsCurrentTransactionId(run->xid);
}

/*
 * Decides what an append of count records with these arguments to the
 * partition must do.  Called holding the partition's append lock; takes
 * the producers' lock and keeps it (shared) for producer_record if the
 * verdict is PRODUCER_APPEND.  Raises the sequence errors itself (which releases
 * both locks).
 */
PgqProducerVerdict
producer_check(PgqTopic *topic, int32 partition, Oid incarnation,
			   const PgqProducerArgs *args, int32 count,
			   int64 *first_offset, TransactionId *xid)
{
	ProducerStateKey key;
	ProducerState *st;
	int32		seq = args->sequence;
	int			i;

	state_key_init(&key, topic->topic_id, partition, args->producer_id);
	LWLockAcquire(producers_shared->lock, LW_SHARED);
	st = hash_search(producer_states, &key, HASH_FIND, NULL);
	if (st == NULL || st->incarnation != incarnation)
	{
		LWLockRelease(producers_shared->lock);
		return PRODUCER_RELOAD;
	}
	st->last_used = GetCurrentTransactionStartTimestamp();
	state_settle(st);

	if (st->next_seq >= 0 && args->epoch != st->epoch)
	{
		/* a new epoch starts the sequences again (the epoch was checked) */
		if (args->epoch < st->epoch)
			ereport(ERROR,
					(errcode(ERRCODE_PGQ_INVALID_PRODUCER_EPOCH),
					 errmsg("producer %lld has epoch %d in partition %d of topic \"%s\", not %d",
							(long long) args->producer_id, st->epoch, partition,
							topic->name, args->epoch)));
		if (st->nruns > 0 && run_open(&st->runs[st->nruns - 1]))
		{
			*xid = st->runs[st->nruns - 1].xid;
			LWLockRelease(producers_shared->lock);
			return PRODUCER_WAIT;
		}
		st->epoch = args->epoch;
		st->next_seq = -1;
		st->nruns = 0;
	}

	if (st->next_seq < 0)
	{
		if (seq != 0)
			ereport(ERROR,
					(errcode(ERRCODE_PGQ_UNKNOWN_PRODUCER_ID),
					 errmsg("producer %lld has no records in partition %d of topic \"%s\" to follow sequence %d",
							(long long) args->producer_id, partition, topic->name, seq),
					 errdetail("A producer's first send to a partition has sequence 0; its earlier records are gone (retention) or never were."),
					 errhint("Get a new producer id from pgq_init_producer().")));
		return PRODUCER_APPEND;
	}
	if (seq == st->next_seq)
	{
		if (st->nruns > 0 && run_open(&st->runs[st->nruns - 1]))
		{
			*xid = st->runs[st->nruns - 1].xid;
			LWLockRelease(producers_shared->lock);
			return PRODUCER_WAIT;
		}
		return PRODUCER_APPEND;
	}
	if (seq < st->next_seq)
	{
		/* a retry: the runs it falls in say where its records went */
		for (i = 0; i < st->nruns; i++)
		{
			ProducerRun *run = &st->runs[i];

			if (seq >= run->first_seq && seq < run->first_seq + run->count)
			{
				if ((int64) seq + count > (int64) run->first_seq + run->count)
					break;		/* not the batch sent before: out of order */
				if (run_open(run))
				{
					*xid = run->xid;
					LWLockRelease(producers_shared->lock);
					return PRODUCER_WAIT;
				}
				*first_offset = run->first_offset + (seq - run->first_seq);
				LWLockRelease(producers_shared->lock);
				return PRODUCER_DUPLICATE;
			}
		}
		if (i == st->nruns && (st->nruns == 0 || seq < st->runs[0].first_seq))
			ereport(ERROR,
					(errcode(ERRCODE_PGQ_DUPLICATE_SEQUENCE),
					 errmsg("sequence %d of producer %lld in partition %d of topic \"%s\" was appended before",
							seq, (long long) args->producer_id, partition, topic->name),
					 errdetail("It is older than the last %d batches, whose offsets are remembered; the next sequence is %d.",
							   PGQ_PRODUCER_WINDOW, st->next_seq)));
	}
	ereport(ERROR,
			(errcode(ERRCODE_PGQ_OUT_OF_ORDER_SEQUENCE),
			 errmsg("out-of-order sequence %d of producer %lld in partition %d of topic \"%s\"",
					seq, (long long) args->producer_id, partition, topic->name),
			 errdetail("The next sequence is %d.", st->next_seq)));
	pg_unreachable();
}

/*
 * Records an append that producer_check allowed: count records from
 * first_offset.  Called holding the append lock and, from producer_check,
 * the producers' lock, which it releases.
 */
void
producer_record(int32 topic_id, int32 partition, Oid incarnation,
				const PgqProducerArgs *args, int32 count, int64 first_offset)
{
	ProducerStateKey key;
	ProducerState *st;
	ProducerRun *run;

	state_key_init(&key, topic_id, partition, args->producer_id);
	st = hash_search(producer_states, &key, HASH_FIND, NULL);
	Assert(st != NULL && st->incarnation == incarnation);
	if (st->nruns == PGQ_PRODUCER_WINDOW)
	{
		memmove(&st->runs[0], &st->runs[1], sizeof(ProducerRun) * (PGQ_PRODUCER_WINDOW - 1));
		st->nruns--;
	}
	run = &st->runs[st->nruns++];
	run->first_seq = args->sequence;
	run->count = count;
	run->first_offset = first_offset;
	run->xid = GetCurrentTransactionId();
	st->epoch = args->epoch;
	st->next_seq = args->sequence + count;
	LWLockRelease(producers_shared->lock);
}

/* ----------------------------------------------------------------
 * Expiry and dropped topics
 * ----------------------------------------------------------------
 */

/*
 * Forgets the states unused for pgqueue.producer_id_expiration, and the
 * cached epochs too (the worker calls it each round).  A state with an
 * open run stays.  A producer that sends again later finds its state
 * rebuilt from its records, if they are still there.
 */
void
producer_expire(void)
{
	TimestampTz horizon = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  -(int64) pgq_producer_id_expiration);
	HASH_SEQ_STATUS status;
	ProducerState *st;
	Producer   *p;

	LWLockAcquire(producers_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, producer_states);
	while ((st = hash_seq_search(&status)) != NULL)
	{
		bool		open = false;
		int			i;

		for (i = 0; i < st->nruns; i++)
			if (TransactionIdIsValid(st->runs[i].xid) && TransactionIdIsInProgress(st->runs[i].xid))
				open = true;
		if (st->last_used < horizon && !open)
			hash_search(producer_states, &st->key, HASH_REMOVE, NULL);
	}
	hash_seq_init(&status, producers);
	while ((p = hash_seq_search(&status)) != NULL)
		if (p->last_used < horizon)
			hash_search(producers, &p->key, HASH_REMOVE, NULL);
	LWLockRelease(producers_shared->lock);
}

/*
 * Forgets the producer states of a dropped topic, or with topic_id 0 all of
 * the database's producers (the extension was created again: producer ids
 * start again at 1).
 */
void
producer_forget(Oid dbid, int32 topic_id)
{
	HASH_SEQ_STATUS status;
	ProducerState *st;

	LWLockAcquire(producers_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, producer_states);
	while ((st = hash_seq_search(&status)) != NULL)
		if (st->key.dbid == dbid && (topic_id == 0 || st->key.topic_id == topic_id))
			hash_search(producer_states, &st->key, HASH_REMOVE, NULL);
	if (topic_id == 0)
	{
		Producer   *p;

		hash_seq_init(&status, producers);
		while ((p = hash_seq_search(&status)) != NULL)
			if (p->key.dbid == dbid)
				hash_search(producers, &p->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(producers_shared->lock);
}

/* ----------------------------------------------------------------
 * pgq_init_producer
 * ----------------------------------------------------------------
 */

static void
producer_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* the raise would be applied by no one at COMMIT PREPARED */
			if (epochs_raised != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that ran pgq_init_producer() with a transactional id")));
			break;
		case XACT_EVENT_COMMIT:
			if (epochs_raised == NIL)
				break;
			LWLockAcquire(producers_shared->lock, LW_EXCLUSIVE);
			foreach(lc, epochs_raised)
			{
				EpochRaise *raised = (EpochRaise *) lfirst(lc);
				bool		found;
				Producer   *p = hash_search(producers, &raised->key, HASH_ENTER_NULL, &found);

				/*
				 * Entered even if absent: a backend that read the old epoch
				 * from the catalog before this commit and caches it after
				 * finds this one and keeps the higher (epochs only rise).
				 */
				if (p == NULL)
					continue;	/* full: its sends fail until there is room */
				if (!found)
				{
					p->epoch = raised->epoch;
					p->last_used = GetCurrentTimestamp();
				}
				else if (p->epoch < raised->epoch)
					p->epoch = raised->epoch;
			}
			LWLockRelease(producers_shared->lock);
			epochs_raised = NIL;	/* (allocated in TopTransactionContext) */
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			epochs_raised = NIL;
			break;
		default:
			break;
	}
}

static void
producer_subxact_callback(SubXactEvent event, SubTransactionId subid,
						  SubTransactionId parent, void *arg)
{
	ListCell   *lc;

	foreach(lc, epochs_raised)
	{
		EpochRaise *raised = (EpochRaise *) lfirst(lc);

		if (raised->subid != subid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			raised->subid = parent;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
			epochs_raised = foreach_delete_current(epochs_raised, lc);
	}
}

/* Notes an epoch to raise in the cache when this transaction commits. */
static void
epoch_raise_note(int64 producer_id, int32 epoch)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	EpochRaise *raised = palloc0(sizeof(EpochRaise));

	producer_key_init(&raised->key, producer_id);
	raised->epoch = epoch;
	raised->subid = GetCurrentSubTransactionId();
	epochs_raised = lappend(epochs_raised, raised);
	MemoryContextSwitchTo(old);
	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(producer_xact_callback, NULL);
		RegisterSubXactCallback(producer_subxact_callback, NULL);
		xact_callbacks_registered = true;
	}
}

/*
 * pgq_init_producer(transactional_id text DEFAULT NULL)
 *	  RETURNS TABLE(producer_id bigint, producer_epoch integer)
 *
 * Without a transactional id: a new producer id, epoch 0.  With one: its
 * producer id and the next epoch, which fences the earlier epochs (a send
 * with one of them fails); the first call gets a new producer id.  After
 * epoch 32767 (Kafka's epochs are 16-bit) the id gets a new producer id.
 */
Datum
pgq_init_producer(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	bool		isnull;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot initialize a producer during recovery")));

	SPI_connect();
	if (PG_ARGISNULL(0))
	{
		catalog_query("SELECT pg_catalog.nextval('" PGQ_SCHEMA ".producer_id_seq'), 0",
					  0, NULL, NULL, NULL, false);
	}
	else
	{
		text	   *tid = PG_GETARG_TEXT_PP(0);
		Oid			argtypes[2] = {TEXTOID, OIDOID};
		Datum		args[2] = {PointerGetDatum(tid), ObjectIdGetDatum(GetUserId())};

		if (VARSIZE_ANY_EXHDR(tid) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("transactional_id must not be empty")));
		catalog_query("WITH old AS (SELECT producer_id FROM " PGQ_SCHEMA ".producer"
					  "              WHERE transactional_id OPERATOR(pg_catalog.=) $1)"
					  " INSERT INTO " PGQ_SCHEMA ".producer AS p (transactional_id, producer_id, producer_epoch, owner)"
					  " VALUES ($1, pg_catalog.nextval('" PGQ_SCHEMA ".producer_id_seq'), 0, $2)"
					  " ON CONFLICT (transactional_id) DO UPDATE SET"
					  "   producer_id = CASE WHEN p.producer_epoch OPERATOR(pg_catalog.>=) "
					  CppAsString2(PGQ_PRODUCER_EPOCH_MAX)
					  "     THEN pg_catalog.nextval('" PGQ_SCHEMA ".producer_id_seq') ELSE p.producer_id END,"
					  "   producer_epoch = CASE WHEN p.producer_epoch OPERATOR(pg_catalog.>=) "
					  CppAsString2(PGQ_PRODUCER_EPOCH_MAX)
					  "     THEN 0 ELSE p.producer_epoch OPERATOR(pg_catalog.+) 1 END,"
					  "   updated_at = pg_catalog.now()"
					  " WHERE CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_authid a"
					  "                         WHERE a.oid OPERATOR(pg_catalog.=) p.owner::pg_catalog.oid)"
					  "       THEN pg_catalog.pg_has_role($2, p.owner::pg_catalog.oid, 'USAGE')"
					  "       ELSE true END"	/* its owner was dropped: anyone's */
					  " RETURNING producer_id, producer_epoch, (SELECT producer_id FROM old)",
					  2, argtypes, args, NULL, false);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for transactional id \"%s\"", text_to_cstring(tid)),
					 errdetail("Only roles with the rights of the role that first used it may fence its producers.")));
	}
	if (SPI_processed != 1)
		elog(ERROR, "pgq_init_producer: no producer id");
	values[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!PG_ARGISNULL(0))
	{
		Datum		old_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

		/* fence the earlier epochs once this commits */
		epoch_raise_note(DatumGetInt64(values[0]), DatumGetInt32(values[1]));
		/* and all of an id that epoch 32767 used up */
		if (!isnull && DatumGetInt64(old_id) != DatumGetInt64(values[0]))
			epoch_raise_note(DatumGetInt64(old_id), PGQ_PRODUCER_EPOCH_MAX + 1);
	}
	SPI_finish();
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
