/*-------------------------------------------------------------------------
 *
 * send.c
 *	  Producing: pgq_send and pgq_send_batch.
 *
 * A send picks the partition (explicit, else Kafka's murmur2 of the key,
 * else round-robin), then appends: under the partition's append lock it
 * takes the next offset from shared memory and inserts the record into the
 * partition's active segment, heap and index.  Holding the lock across the
 * insert is what makes the ordering guarantee cheap to check for readers
 * (see pgqueue.h and fetch.c); it is held for microseconds per record, never
 * across the sending transaction, so concurrent transactions sending to the
 * same partition do not wait for one another to commit.
 *
 * Nothing is registered for commit or abort: a record becomes visible when
 * its transaction commits, and a rolled-back record is a dead tuple whose
 * offset stays a gap.  That also makes PREPARE TRANSACTION work: a prepared
 * transaction's records stay pending (holding readers back) until COMMIT or
 * ROLLBACK PREPARED, across restarts too.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "catalog.h"
#include "fetch.h"
#include "headers.h"
#include "murmur2.h"
#include "partition_state.h"
#include "payload.h"
#include "producer.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(pgq_send);
PG_FUNCTION_INFO_V1(pgq_send_batch);

/* A record to append, its fields already converted to what is stored. */
typedef struct PgqRecord
{
	Datum		key;			/* bytea, or 0 if null */
	Datum		value;			/* bytea, or 0 if null (a tombstone) */
	Datum		headers;		/* jsonb as stored (headers.c), or 0 if null */
	TimestampTz timestamp;
	int64		bytes;			/* of key, value and headers */
	int32		partition;
	int64		offset;			/* assigned by partition_append */
} PgqRecord;

/*
 * Converts a key or value to the bytea stored, by its type: pgq_payload
 * (the argument type of pgq_send's keys and values, see payload.c) and bytea
 * are the bytes already; text, varchar and json (elements of an array cast
 * to pgq_payloads) are stored as their UTF-8 bytes, jsonb as the UTF-8 bytes
 * of its text form.
 */
static Datum
payload_bytes(Datum arg, Oid type)
{
	if (type == JSONBOID)
	{
		Jsonb	   *jb = DatumGetJsonbP(arg);
		char	   *data = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		return PointerGetDatum(payload_from_text(data, strlen(data)));
	}
	if (type == TEXTOID || type == VARCHAROID || type == JSONOID)
	{
		text	   *t = DatumGetTextPP(arg);

		if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
			return PointerGetDatum(t);	/* text and bytea share a layout */
		return PointerGetDatum(payload_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
	}
	if (!OidIsValid(type))
		elog(ERROR, "could not determine the type of a key or value");
	/* bytea or pgq_payload */
	return PointerGetDatum(PG_DETOAST_DATUM_PACKED(arg));
}

static int64
datum_len(Datum d)
{
	return d == (Datum) 0 ? 0 : VARSIZE_ANY_EXHDR(DatumGetPointer(d));
}

/*
 * Checks a record against the topic's max.message.bytes (key, value and the
 * headers' binary form) and chooses its partition.
 */
static void
record_prepare(PgqTopic *topic, PgqRecord *rec, bool explicit_partition,
			   const PgqProducerArgs *producer)
{
	rec->bytes = datum_len(rec->key) + datum_len(rec->value) + datum_len(rec->headers);
	if (rec->bytes > topic->max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("record of %lld bytes is larger than max.message.bytes of topic \"%s\"",
						(long long) rec->bytes, topic->name),
				 errdetail("max.message.bytes is %lld.", (long long) topic->max_message_bytes),
				 errhint("Raise it with pgq_alter_topic() or send a smaller record.")));

	if (explicit_partition)
		topic_check_partition(topic, rec->partition);
	else if (rec->key != (Datum) 0)
		rec->partition = pgq_key_partition((unsigned char *) VARDATA_ANY(DatumGetPointer(rec->key)),
										   VARSIZE_ANY_EXHDR(DatumGetPointer(rec->key)),
										   topic->partitions);
	else if (producer != NULL)
		rec->partition = producer_partition(topic, producer);
	else
		rec->partition = (int32) (topic->round_robin++ % (uint32) topic->partitions);
}

/*
 * An upper bound of how much bigger a record's segment row is than its
 * bytes (key, value and headers): the tuple header with its null bitmap,
 * the three 8-byte columns, the two 4-byte ones (with their padding), and
 * for each of the three varlena columns a 4-byte length word and up to 3
 * bytes of alignment padding.
 */
#define SEG_ROW_OVERHEAD_MAX \
	(MAXALIGN(offsetof(HeapTupleHeaderData, t_bits) + BITMAPLEN(SEG_NATTS)) + \
	 3 * (sizeof(int64) + 7) + 2 * sizeof(int32) + 3 * (VARHDRSZ + 3))

/*
 * Whether heap_insert may TOAST one of the records: whether a row may be
 * larger than TOAST_TUPLE_THRESHOLD, above which it does.  The fields are
 * never external (send detoasts its arguments), so the size decides.
 */
static bool
records_may_toast(PgqRecord **recs, int nrecs)
{
	int			i;

	for (i = 0; i < nrecs; i++)
		if (recs[i]->bytes + SEG_ROW_OVERHEAD_MAX > TOAST_TUPLE_THRESHOLD)
			return true;
	return false;
}

/*
 * Appends records (all of one partition, in the given order) and sets their
 * offsets, which are consecutive: the append lock is held across offset
 * assignment and all the inserts, so no other sender's record comes in
 * between (Kafka clients compute a batch's offsets as its base offset plus
 * the record's index; see pgq_send_batch for what holding the lock for a
 * whole batch costs others).  producer (or NULL) is an idempotent send's
 * producer, whose sequence the records take: then the append may find them appended
 * before and append nothing, setting the offsets they got then (see
 * producer.c), or wait for the transaction that appended them to end.
 *
 * No heavyweight lock may be taken while holding the append lock, so every
 * relation the inserts may touch is opened and locked before: the segment
 * and its index; its TOAST table if a record is big enough to be TOASTed
 * (see segment_lock_toast); and the offset floor's sequence if the records
 * reach the floor, which happens once per PGQ_OFFSET_FLOOR_STEP offsets, so
 * that it is found out under the lock: then the lock is let go, the sequence
 * opened (and the catalog owner, who may set it, looked up) and the lock
 * taken again.
 */
static void
partition_append(PgqTopic *topic, int32 partition, PgqRecord **recs, int nrecs,
				 const PgqProducerArgs *producer)
{
	PgqPartitionState *state;
	Relation	rel;
	Relation	index;
	Relation	producer_index = NULL;
	IndexInfo  *index_info;
	IndexInfo  *producer_index_info = NULL;
	Oid			incarnation;
	TupleDesc	desc;
	CommandId	cid = GetCurrentCommandId(true);
	Relation	floor_seq = NULL;
	Oid			owner = InvalidOid;
	bool		may_toast = records_may_toast(recs, nrecs);
	int			i;

	/*
	 * Open the newest segment we know of and take the append lock; if the
	 * worker is rolling the partition over to a new segment, wait for it,
	 * and if it did, start again with the new segment.
	 */
	for (;;)
	{
		PgqPartitionInfo *info = topic_partition_info(topic, partition);
		Oid			relid = info->segments[info->nsegments - 1].relid;
		PgqProducerVerdict verdict = PRODUCER_APPEND;
		int64		first_offset = 0;
		TransactionId xid = InvalidTransactionId;

		incarnation = info->offset_floor;
		if (producer != NULL)
			producer_state_ensure(topic, partition, incarnation, producer);
		rel = segment_open(topic, relid, RowExclusiveLock);
		index = index_open(segment_index(rel), RowExclusiveLock);
		if (producer != NULL)
			producer_index = index_open(segment_producer_index(rel), RowExclusiveLock);
		if (may_toast)
			segment_lock_toast(rel);
		state = partition_state_lookup(topic->topic_id, partition, info->offset_floor, true);
		partition_ensure_loaded(topic, partition, state);

		LWLockAcquire(&state->append_lock, LW_EXCLUSIVE);
		if (state->rolling || state->active_relid != relid)
		{
			LWLockRelease(&state->append_lock);
			/* wait while still holding the segment's lock, which keeps state valid */
			partition_wait_roll(topic->topic_id, state);
			if (producer_index != NULL)
				index_close(producer_index, RowExclusiveLock);
			index_close(index, RowExclusiveLock);
			table_close(rel, RowExclusiveLock);
			topic_partition_info_forget(topic, partition);
			continue;
		}
		if (floor_seq == NULL &&
			(int64) pg_atomic_read_u64(&state->next_offset) + nrecs > state->floor)
		{
			LWLockRelease(&state->append_lock);
			floor_seq = relation_open(info->offset_floor, RowExclusiveLock);
			owner = catalog_owner();	/* a catalog lookup: not under the lock */
			if (producer_index != NULL)
				index_close(producer_index, NoLock);
			index_close(index, NoLock);
			table_close(rel, NoLock);
			continue;
		}
		if (producer != NULL)
			verdict = producer_check(topic, partition, incarnation, producer, nrecs,
									 &first_offset, &xid);
		if (verdict == PRODUCER_APPEND)
			break;

		LWLockRelease(&state->append_lock);
		index_close(producer_index, NoLock);
		index_close(index, NoLock);
		table_close(rel, NoLock);
		if (verdict == PRODUCER_DUPLICATE)
		{
			/* a retry: the records are there already */
			for (i = 0; i < nrecs; i++)
				recs[i]->offset = first_offset + i;
			if (floor_seq != NULL)
				relation_close(floor_seq, NoLock);
			return;
		}
		if (verdict == PRODUCER_WAIT)
			XactLockTableWait(xid, NULL, NULL, XLTW_None);
		/* and look again (PRODUCER_RELOAD: the state is loaded first) */
	}
	index_info = BuildIndexInfo(index);
	if (producer_index != NULL)
		producer_index_info = BuildIndexInfo(producer_index);
	desc = RelationGetDescr(rel);

	for (i = 0; i < nrecs; i++)
	{
		PgqRecord  *rec = recs[i];
		Datum		values[SEG_NATTS];
		bool		nulls[SEG_NATTS];
		HeapTuple	tuple;
		bool		index_null = false;

		/*
		 * The append lock holds off interrupts, but a big batch must stay
		 * cancellable (and stoppable by statement_timeout): a cancel or
		 * terminate request ends the append with the error it asks for.
		 * The records inserted so far roll back with the transaction; their
		 * offsets become gaps, as those of any failed send.
		 */
		if (unlikely(QueryCancelPending || ProcDiePending))
		{
			LWLockRelease(&state->append_lock);
			CHECK_FOR_INTERRUPTS();
			/* not reached unless the request was withdrawn meanwhile */
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling statement due to user request")));
		}

		/*
		 * Advance the counter before inserting: if the insert fails, the
		 * offset is a gap rather than reused.
		 */
		rec->offset = (int64) pg_atomic_read_u64(&state->next_offset);
		if (rec->offset >= state->floor)
		{
			/* one raise covers the rest of the records */
			int64		floor = rec->offset + (nrecs - i) + PGQ_OFFSET_FLOOR_STEP;

			Assert(floor_seq != NULL);
			offset_floor_raise(RelationGetRelid(floor_seq), floor, owner);
			state->floor = floor;
		}
		pg_atomic_write_u64(&state->next_offset, (uint64) (rec->offset + 1));

		values[SEG_OFFSET] = Int64GetDatum(rec->offset);
		nulls[SEG_OFFSET] = false;
		values[SEG_TIMESTAMP] = TimestampTzGetDatum(rec->timestamp);
		nulls[SEG_TIMESTAMP] = false;
		values[SEG_KEY] = rec->key;
		nulls[SEG_KEY] = rec->key == (Datum) 0;
		values[SEG_VALUE] = rec->value;
		nulls[SEG_VALUE] = rec->value == (Datum) 0;
		values[SEG_HEADERS] = rec->headers;
		nulls[SEG_HEADERS] = rec->headers == (Datum) 0;
		if (producer != NULL)
		{
			values[SEG_PRODUCER_ID] = Int64GetDatum(producer->producer_id);
			values[SEG_PRODUCER_EPOCH] = Int32GetDatum(producer->epoch);
			values[SEG_SEQUENCE] = Int32GetDatum(producer->sequence + i);
		}
		nulls[SEG_PRODUCER_ID] = nulls[SEG_PRODUCER_EPOCH] = nulls[SEG_SEQUENCE] = producer == NULL;

		tuple = heap_form_tuple(desc, values, nulls);
		heap_insert(rel, tuple, cid, 0, NULL);
		index_insert(index, &values[SEG_OFFSET], &index_null, &tuple->t_self, rel,
					 UNIQUE_CHECK_NO, false, index_info);
		if (producer != NULL)
		{
			bool		producer_nulls[3] = {false, false, false};

			index_insert(producer_index, &values[SEG_PRODUCER_ID], producer_nulls, &tuple->t_self,
						 rel, UNIQUE_CHECK_NO, false, producer_index_info);
		}
		heap_freetuple(tuple);
	}
	if (producer != NULL)
		producer_record(topic->topic_id, partition, incarnation, producer, nrecs, recs[0]->offset);
	LWLockRelease(&state->append_lock);
	send_wakeup_register(topic->topic_id);

	if (floor_seq != NULL)
		relation_close(floor_seq, NoLock);
	if (producer_index != NULL)
		index_close(producer_index, NoLock);
	index_close(index, NoLock);
	table_close(rel, NoLock);
}

static void
send_prologue(PgqTopic *topic)
{
	PreventCommandIfReadOnly("pgq_send()");
	topic_check_privilege(topic, PGQ_PRIV_PRODUCE);
}

static int32
arg_partition(FunctionCallInfo fcinfo, int argno, bool *given)
{
	*given = !PG_ARGISNULL(argno);
	return *given ? PG_GETARG_INT32(argno) : -1;
}

/* pgq_send_batch's rows, in materialize mode */
static void
return_offsets(FunctionCallInfo fcinfo, PgqRecord *recs, int nrecs)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i < nrecs; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int32GetDatum(recs[i].partition);
		values[1] = Int64GetDatum(recs[i].offset);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * pgq_send's one row, in value-per-call mode: a function that returns a
 * value and leaves isDone alone has returned a one-row set (see the fmgr
 * README), which spares the tuplestore that materialize mode needs.  The
 * executor passes the expected row type wherever a set may be returned; its
 * blessed copy is kept for the query's later calls in fn_extra.
 */
static Datum
return_offset(FunctionCallInfo fcinfo, PgqRecord *rec)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_ValuePerCall) || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		desc = BlessTupleDesc(CreateTupleDescCopy(rsinfo->expectedDesc));
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = desc;
	}
	values[0] = Int32GetDatum(rec->partition);
	values[1] = Int64GetDatum(rec->offset);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * pgq_send(topic, value, key, partition, headers, timestamp): one C function
 * behind every overload; the value and key types come from the call.
 */
Datum
pgq_send(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	PgqTopic   *topic = topic_lookup(name, false);
	PgqRecord	rec;
	PgqRecord  *recp = &rec;
	bool		explicit_partition;
	PgqProducerArgs producer;
	bool		idempotent;

	send_prologue(topic);
	idempotent = producer_args_get(fcinfo, 6, &producer);
	if (idempotent)
		producer_check_epoch(&producer);

	memset(&rec, 0, sizeof(rec));
	if (!PG_ARGISNULL(1))
		rec.value = payload_bytes(PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1));
	if (!PG_ARGISNULL(2))
		rec.key = payload_bytes(PG_GETARG_DATUM(2), get_fn_expr_argtype(fcinfo->flinfo, 2));
	rec.partition = arg_partition(fcinfo, 3, &explicit_partition);
	if (!PG_ARGISNULL(4))
		rec.headers = JsonbPGetDatum(headers_prepare(PG_GETARG_JSONB_P(4)));
	rec.timestamp = PG_ARGISNULL(5) ? GetCurrentTimestamp() : PG_GETARG_TIMESTAMPTZ(5);

	record_prepare(topic, &rec, explicit_partition, idempotent ? &producer : NULL);
	partition_append(topic, rec.partition, &recp, 1, idempotent ? &producer : NULL);

	return return_offset(fcinfo, &rec);
}

static int
compare_record_partition(const void *a, const void *b)
{
	const PgqRecord *ra = *(PgqRecord *const *) a;
	const PgqRecord *rb = *(PgqRecord *const *) b;

	if (ra->partition != rb->partition)
		return ra->partition < rb->partition ? -1 : 1;
	/* keep the input order within a partition */
	return ra < rb ? -1 : (ra > rb ? 1 : 0);
}

static void
array_elements(ArrayType *array, Datum **elems, bool **nulls, int *n)
{
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("pgq_send_batch takes one-dimensional arrays")));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, elems, nulls, n);
}

/*
 * The elements of one of pgq_send_batch's optional per-record arrays
 * (argument argno), which must have one element per value; *elems is left
 * NULL if the argument is NULL.
 */
static void
batch_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int nvalues,
				Datum **elems, bool **nulls, Oid *elemtype)
{
	ArrayType  *array;
	int			n;

	*elems = NULL;
	*nulls = NULL;
	if (PG_ARGISNULL(argno))
		return;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	array_elements(array, elems, nulls, &n);
	if (elemtype != NULL)
		*elemtype = ARR_ELEMTYPE(array);
	if (n != nvalues)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s has %d elements but values has %d", argname, n, nvalues)));
}

/*
 * pgq_send_batch(topic, values[], keys[], partition, headers[], timestamps[],
 * producer_id, producer_epoch, sequence): records are grouped by partition,
 * and each partition's records are appended in input order under one
 * acquisition of its append lock, so that they get consecutive offsets;
 * partitions are appended in partition order (no lock cycles between
 * concurrent batches).  The result is in input order.
 *
 * Holding the lock for a partition's whole share of the batch makes the
 * partition's other senders wait for it (a few microseconds per record: a
 * few tens of milliseconds for Kafka's 10,000-record batches), which is
 * what a contiguous range costs: the ordering argument (fetch.c) needs
 * offsets to be inserted in offset order under the lock, so a range cannot
 * be reserved first and filled in later.  A cancel or terminate request
 * still stops a long append (see partition_append).
 */
Datum
pgq_send_batch(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	PgqTopic   *topic = topic_lookup(name, false);
	Oid			value_type;
	Oid			key_type = InvalidOid;
	Datum	   *values;
	bool	   *value_nulls;
	Datum	   *keys;
	bool	   *key_nulls;
	Datum	   *headers;
	bool	   *header_nulls;
	Datum	   *timestamps;
	bool	   *timestamp_nulls;
	int			n;
	int32		partition;
	bool		explicit_partition;
	TimestampTz now = GetCurrentTimestamp();
	PgqRecord  *recs;
	PgqRecord **order;
	PgqProducerArgs producer;
	bool		idempotent;
	int			i;

	send_prologue(topic);
	idempotent = producer_args_get(fcinfo, 6, &producer);
	if (idempotent)
		producer_check_epoch(&producer);

	array_elements(DatumGetArrayTypeP(pgq_require_arg(fcinfo, 1, "values")),
				   &values, &value_nulls, &n);
	value_type = ARR_ELEMTYPE(PG_GETARG_ARRAYTYPE_P(1));
	batch_array_arg(fcinfo, 2, "keys", n, &keys, &key_nulls, &key_type);
	partition = arg_partition(fcinfo, 3, &explicit_partition);
	batch_array_arg(fcinfo, 4, "headers", n, &headers, &header_nulls, NULL);
	batch_array_arg(fcinfo, 5, "timestamps", n, &timestamps, &timestamp_nulls, NULL);

	recs = palloc0(sizeof(PgqRecord) * Max(n, 1));
	order = palloc(sizeof(PgqRecord *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		PgqRecord  *rec = &recs[i];

		if (!value_nulls[i])
			rec->value = payload_bytes(values[i], value_type);
		if (keys != NULL && !key_nulls[i])
			rec->key = payload_bytes(keys[i], key_type);
		if (headers != NULL && !header_nulls[i])
		{
			Jsonb	   *given = DatumGetJsonbP(headers[i]);
			Jsonb	   *stored = headers_prepare(given);

			/* an object is stored as it came, in the array's (packed) form */
			rec->headers = stored == given ? headers[i] : JsonbPGetDatum(stored);
		}
		/* Kafka's CreateTime: the producer's timestamp as given */
		rec->timestamp = (timestamps != NULL && !timestamp_nulls[i]) ?
			DatumGetTimestampTz(timestamps[i]) : now;
		rec->partition = partition;
		record_prepare(topic, rec, explicit_partition, idempotent ? &producer : NULL);
		order[i] = rec;
		if (idempotent && rec->partition != recs[0].partition)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the records of an idempotent batch must go to one partition"),
					 errdetail("Record %d goes to partition %d, record 1 to partition %d.",
							   i + 1, rec->partition, recs[0].partition),
					 errhint("Send one batch per partition: a producer's sequence numbers count per partition.")));
	}

	/* an idempotent batch has one partition: its sequences are one run */
	qsort(order, n, sizeof(PgqRecord *), compare_record_partition);
	for (i = 0; i < n;)
	{
		int			j = i;

		while (j < n && order[j]->partition == order[i]->partition)
			j++;
		partition_append(topic, order[i]->partition, &order[i], j - i,
						 idempotent ? &producer : NULL);
		i = j;
		CHECK_FOR_INTERRUPTS();
	}

	return_offsets(fcinfo, recs, n);
	return (Datum) 0;
}
