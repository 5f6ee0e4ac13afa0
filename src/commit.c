/*-------------------------------------------------------------------------
 *
 * commit.c
 *	  Committed offsets: their log in pgqueue.group_offset, writing and
 *	  reading them, pgq_commit (a member's positions, or one offset) and
 *	  pgq_committed_offsets.
 *
 * A committed offset may carry a metadata string (Kafka's OffsetCommit
 * metadata, which some clients store and read back), given by the commit
 * of an explicit offset; every commit sets it anew (NULL when not given),
 * as in Kafka.
 *
 * Fencing: a commit first writes the offsets' new versions, then checks
 * in shared memory that the member still owns each partition with a fresh
 * lease, and raises object_not_in_prerequisite_state if not, which undoes
 * the writes.  A member that is not in the group on the topic at all (a
 * client that assigns itself partitions: Kafka's commits with generation
 * -1) may commit an explicit offset only while the group has no live
 * member on the topic, as Kafka accepts such commits only into an empty
 * group; its commit is checked after the write, and it is not pinned.  The check is made again just before the transaction commits
 * (position.c), so a transaction whose member lost a partition meanwhile
 * fails as a whole.  A new owner only takes a partition after the old owner
 * released it (at the end of the old owner's transaction that used it) or
 * its lease expired, so a zombie's commit cannot overwrite the new owner's
 * progress.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "consumer.h"
#include "fetch.h"

PG_FUNCTION_INFO_V1(pgq_commit);
PG_FUNCTION_INFO_V1(pgq_commit_offset);
PG_FUNCTION_INFO_V1(pgq_committed_offsets);

/* ----------------------------------------------------------------
 * The offset log
 * ----------------------------------------------------------------
 */

/*
 * Committed offsets are an append-only log in pgqueue.group_offset: a commit
 * deletes the partition's newest version and inserts the next one, in its
 * own transaction, so every snapshot sees one row per (group, topic,
 * partition) and the current one is found from the newest end of the
 * primary key without visiting older versions.  (A row updated in place
 * would keep a version per commit while some snapshot holds back xmin, and
 * every later commit would walk them all.)
 *
 * Deleting the newest version first orders concurrent commits of one
 * partition: the second waits on the first's delete and, if the first
 * commits, reads the newest version again (READ COMMITTED) or fails with a
 * serialization error (REPEATABLE READ), as an UPDATE would.  The first
 * version of a partition has nothing to delete: it is inserted with ON
 * CONFLICT DO NOTHING, and the loser of a race for it goes round again.
 *
 * Versions after the first are written here directly, not through the
 * executor (a commit per batch of records is on the hot path of a
 * consumer), so the table has no foreign key or trigger, and its only index
 * is the primary key (checked).
 */
#define Anum_group_offset_group_id			1
#define Anum_group_offset_topic_id			2
#define Anum_group_offset_partition			3
#define Anum_group_offset_version			4
#define Anum_group_offset_committed_offset	5
#define Anum_group_offset_committed_at		6
#define Anum_group_offset_metadata			7
#define Natts_group_offset					7

/* Kafka's default offset.metadata.max.bytes */
#define PGQ_OFFSET_METADATA_MAX				4096

typedef struct OffsetLog
{
	Relation	rel;
	Relation	index;			/* its primary key, on the first 4 columns */
	IndexInfo  *index_info;		/* for writing: set by offsets_write */
	/* while reading (offset_log_begin_read): */
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[3];		/* group, topic, partition */
} OffsetLog;

static void
offset_log_open(OffsetLog *log, LOCKMODE lockmode)
{
	Oid			relid = get_relname_relid("group_offset", get_namespace_oid(PGQ_SCHEMA, false));
	List	   *indexes;

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.group_offset does not exist", PGQ_SCHEMA);
	log->rel = table_open(relid, lockmode);
	indexes = RelationGetIndexList(log->rel);
	if (RelationGetDescr(log->rel)->natts != Natts_group_offset || list_length(indexes) != 1)
		elog(ERROR, "table %s.group_offset does not have the expected columns and index",
			 PGQ_SCHEMA);
	log->index = index_open(linitial_oid(indexes), lockmode);
	log->index_info = NULL;
	log->scan = NULL;
	list_free(indexes);
}

static void
offset_log_close(OffsetLog *log)
{
	index_close(log->index, NoLock);
	table_close(log->rel, NoLock);
}

/*
 * Starts reading a group's offsets of a topic as of the active snapshot: one
 * index scan, restarted for each partition looked up.
 */
static void
offset_log_begin_read(OffsetLog *log, const char *group_id, int32 topic_id)
{
	/* index columns = table columns; group_id compared in the index's collation */
	ScanKeyEntryInitialize(&log->keys[0], 0, Anum_group_offset_group_id, BTEqualStrategyNumber,
						   InvalidOid, log->index->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(group_id));
	ScanKeyInit(&log->keys[1], Anum_group_offset_topic_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(topic_id));
	ScanKeyInit(&log->keys[2], Anum_group_offset_partition, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(0));
	log->slot = table_slot_create(log->rel, NULL);
	log->scan = index_beginscan(log->rel, log->index, GetActiveSnapshot(), 3, 0);
}

static void
offset_log_end_read(OffsetLog *log)
{
	index_endscan(log->scan);
	ExecDropSingleTupleTableSlot(log->slot);
	log->scan = NULL;
}

/*
 * The newest version of a partition's committed offset visible to the
 * snapshot of the read: false if there is none.
 */
static bool
offset_log_newest(OffsetLog *log, int32 partition, int64 *version, int64 *offset, ItemPointer tid)
{
	bool		isnull;

	log->keys[2].sk_argument = Int32GetDatum(partition);
	index_rescan(log->scan, log->keys, 3, NULL, 0);
	if (!index_getnext_slot(log->scan, BackwardScanDirection, log->slot))
		return false;
	*version = DatumGetInt64(slot_getattr(log->slot, Anum_group_offset_version, &isnull));
	*offset = DatumGetInt64(slot_getattr(log->slot, Anum_group_offset_committed_offset, &isnull));
	*tid = log->slot->tts_tid;
	return true;
}

/* The metadata of the version offset_log_newest found last (palloc'd), or NULL. */
static char *
offset_log_newest_metadata(OffsetLog *log)
{
	bool		isnull;
	Datum		d = slot_getattr(log->slot, Anum_group_offset_metadata, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Inserts a version (not the first: see offset_log_insert_first). */
static void
offset_log_insert(OffsetLog *log, const char *group_id, int32 topic_id, int32 partition,
				  int64 version, int64 offset, const char *metadata)
{
	Datum		values[Natts_group_offset];
	bool		nulls[Natts_group_offset] = {false, false, false, false, false, false, false};
	HeapTuple	tuple;

	values[Anum_group_offset_group_id - 1] = CStringGetTextDatum(group_id);
	values[Anum_group_offset_topic_id - 1] = Int32GetDatum(topic_id);
	values[Anum_group_offset_partition - 1] = Int32GetDatum(partition);
	values[Anum_group_offset_version - 1] = Int64GetDatum(version);
	values[Anum_group_offset_committed_offset - 1] = Int64GetDatum(offset);
	values[Anum_group_offset_committed_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[Anum_group_offset_metadata - 1] = metadata != NULL ? CStringGetTextDatum(metadata) : (Datum) 0;
	nulls[Anum_group_offset_metadata - 1] = metadata == NULL;
	tuple = heap_form_tuple(RelationGetDescr(log->rel), values, nulls);
	heap_insert(log->rel, tuple, GetCurrentCommandId(true), 0, NULL);
	/* the key is the first 4 columns */
	(void) index_insert(log->index, values, nulls, &tuple->t_self, log->rel,
						UNIQUE_CHECK_YES, false, log->index_info);
	heap_freetuple(tuple);
}

static SPIPlanPtr offset_insert_first_plan = NULL;
static SPIPlanPtr offset_insert_first_metadata_plan = NULL;

/* Inserts a partition's first version; false if a concurrent commit did. */
static bool
offset_log_insert_first(const char *group_id, int32 topic_id, int32 partition, int64 offset,
						const char *metadata)
{
	Oid			argtypes[5] = {TEXTOID, INT4OID, INT4OID, INT8OID, TEXTOID};
	Datum		args[5];
	bool		inserted;

	args[0] = CStringGetTextDatum(group_id);
	args[1] = Int32GetDatum(topic_id);
	args[2] = Int32GetDatum(partition);
	args[3] = Int64GetDatum(offset);
	SPI_connect();
	/* (two statements: a saved plan takes no NULL argument) */
	if (metadata == NULL)
		catalog_query_saved(&offset_insert_first_plan,
							"INSERT INTO " PGQ_SCHEMA ".group_offset"
							"       (group_id, topic_id, partition, version, committed_offset, committed_at)"
							" VALUES ($1, $2, $3, 1, $4, pg_catalog.clock_timestamp())"
							" ON CONFLICT DO NOTHING",
							4, argtypes, args);
	else
	{
		args[4] = CStringGetTextDatum(metadata);
		catalog_query_saved(&offset_insert_first_metadata_plan,
							"INSERT INTO " PGQ_SCHEMA ".group_offset"
							"       (group_id, topic_id, partition, version, committed_offset, committed_at,"
							"        metadata)"
							" VALUES ($1, $2, $3, 1, $4, pg_catalog.clock_timestamp(), $5)"
							" ON CONFLICT DO NOTHING",
							5, argtypes, args);
	}
	inserted = SPI_processed == 1;
	SPI_finish();
	return inserted;
}

typedef enum OffsetReplace
{
	OFFSET_REPLACED,
	OFFSET_NONE_YET,			/* no version: insert the first */
	OFFSET_CONCURRENT			/* another transaction replaced it first */
} OffsetReplace;

/*
 * Replaces the newest version of a partition's committed offset (as of the
 * read's snapshot) with the next one.  A concurrent commit that replaced it
 * first is a serialization failure under REPEATABLE READ; under READ
 * COMMITTED the caller reads again with a new snapshot.
 */
static OffsetReplace
offset_log_replace(OffsetLog *log, const char *group_id, PgqTopic *topic, int32 partition,
				   int64 offset, const char *metadata)
{
	int64		version;
	int64		current;
	ItemPointerData tid;
	TM_FailureData tmfd;
	TM_Result	result;

	if (!offset_log_newest(log, partition, &version, &current, &tid))
		return OFFSET_NONE_YET;
	result = table_tuple_delete(log->rel, &tid, GetCurrentCommandId(true), GetActiveSnapshot(),
								InvalidSnapshot, true, &tmfd, false);
	if (result == TM_Ok)
	{
		offset_log_insert(log, group_id, topic->topic_id, partition, version + 1, offset,
						  metadata);
		return OFFSET_REPLACED;
	}
	if (result != TM_Updated && result != TM_Deleted)
		elog(ERROR, "unexpected result %d replacing the committed offset of partition %d of topic \"%s\"",
			 (int) result, partition, topic->name);
	/* a concurrent commit (or pgq_drop_group) replaced it first */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("Another transaction committed an offset of partition %d of topic \"%s\" meanwhile.",
						   partition, topic->name)));
	return OFFSET_CONCURRENT;
}

/*
 * Writes committed offsets (n of them, one per partition of the topic, with
 * their metadata, or none if metadata is NULL), then, with fence, checks
 * that the member still owns each partition: a concurrent commit of the
 * same partition waits for this transaction, and a new owner's start and
 * this check see one order.
 */
void
offsets_write(const char *group_id, const char *member_id, PgqTopic *topic,
			  int32 *partitions, int64 *offsets, char **metadata, int n, bool fence)
{
	OffsetLog	log;
	int		   *todo = palloc(sizeof(int) * Max(n, 1));	/* indexes into partitions */
	bool	   *none_yet = palloc(sizeof(bool) * Max(n, 1));
	int			ntodo = n;
	int			i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		todo[i] = i;
	offset_log_open(&log, RowExclusiveLock);
	log.index_info = BuildIndexInfo(log.index);
	while (ntodo > 0)
	{
		int			left = 0;

		PushActiveSnapshot(GetTransactionSnapshot());
		UpdateActiveSnapshotCommandId();
		offset_log_begin_read(&log, group_id, topic->topic_id);
		for (i = 0; i < ntodo; i++)
		{
			int			k = todo[i];
			OffsetReplace r = offset_log_replace(&log, group_id, topic, partitions[k], offsets[k],
												 metadata ? metadata[k] : NULL);

			none_yet[k] = r == OFFSET_NONE_YET;
			if (r != OFFSET_REPLACED)
				todo[left++] = k;
		}
		offset_log_end_read(&log);
		PopActiveSnapshot();
		CommandCounterIncrement();

		/* first versions; the rest go round again with a new snapshot */
		ntodo = left;
		left = 0;
		for (i = 0; i < ntodo; i++)
		{
			int			k = todo[i];

			if (!none_yet[k] ||
				!offset_log_insert_first(group_id, topic->topic_id, partitions[k], offsets[k],
										 metadata ? metadata[k] : NULL))
				todo[left++] = k;
		}
		ntodo = left;
	}
	offset_log_close(&log);

	if (fence)
		for (i = 0; i < n; i++)
		{
			if (!group_member_owns(group_id, member_id, topic->topic_id, partitions[i]))
				member_fenced_error(group_id, member_id, topic->name, partitions[i]);
			offset_committed_remember(group_id, member_id, topic->topic_id, partitions[i]);
		}
}

/*
 * Commits this session's positions of a member that differ from what it
 * committed last, for one topic (or all topics of the group, topic NULL).
 * With fence, a position of a partition the member no longer owns is an
 * error; without (auto-commit), it is dropped.  Returns the positions it
 * committed (copies, in the current memory context).
 */
List *
positions_commit(const char *group_id, const char *member_id, PgqTopic *only_topic, bool fence)
{
	Position   *pos;
	List	   *todo = NIL;
	List	   *done = NIL;
	ListCell   *lc;

	foreach(lc, positions_of_member(group_id, member_id, only_topic))
	{
		pos = lfirst(lc);
		if (pos->position != pos->committed)
			todo = lappend(todo, pos);
	}

	/* one statement per topic */
	while (todo != NIL)
	{
		int32		topic_id = ((Position *) linitial(todo))->key.topic_id;
		PgqTopic   *topic = only_topic;
		List	   *rest = NIL;
		int32	   *parts = palloc(sizeof(int32) * list_length(todo));
		int64	   *offs = palloc(sizeof(int64) * list_length(todo));
		List	   *these = NIL;
		int			n = 0;

		if (topic == NULL)
		{
			topic = topic_lookup_by_id(topic_id);
			if (topic == NULL)
			{
				/* the topic was dropped: nothing to commit */
				foreach(lc, todo)
					if (((Position *) lfirst(lc))->key.topic_id != topic_id)
						rest = lappend(rest, lfirst(lc));
				todo = rest;
				continue;
			}
		}
		foreach(lc, todo)
		{
			pos = lfirst(lc);
			if (pos->key.topic_id != topic_id)
				rest = lappend(rest, pos);
			else if (!group_member_owns(group_id, member_id, topic_id, pos->key.partition))
			{
				if (fence)
					member_fenced_error(group_id, member_id, topic->name, pos->key.partition);
				position_drop(pos);
			}
			else
			{
				parts[n] = pos->key.partition;
				offs[n] = pos->position;
				these = lappend(these, pos);
				n++;
			}
		}
		offsets_write(group_id, member_id, topic, parts, offs, NULL, n, true);
		foreach(lc, these)
		{
			pos = lfirst(lc);
			pos->committed = pos->position;
			position_set(group_id, member_id, topic_id, pos->key.partition,
						 pos->position, pos->committed, pos->join_epoch);
		}
		done = list_concat(done, these);
		todo = rest;
	}
	return done;
}

/*
 * The committed offsets of partitions (-1 for none), and if metadata is not
 * NULL their metadata (NULL for none).
 */
void
offsets_read(const char *group_id, PgqTopic *topic, int32 *partitions, int64 *offsets,
			 char **metadata, int n)
{
	OffsetLog	log;
	int			i;

	offset_log_open(&log, AccessShareLock);
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	offset_log_begin_read(&log, group_id, topic->topic_id);
	for (i = 0; i < n; i++)
	{
		int64		version;
		ItemPointerData tid;

		if (!offset_log_newest(&log, partitions[i], &version, &offsets[i], &tid))
		{
			offsets[i] = -1;
			if (metadata != NULL)
				metadata[i] = NULL;
		}
		else if (metadata != NULL)
			metadata[i] = offset_log_newest_metadata(&log);
	}
	offset_log_end_read(&log);
	PopActiveSnapshot();
	offset_log_close(&log);
}

/* ----------------------------------------------------------------
 * pgq_commit
 * ----------------------------------------------------------------
 */

static int
position_order(const ListCell *a, const ListCell *b)
{
	const Position *pa = lfirst(a);
	const Position *pb = lfirst(b);

	if (pa->key.topic_id != pb->key.topic_id)
		return pa->key.topic_id < pb->key.topic_id ? -1 : 1;
	return pa->key.partition < pb->key.partition ? -1 : pa->key.partition > pb->key.partition;
}

/*
 * Returns what a commit committed: a row (topic, partition, msg_offset) per
 * Position of the list, its committed offset, in topic and partition order.
 */
void
commit_result(FunctionCallInfo fcinfo, List *committed)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	list_sort(committed, position_order);
	foreach(lc, committed)
	{
		Position   *pos = lfirst(lc);
		PgqTopic   *topic = topic_lookup_by_id(pos->key.topic_id);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (topic == NULL)
			continue;			/* dropped by this transaction */
		values[0] = CStringGetTextDatum(topic->name);
		values[1] = Int32GetDatum(pos->key.partition);
		values[2] = Int64GetDatum(pos->committed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * pgq_commit(group_id, member_id): commits the member's positions, and
 * returns them; a member that is not in the group is an error.
 */
Datum
pgq_commit(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	const char *member_id = group_arg_member_id(fcinfo, 1);
	List	   *committed;

	PreventCommandIfReadOnly("pgq_commit()");
	positions_init();
	(void) group_config_get(group_id);
	committed = positions_commit(group_id, member_id, NULL, true);
	/* nothing to commit: say so if that is because it is no member */
	if (committed == NIL)
		member_check_exists(group_id, member_id);
	commit_result(fcinfo, committed);
	return (Datum) 0;
}

/*
 * pgq_commit(group_id, topic, partition, msg_offset, member_id, metadata):
 * one offset, with an optional metadata string, returned.  A member of the
 * group on the topic must own the partition; one that is not a member there
 * at all may commit only while the group has no live member on the topic
 * (see the header comment).
 */
Datum
pgq_commit_offset(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int32		partition = DatumGetInt32(pgq_require_arg(fcinfo, 2, "partition"));
	int64		offset = DatumGetInt64(pgq_require_arg(fcinfo, 3, "msg_offset"));
	const char *member_id = group_arg_member_id(fcinfo, 4);
	char	   *metadata = NULL;
	PgqTopic   *topic;
	Position	pos;
	bool		owner;

	/* (the 0.3.0 function has no metadata argument) */
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
	{
		metadata = text_to_cstring(PG_GETARG_TEXT_PP(5));
		if (strlen(metadata) > PGQ_OFFSET_METADATA_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("offset metadata must be at most %d bytes long",
							PGQ_OFFSET_METADATA_MAX)));
	}
	PreventCommandIfReadOnly("pgq_commit()");
	topic = topic_lookup(topic_name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	topic_check_partition(topic, partition);
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msg_offset must not be negative")));
	check_offset_not_past_end(topic, partition, offset);
	positions_init();
	(void) group_config_get(group_id);
	owner = group_member_owns(group_id, member_id, topic->topic_id, partition);
	if (!owner && group_member_exists(MyDatabaseId, group_id, topic->topic_id, member_id))
		member_fenced_error(group_id, member_id, topic->name, partition);
	offsets_write(group_id, member_id, topic, &partition, &offset, &metadata, 1, owner);
	/* (the error a non-member got before 0.4.0, whatever the group's state) */
	if (!owner && group_has_live_members(group_id, topic->topic_id))
		member_fenced_error(group_id, member_id, topic->name, partition);

	if (position_get(group_id, member_id, topic->topic_id, partition, &pos))
		position_set(group_id, member_id, topic->topic_id, partition, pos.position, offset,
					 pos.join_epoch);
	else
		pos.key.topic_id = topic->topic_id;
	pos.key.partition = partition;
	pos.committed = offset;
	commit_result(fcinfo, list_make1(&pos));
	return (Datum) 0;
}

/*
 * pgq_committed_offsets(group_id, topic, partitions): the group's committed
 * offset of each partition listed (of every partition of the topic if
 * partitions is NULL), in the order given, with its metadata; -1 and NULL
 * where there is none (as Kafka's OffsetFetch answers).  Reads only: it
 * also works on a standby.
 */
Datum
pgq_committed_offsets(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	PgqTopic   *topic = topic_lookup(topic_name, false);
	ReturnSetInfo *rsinfo;
	int32	   *parts;
	int64	   *offsets;
	char	  **metadata;
	int			n;
	int			i;

	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	if (PG_ARGISNULL(2))
	{
		n = topic->partitions;
		parts = palloc(sizeof(int32) * Max(n, 1));
		for (i = 0; i < n; i++)
			parts[i] = i;
	}
	else
	{
		Datum	   *elems;
		bool	   *elem_nulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), INT4OID, sizeof(int32), true,
						  TYPALIGN_INT, &elems, &elem_nulls, &n);
		parts = palloc(sizeof(int32) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			if (elem_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("partitions must not contain NULL")));
			parts[i] = DatumGetInt32(elems[i]);
			topic_check_partition(topic, parts[i]);
		}
	}
	offsets = palloc(sizeof(int64) * Max(n, 1));
	metadata = palloc(sizeof(char *) * Max(n, 1));
	offsets_read(group_id, topic, parts, offsets, metadata, n);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, metadata[i] == NULL};

		values[0] = Int32GetDatum(parts[i]);
		values[1] = Int64GetDatum(offsets[i]);
		values[2] = metadata[i] != NULL ? CStringGetTextDatum(metadata[i]) : (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
