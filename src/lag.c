/*-------------------------------------------------------------------------
 *
 * lag.c
 *	  Consumer lag for monitoring: pgqueue.lag_info(), behind the pgq_lag
 *	  view, which pg_monitor may read without any right on the topics.
 *
 * One row per (group, topic, partition) for every topic a group has
 * committed offsets for or live members on, every partition of the topic.
 *
 * Vocabulary (besides pgqueue.h's and consumer.h's):
 *
 *	start offset		where the group reads the partition next: its
 *						committed offset, or the log start if it has none or
 *						retention passed it (auto.offset.reset = earliest, the
 *						default).
 *	first unconsumed record		the first record at or after the start
 *						offset that a reader may be served now: visible to the
 *						snapshot and below the last stable offset.  Offsets of
 *						rolled-back sends (gaps) before it are skipped.
 *	lag					the last stable offset minus the first unconsumed
 *						record's offset, or 0 if there is none.  It counts
 *						offsets: gaps after the first unconsumed record count
 *						too (rolled-back sends, and the up to 32 offsets a
 *						partition skips at a restart), so it is an upper bound
 *						on the records left, exact without such gaps.  It is 0
 *						exactly when the group has read everything readable,
 *						gaps or not (SPEC §10).
 *	lag_ms				now minus the first unconsumed record's timestamp (0 if
 *						there is none, or if that timestamp is in the future):
 *						how long the oldest record the group has not processed
 *						has been waiting.  The timestamp is the producer's
 *						(pgq_send's "timestamp", the time of the send by
 *						default).
 *	metadata			the string the committed offset was committed with
 *						(Kafka's OffsetCommit metadata), or NULL.
 *
 * Cost: the partition's last stable offset as pgq_partitions computes it
 * (from its stable hint, which the scan advances), then one index probe per
 * distinct start offset.  No record is counted; the log is never scanned.
 *
 * Never an error for a topic dropped while the function runs, a committed
 * offset below the log start, or an empty partition.  The segments of the
 * partition being looked at are locked (AccessShareLock) oldest first, the
 * order pgq_drop_topic takes them in, so that the two cannot deadlock; a
 * segment that retention dropped before it was locked makes the partition
 * be looked up again, and a partition whose newest segment is gone belongs
 * to a dropped topic.  As a last resort each topic's work runs in a
 * subtransaction: an "undefined object" error there, when the topic is then
 * found gone, drops the topic's rows instead of failing the query.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "catalog.h"
#include "fetch.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(pgq_lag_info);

/* A group's committed offset of a partition, from pgqueue.group_offset. */
typedef struct Committed
{
	int32		topic_id;
	char	   *group_id;
	int32		partition;
	int64		offset;
	bool		at_null;
	TimestampTz at;				/* when it was committed */
	char	   *metadata;		/* the committer's string, or NULL */
} Committed;

/* A live member's partitions of a topic, from pgqueue.members_info(). */
typedef struct Member
{
	int32		topic_id;
	char	   *group_id;
	char	   *member_id;
	Datum	   *partitions;
	int			npartitions;
} Member;

/* A (topic, group) to report: the group has committed offsets or members. */
typedef struct GroupTopic
{
	int32		topic_id;
	char	   *group_id;
} GroupTopic;

/* What is known of the groups and topics, as the catalog has it now. */
typedef struct LagCatalog
{
	Committed  *committed;		/* sorted by topic, group, partition */
	int			ncommitted;
	Member	   *members;
	int			nmembers;
	GroupTopic *pairs;			/* sorted by topic, group; no duplicates */
	int			npairs;
} LagCatalog;

/* One row of the result. */
typedef struct LagRow
{
	char	   *group_id;
	char	   *topic;
	int32		partition;
	Committed  *committed;		/* NULL: none */
	char	   *owner;			/* NULL: none */
	int64		log_start_offset;
	int64		high_watermark;
	int64		last_stable_offset;
	int64		lag;
	bool		found;			/* a first unconsumed record exists */
	int64		first_offset;
	bool		first_ts_null;
	TimestampTz first_timestamp;
} LagRow;

#define LAG_INFO_NATTS	14

static int
committed_cmp(const void *a, const void *b)
{
	const Committed *x = a;
	const Committed *y = b;
	int			c;

	if (x->topic_id != y->topic_id)
		return x->topic_id < y->topic_id ? -1 : 1;
	c = strcmp(x->group_id, y->group_id);
	if (c != 0)
		return c;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static int
group_topic_cmp(const void *a, const void *b)
{
	const GroupTopic *x = a;
	const GroupTopic *y = b;

	if (x->topic_id != y->topic_id)
		return x->topic_id < y->topic_id ? -1 : 1;
	return strcmp(x->group_id, y->group_id);
}

/*
 * Reads the committed offsets and the live members, as the catalog owner,
 * into the current memory context.  Two plain statements, joined here: the
 * planner's guesses for a join with members_info() and the partitions of
 * each topic are far off, and made a single statement costly enough to be
 * JIT-compiled on every call.  Each partition has one committed offset
 * version per snapshot (see commit.c).
 */
static void
lag_catalog_read(LagCatalog *cat)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;
	int			k;
	int			n;

	SPI_connect();
	catalog_query("SELECT o.topic_id, o.group_id, o.partition, o.committed_offset, o.committed_at,"
				  "       o.metadata"
				  "  FROM " PGQ_SCHEMA ".group_offset o",
				  0, NULL, NULL, NULL, true);
	MemoryContextSwitchTo(cxt);
	cat->committed = palloc(sizeof(Committed) * Max(SPI_processed, 1));
	cat->ncommitted = (int) SPI_processed;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Committed  *c = &cat->committed[i];
		bool		isnull;
		Datum		d;

		c->topic_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		c->group_id = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
		c->partition = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
		c->offset = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		d = SPI_getbinval(tuple, desc, 5, &c->at_null);
		c->at = c->at_null ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tuple, desc, 6, &isnull);
		c->metadata = isnull ? NULL : TextDatumGetCString(d);
	}

	catalog_query("SELECT m.topic_id, m.group_id, m.member_id, m.partitions"
				  "  FROM " PGQ_SCHEMA ".members_info() m",
				  0, NULL, NULL, NULL, true);
	MemoryContextSwitchTo(cxt);
	cat->members = palloc(sizeof(Member) * Max(SPI_processed, 1));
	cat->nmembers = (int) SPI_processed;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Member	   *m = &cat->members[i];
		bool		isnull;

		m->topic_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		m->group_id = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
		m->member_id = TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull));
		deconstruct_array(DatumGetArrayTypePCopy(SPI_getbinval(tuple, desc, 4, &isnull)),
						  INT4OID, 4, true, TYPALIGN_INT, &m->partitions, NULL,
						  &m->npartitions);
	}
	SPI_finish();

	qsort(cat->committed, cat->ncommitted, sizeof(Committed), committed_cmp);
	cat->pairs = palloc(sizeof(GroupTopic) * Max(cat->ncommitted + cat->nmembers, 1));
	n = 0;
	for (k = 0; k < cat->ncommitted; k++)
	{
		cat->pairs[n].topic_id = cat->committed[k].topic_id;
		cat->pairs[n++].group_id = cat->committed[k].group_id;
	}
	for (k = 0; k < cat->nmembers; k++)
	{
		cat->pairs[n].topic_id = cat->members[k].topic_id;
		cat->pairs[n++].group_id = cat->members[k].group_id;
	}
	qsort(cat->pairs, n, sizeof(GroupTopic), group_topic_cmp);
	cat->npairs = 0;
	for (k = 0; k < n; k++)
		if (cat->npairs == 0 || group_topic_cmp(&cat->pairs[cat->npairs - 1], &cat->pairs[k]) != 0)
			cat->pairs[cat->npairs++] = cat->pairs[k];
}

static Committed *
committed_find(LagCatalog *cat, int32 topic_id, char *group_id, int32 partition)
{
	Committed	key;

	key.topic_id = topic_id;
	key.group_id = group_id;
	key.partition = partition;
	return bsearch(&key, cat->committed, cat->ncommitted, sizeof(Committed), committed_cmp);
}

/* The live member owning a partition; two cannot, but then the first. */
static char *
owner_find(LagCatalog *cat, int32 topic_id, char *group_id, int32 partition)
{
	int			i;
	int			j;

	for (i = 0; i < cat->nmembers; i++)
	{
		Member	   *m = &cat->members[i];

		if (m->topic_id != topic_id || strcmp(m->group_id, group_id) != 0)
			continue;
		for (j = 0; j < m->npartitions; j++)
			if (DatumGetInt32(m->partitions[j]) == partition)
				return m->member_id;
	}
	return NULL;
}

static void
partition_unlock_segments(PgqPartitionInfo *info)
{
	int			s;

	for (s = info->nsegments - 1; s >= 0; s--)
		UnlockRelationOid(info->segments[s].relid, AccessShareLock);
}

/*
 * Locks every segment of a partition, oldest first (pgq_drop_topic's
 * order), so that neither retention nor a drop can remove one while the
 * partition is looked at.  Returns the partition's info, or NULL (nothing
 * locked) if its newest segment is gone: the topic was dropped.
 */
static PgqPartitionInfo *
partition_lock_segments(PgqTopic *topic, int32 partition)
{
	for (;;)
	{
		PgqPartitionInfo *info = topic_partition_info(topic, partition);
		bool		newest_gone;
		bool		older_gone = false;
		int			s;

		CHECK_FOR_INTERRUPTS();
		for (s = 0; s < info->nsegments; s++)
			LockRelationOid(info->segments[s].relid, AccessShareLock);
		newest_gone = !SearchSysCacheExists1(RELOID,
											 ObjectIdGetDatum(info->segments[info->nsegments - 1].relid));
		for (s = 0; s < info->nsegments - 1; s++)
			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(info->segments[s].relid)))
				older_gone = true;
		if (!newest_gone && !older_gone)
			return info;

		partition_unlock_segments(info);
		if (newest_gone)
			return NULL;
		/* retention dropped segments since the partition was looked up */
		topic_partition_info_forget(topic, partition);
	}
}

typedef struct FirstRecord
{
	bool		found;
	int64		offset;
	bool		ts_null;
	TimestampTz timestamp;
} FirstRecord;

static bool
first_record_note(void *arg, int64 offset, HeapTuple tuple, TupleDesc desc)
{
	FirstRecord *fr = (FirstRecord *) arg;
	bool		isnull;
	Datum		ts = heap_getattr(tuple, SEG_TIMESTAMP + 1, desc, &isnull);

	fr->found = true;
	fr->offset = offset;
	fr->ts_null = isnull;
	fr->timestamp = isnull ? 0 : DatumGetTimestampTz(ts);
	return false;				/* one record is all we want */
}

/*
 * The rows of one topic, for the groups pairs[0..n): per partition, per
 * group.  NIL if the topic was dropped.
 */
static List *
topic_lag(LagCatalog *cat, GroupTopic *pairs, int n)
{
	int32		topic_id = pairs[0].topic_id;
	PgqTopic   *topic = topic_lookup_by_id(topic_id);
	char	   *name;
	List	   *rows = NIL;
	int32		p;

	if (topic == NULL)
		return NIL;
	name = pstrdup(topic->name);

	for (p = 0; p < topic->partitions; p++)
	{
		PgqPartitionInfo *info = partition_lock_segments(topic, p);
		int64		hwm;
		int64		lso;
		int64		probed = -1;	/* the start offset fr is for */
		FirstRecord fr = {false, 0, false, 0};
		int			k;

		if (info == NULL)
			return NIL;
		lso = partition_last_stable_offset(topic, p, &hwm);

		for (k = 0; k < n; k++)
		{
			LagRow	   *row = palloc0(sizeof(LagRow));
			int64		start = info->log_start_offset;

			CHECK_FOR_INTERRUPTS();
			row->group_id = pairs[k].group_id;
			row->topic = name;
			row->partition = p;
			row->committed = committed_find(cat, topic_id, pairs[k].group_id, p);
			row->owner = owner_find(cat, topic_id, pairs[k].group_id, p);
			if (row->committed != NULL)
				start = Max(start, row->committed->offset);
			if (start != probed)
			{
				bool		pending;
				bool		gone = false;

				memset(&fr, 0, sizeof(fr));
				(void) partition_scan(topic, p, start, 1, GetActiveSnapshot(),
									  first_record_note, &fr, &pending, &gone);
				probed = start;
			}
			row->log_start_offset = info->log_start_offset;
			row->high_watermark = hwm;
			row->last_stable_offset = lso;
			row->found = fr.found;
			row->first_offset = fr.offset;
			row->first_ts_null = fr.ts_null;
			row->first_timestamp = fr.timestamp;
			/* (a record served from the same snapshot is below the LSO) */
			row->lag = fr.found ? Max(lso - fr.offset, 1) : 0;
			rows = lappend(rows, row);
		}
		partition_unlock_segments(info);
	}
	return rows;
}

/*
 * topic_lag in a subtransaction: an "undefined object" error (a topic
 * dropped concurrently, which the locking of partition_lock_segments should
 * already have noticed) yields no rows if the topic is then gone.  Other
 * errors, and that one for a topic that still exists, are raised.
 */
static List *
topic_lag_guarded(LagCatalog *cat, GroupTopic *pairs, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	List	   *volatile rows = NIL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		rows = topic_lag(cat, pairs, n);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		if (edata->sqlerrcode != ERRCODE_UNDEFINED_OBJECT ||
			topic_lookup_by_id(pairs[0].topic_id) != NULL)
			ReThrowError(edata);
		FreeErrorData(edata);
		rows = NIL;
	}
	PG_END_TRY();
	return rows;
}

static void
lag_row_put(ReturnSetInfo *rsinfo, LagRow *row, TimestampTz now)
{
	Datum		values[LAG_INFO_NATTS];
	bool		nulls[LAG_INFO_NATTS];
	int64		lag_ms = 0;

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(row->group_id);
	values[1] = CStringGetTextDatum(row->topic);
	values[2] = Int32GetDatum(row->partition);
	values[3] = Int64GetDatum(row->committed != NULL ? row->committed->offset : 0);
	nulls[3] = row->committed == NULL;
	values[4] = TimestampTzGetDatum(row->committed != NULL ? row->committed->at : 0);
	nulls[4] = row->committed == NULL || row->committed->at_null;
	values[5] = Int64GetDatum(row->log_start_offset);
	values[6] = Int64GetDatum(row->high_watermark);
	values[7] = Int64GetDatum(row->last_stable_offset);
	values[8] = Int64GetDatum(row->lag);
	values[9] = Int64GetDatum(row->first_offset);
	nulls[9] = !row->found;
	values[10] = TimestampTzGetDatum(row->first_timestamp);
	nulls[10] = !row->found || row->first_ts_null;
	if (row->found && !row->first_ts_null && row->first_timestamp < now)
		lag_ms = (now - row->first_timestamp) / 1000;	/* microseconds */
	values[11] = Int64GetDatum(lag_ms);
	values[12] = row->owner != NULL ? CStringGetTextDatum(row->owner) : (Datum) 0;
	nulls[12] = row->owner == NULL;
	values[13] = row->committed != NULL && row->committed->metadata != NULL ?
		CStringGetTextDatum(row->committed->metadata) : (Datum) 0;
	nulls[13] = row->committed == NULL || row->committed->metadata == NULL;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * pgqueue.lag_info(): the rows of the pgq_lag view (see the header).  It
 * reads records whatever the caller's rights on the topics, so EXECUTE is
 * granted to pg_monitor only (pgqueue--0.4.0.sql).
 */
Datum
pgq_lag_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	TimestampTz now = GetCurrentTimestamp();
	LagCatalog	cat;
	int			i;
	int			j;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	lag_catalog_read(&cat);
	for (i = 0; i < cat.npairs; i = j)
	{
		ListCell   *lc;

		for (j = i; j < cat.npairs && cat.pairs[j].topic_id == cat.pairs[i].topic_id; j++)
			;
		CHECK_FOR_INTERRUPTS();
		foreach(lc, topic_lag_guarded(&cat, &cat.pairs[i], j - i))
			lag_row_put(rsinfo, lfirst(lc), now);
	}
	return (Datum) 0;
}
