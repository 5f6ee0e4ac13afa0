/*-------------------------------------------------------------------------
 *
 * poll.c
 *	  Consuming in a group: pgq_poll, positions and committed offsets,
 *	  pgq_commit, pgq_heartbeat, pgq_leave, pgq_seek, pgq_reset_offsets,
 *	  pgq_alter_group and pgq_drop_group.
 *
 * Vocabulary (see also group.c):
 *	position			where this session's next poll reads a partition it
 *						owns; kept in backend memory, so a new session (or
 *						another session polling as the same member, as under
 *						a transaction-mode pooler) starts from the committed
 *						offset.
 *	committed offset	per (group, topic, partition), in pgqueue.group_offset:
 *						the offset of the next record to process (Kafka's
 *						convention).
 *
 * Positions follow the transaction: if the transaction that polled rolls
 * back, the positions it moved go back too, so the records are delivered
 * again (and a commit made in that transaction is undone with it).  That is
 * what makes poll + process + pgq_commit in one transaction all or nothing.
 *
 * Fencing: a commit first writes the offsets' new versions, then checks
 * in shared memory that the member still owns each partition with a fresh
 * lease, and raises object_not_in_prerequisite_state if not, which undoes
 * the writes.  The check is made again just before the transaction commits,
 * pinning the member's lease until the commit is done (group.c), so a
 * transaction whose member lost a partition meanwhile fails as a whole.  A
 * new owner only takes a partition after the old owner released it (at the
 * end of the old owner's transaction that used it) or its lease expired, so
 * a zombie's commit cannot overwrite the new owner's progress, and a new
 * owner never starts from an offset an open transaction is about to move.
 *
 * PREPARE TRANSACTION is refused after a poll or a commit of offsets: a
 * prepared transaction would hold positions and a pin across sessions.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

PG_FUNCTION_INFO_V1(pgq_poll);
PG_FUNCTION_INFO_V1(pgq_commit);
PG_FUNCTION_INFO_V1(pgq_commit_offset);
PG_FUNCTION_INFO_V1(pgq_heartbeat);
PG_FUNCTION_INFO_V1(pgq_leave);
PG_FUNCTION_INFO_V1(pgq_seek);
PG_FUNCTION_INFO_V1(pgq_reset_offsets);
PG_FUNCTION_INFO_V1(pgq_alter_group);
PG_FUNCTION_INFO_V1(pgq_drop_group);

/* ----------------------------------------------------------------
 * Group config, cached like topic metadata (see topic.c)
 * ----------------------------------------------------------------
 */
typedef struct GroupConfig
{
	char		group_id[PGQ_GROUP_ID_MAX + 1]; /* hash key */
	bool		valid;
	uint64		generation;
	int			session_timeout_ms;
	bool		auto_commit;
	bool		reset_latest;
} GroupConfig;

static HTAB *group_configs = NULL;

void
group_config_cache_invalidate(void)
{
	HASH_SEQ_STATUS seq;
	GroupConfig *gc;

	if (group_configs == NULL)
		return;
	hash_seq_init(&seq, group_configs);
	while ((gc = hash_seq_search(&seq)) != NULL)
		gc->valid = false;
}

/*
 * Runs a query on the group tables as the catalog owner.  Not read-only, so
 * that each query sees the previous ones' writes.
 */
static int
group_query(const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	PgqCatalogContext save;
	int			ret;

	catalog_owner_switch(&save);
	ret = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0);
	catalog_owner_restore(&save);
	if (ret < 0)
		elog(ERROR, "group catalog query failed: %s", SPI_result_code_string(ret));
	return ret;
}

/*
 * group_query for a statement run often: parsed and planned once per
 * session into *plan (the plan cache replans it after catalog changes).
 */
static void
group_query_saved(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	PgqCatalogContext save;
	int			ret;

	catalog_owner_switch(&save);
	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare(sql, nargs, argtypes);

		if (prepared == NULL || SPI_keepplan(prepared) != 0)
			elog(ERROR, "could not prepare group catalog query: %s",
				 SPI_result_code_string(SPI_result));
		*plan = prepared;
	}
	ret = SPI_execute_plan(*plan, args, NULL, false, 0);
	catalog_owner_restore(&save);
	if (ret < 0)
		elog(ERROR, "group catalog query failed: %s", SPI_result_code_string(ret));
}

/*
 * The config of a group: the defaults, overlaid with its row in
 * pgqueue.consumer_group if it has one.  Nothing is written: a group needs
 * no row to be used.
 */
static GroupConfig *
group_config_get(const char *group_id)
{
	char		key[PGQ_GROUP_ID_MAX + 1];
	GroupConfig *gc;
	bool		found;
	uint64		generation = pgq_catalog_generation();
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Jsonb	   *config;
	char	   *reset;

	if (group_configs == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(GroupConfig);
		ctl.hcxt = TopMemoryContext;
		group_configs = hash_create("pgqueue group configs", 16, &ctl,
									HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, group_id, sizeof(key));
	gc = hash_search(group_configs, key, HASH_ENTER, &found);
	if (found && gc->valid && gc->generation == generation)
		return gc;

	args[0] = CStringGetTextDatum(group_id);
	SPI_connect();
	group_query("SELECT config FROM " PGQ_SCHEMA ".consumer_group"
				" WHERE group_id OPERATOR(pg_catalog.=) $1", 1, argtypes, args);
	if (SPI_processed == 1)
	{
		bool		isnull;

		config = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	else
		config = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	gc->session_timeout_ms = (int) Min(config_get_int(&pgq_group_config, config,
													  "session.timeout.ms"), INT_MAX);
	gc->auto_commit = config_get_bool(&pgq_group_config, config, "enable.auto.commit");
	reset = config_get_string(&pgq_group_config, config, "auto.offset.reset");
	gc->reset_latest = strcmp(reset, "latest") == 0;
	SPI_finish();

	gc->generation = generation;
	gc->valid = true;
	return gc;
}

/* ----------------------------------------------------------------
 * Positions, in backend memory, undone when their transaction aborts
 * ----------------------------------------------------------------
 */
typedef struct PositionKey
{
	char		group_id[PGQ_GROUP_ID_MAX + 1];
	char		member_id[PGQ_GROUP_ID_MAX + 1];
	int32		topic_id;
	int32		partition;
} PositionKey;

typedef struct Position
{
	PositionKey key;
	int64		position;		/* the next offset to read */
	int64		committed;		/* the last offset this session committed, or -1 */
} Position;

/* the value of a position before a (sub)transaction first changed it */
typedef struct PositionUndo
{
	Position	before;
	bool		existed;
	int			nest_level;
} PositionUndo;

/* the member state of this session per (group, topic, member) */
typedef struct MemberStateKey
{
	char		group_id[PGQ_GROUP_ID_MAX + 1];
	char		member_id[PGQ_GROUP_ID_MAX + 1];
	int32		topic_id;
} MemberStateKey;

typedef struct MemberState
{
	MemberStateKey key;
	uint64		generation;		/* of the group, at our last rebalance */
	uint64		join_epoch;		/* of our member entry */
	uint32		next_start;		/* rotates the first partition read */
} MemberState;

static HTAB *positions = NULL;
static HTAB *member_states = NULL;
static List *position_undo = NIL;	/* PositionUndo, in TopMemoryContext */
static List *offsets_committed = NIL;	/* PositionKey of the offsets this
										 * transaction committed for a member,
										 * in TopMemoryContext */
static bool callbacks_registered = false;

static void poll_xact_callback(XactEvent event, void *arg);
static void fenced_error(const char *group_id, const char *member_id, const char *topic,
						 int32 partition);
static void poll_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								  SubTransactionId parentSubid, void *arg);

/*
 * Hashes the ids only up to their ends: a poll looks up a position per
 * partition it owns, and hashing the two zero-padded 128-byte names whole
 * would dominate a poll over many partitions.
 */
static uint32
position_key_hash(const void *key, Size keysize)
{
	const PositionKey *k = (const PositionKey *) key;
	uint32		h;

	h = hash_bytes((const unsigned char *) k->group_id, strlen(k->group_id));
	h = hash_combine(h, hash_bytes((const unsigned char *) k->member_id, strlen(k->member_id)));
	h = hash_combine(h, hash_bytes_uint32((uint32) k->topic_id));
	return hash_combine(h, hash_bytes_uint32((uint32) k->partition));
}

static void
poll_state_init(void)
{
	HASHCTL		ctl;

	if (positions != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PositionKey);
	ctl.entrysize = sizeof(Position);
	ctl.hash = position_key_hash;	/* compared whole: keys are zero-padded */
	ctl.hcxt = TopMemoryContext;
	positions = hash_create("pgqueue positions", 64, &ctl,
							HASH_ELEM | HASH_FUNCTION | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(MemberStateKey);
	ctl.entrysize = sizeof(MemberState);
	ctl.hcxt = TopMemoryContext;
	member_states = hash_create("pgqueue member states", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (!callbacks_registered)
	{
		RegisterXactCallback(poll_xact_callback, NULL);
		RegisterSubXactCallback(poll_subxact_callback, NULL);
		callbacks_registered = true;
	}
}

static void
position_key(PositionKey *key, const char *group_id, const char *member_id,
			 int32 topic_id, int32 partition)
{
	memset(key, 0, sizeof(*key));
	strlcpy(key->group_id, group_id, sizeof(key->group_id));
	strlcpy(key->member_id, member_id, sizeof(key->member_id));
	key->topic_id = topic_id;
	key->partition = partition;
}

static Position *
position_find(const char *group_id, const char *member_id, int32 topic_id, int32 partition)
{
	PositionKey key;

	position_key(&key, group_id, member_id, topic_id, partition);
	return hash_search(positions, &key, HASH_FIND, NULL);
}

static PositionUndo *
position_undo_find(const PositionKey *key, int nest_level)
{
	ListCell   *lc;

	foreach(lc, position_undo)
	{
		PositionUndo *undo = lfirst(lc);

		if (undo->nest_level == nest_level &&
			memcmp(&undo->before.key, key, sizeof(PositionKey)) == 0)
			return undo;
	}
	return NULL;
}

/*
 * Remembers a position's value before its first change in the current
 * (sub)transaction.
 */
static void
position_save(const PositionKey *key)
{
	int			level = GetCurrentTransactionNestLevel();
	PositionUndo *undo;
	Position   *pos;
	MemoryContext old;

	if (position_undo_find(key, level) != NULL)
		return;

	old = MemoryContextSwitchTo(TopMemoryContext);
	undo = palloc(sizeof(PositionUndo));
	undo->nest_level = level;
	pos = hash_search(positions, key, HASH_FIND, NULL);
	undo->existed = pos != NULL;
	if (pos != NULL)
		undo->before = *pos;
	else
		undo->before.key = *key;
	position_undo = lappend(position_undo, undo);
	MemoryContextSwitchTo(old);
}

/* Sets a position and returns its entry, which stays put until dropped. */
static Position *
position_set(const char *group_id, const char *member_id, int32 topic_id, int32 partition,
			 int64 position, int64 committed)
{
	PositionKey key;
	Position   *pos;

	position_key(&key, group_id, member_id, topic_id, partition);
	position_save(&key);
	pos = hash_search(positions, &key, HASH_ENTER, NULL);
	pos->position = position;
	pos->committed = committed;
	return pos;
}

static void
position_drop(Position *pos)
{
	position_save(&pos->key);
	hash_search(positions, &pos->key, HASH_REMOVE, NULL);
}

/*
 * Puts back the positions saved by (sub)transactions at nest_level or
 * deeper, newest first, and forgets those saves.
 */
static void
positions_undo(int nest_level)
{
	int			i;

	for (i = list_length(position_undo) - 1; i >= 0; i--)
	{
		PositionUndo *undo = list_nth(position_undo, i);

		if (undo->nest_level < nest_level)
			continue;
		if (undo->existed)
			*(Position *) hash_search(positions, &undo->before.key, HASH_ENTER, NULL) =
				undo->before;
		else
			hash_search(positions, &undo->before.key, HASH_REMOVE, NULL);
		position_undo = list_delete_nth_cell(position_undo, i);
		pfree(undo);
	}
}

static void
poll_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	if (event == SUBXACT_EVENT_ABORT_SUB)
		positions_undo(level);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* the parent now answers for the changes, unless it saved them already */
		for (i = list_length(position_undo) - 1; i >= 0; i--)
		{
			PositionUndo *undo = list_nth(position_undo, i);

			if (undo->nest_level != level)
				continue;
			if (position_undo_find(&undo->before.key, level - 1) != NULL)
			{
				position_undo = list_delete_nth_cell(position_undo, i);
				pfree(undo);
			}
			else
				undo->nest_level = level - 1;
		}
	}
}

/* Remembers that this transaction committed an offset for a member. */
static void
offset_committed_remember(const char *group_id, const char *member_id, int32 topic_id,
						  int32 partition)
{
	PositionKey key;
	PositionKey *copy;
	ListCell   *lc;
	MemoryContext old;

	position_key(&key, group_id, member_id, topic_id, partition);
	foreach(lc, offsets_committed)
		if (memcmp(lfirst(lc), &key, sizeof(key)) == 0)
			return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	copy = palloc(sizeof(key));
	memcpy(copy, &key, sizeof(key));
	offsets_committed = lappend(offsets_committed, copy);
	MemoryContextSwitchTo(old);
}

/*
 * Just before commit: the member must still own every partition whose
 * offset this transaction committed (its lease may have run out since the
 * pgq_commit), and is pinned so that it keeps them until the commit is
 * visible.  Otherwise the transaction fails: another member may already be
 * reading from the old committed offset.
 */
static void
offsets_committed_check(void)
{
	ListCell   *lc;

	foreach(lc, offsets_committed)
	{
		PositionKey *k = lfirst(lc);

		if (!group_member_pin(k->group_id, k->member_id, k->topic_id, k->partition))
		{
			PgqTopic   *topic = topic_lookup_by_id(k->topic_id);

			if (topic == NULL)
				continue;		/* dropped in this transaction */
			fenced_error(k->group_id, k->member_id, topic->name, k->partition);
		}
	}
}

static void
poll_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			offsets_committed_check();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (position_undo != NIL || offsets_committed != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that polled or committed group offsets"),
						 errhint("Poll and commit offsets in transactions that are committed directly.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			positions_undo(0);
			/* FALLTHROUGH */
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			list_free_deep(position_undo);
			position_undo = NIL;
			list_free_deep(offsets_committed);
			offsets_committed = NIL;
			break;
		default:
			break;
	}
}

/*
 * Drops the positions of a member in a topic (every topic if topic_id is 0),
 * except those of the partitions in keep.
 */
static void
positions_drop(const char *group_id, const char *member_id, int32 topic_id, List *keep)
{
	HASH_SEQ_STATUS seq;
	Position   *pos;
	List	   *doomed = NIL;
	ListCell   *lc;
	Bitmapset  *kept = NULL;

	foreach(lc, keep)
		kept = bms_add_member(kept, lfirst_int(lc));
	hash_seq_init(&seq, positions);
	while ((pos = hash_seq_search(&seq)) != NULL)
		if ((topic_id == 0 || pos->key.topic_id == topic_id) &&
			strcmp(pos->key.group_id, group_id) == 0 &&
			strcmp(pos->key.member_id, member_id) == 0 &&
			!bms_is_member(pos->key.partition, kept))
			doomed = lappend(doomed, pos);
	foreach(lc, doomed)
		position_drop(lfirst(lc));
	list_free(doomed);
	bms_free(kept);
}

/*
 * The partitions of a member in a topic that the current transaction used:
 * moved a position of (read from, started, sought) or committed.
 */
static Bitmapset *
positions_busy(const char *group_id, const char *member_id, int32 topic_id)
{
	Bitmapset  *busy = NULL;
	ListCell   *lc;

	foreach(lc, position_undo)
	{
		PositionKey *k = &((PositionUndo *) lfirst(lc))->before.key;

		if (k->topic_id == topic_id && strcmp(k->group_id, group_id) == 0 &&
			strcmp(k->member_id, member_id) == 0)
			busy = bms_add_member(busy, k->partition);
	}
	return busy;
}

/* ----------------------------------------------------------------
 * Committing offsets
 * ----------------------------------------------------------------
 */

static void
fenced_error(const char *group_id, const char *member_id, const char *topic, int32 partition)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("member \"%s\" of group \"%s\" does not own partition %d of topic \"%s\"",
					member_id, group_id, partition, topic),
			 errdetail("Its lease expired, the partition was reassigned, or the member left the group."),
			 errhint("Poll again to rejoin; the records after the committed offset will be delivered again.")));
}

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
#define Natts_group_offset					6

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

/* Inserts a version (not the first: see offset_log_insert_first). */
static void
offset_log_insert(OffsetLog *log, const char *group_id, int32 topic_id, int32 partition,
				  int64 version, int64 offset)
{
	Datum		values[Natts_group_offset];
	bool		nulls[Natts_group_offset] = {false, false, false, false, false, false};
	HeapTuple	tuple;

	values[Anum_group_offset_group_id - 1] = CStringGetTextDatum(group_id);
	values[Anum_group_offset_topic_id - 1] = Int32GetDatum(topic_id);
	values[Anum_group_offset_partition - 1] = Int32GetDatum(partition);
	values[Anum_group_offset_version - 1] = Int64GetDatum(version);
	values[Anum_group_offset_committed_offset - 1] = Int64GetDatum(offset);
	values[Anum_group_offset_committed_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	tuple = heap_form_tuple(RelationGetDescr(log->rel), values, nulls);
	heap_insert(log->rel, tuple, GetCurrentCommandId(true), 0, NULL);
	/* the key is the first 4 columns */
	(void) index_insert(log->index, values, nulls, &tuple->t_self, log->rel,
						UNIQUE_CHECK_YES, false, log->index_info);
	heap_freetuple(tuple);
}

static SPIPlanPtr offset_insert_first_plan = NULL;

/* Inserts a partition's first version; false if a concurrent commit did. */
static bool
offset_log_insert_first(const char *group_id, int32 topic_id, int32 partition, int64 offset)
{
	Oid			argtypes[4] = {TEXTOID, INT4OID, INT4OID, INT8OID};
	Datum		args[4];
	bool		inserted;

	args[0] = CStringGetTextDatum(group_id);
	args[1] = Int32GetDatum(topic_id);
	args[2] = Int32GetDatum(partition);
	args[3] = Int64GetDatum(offset);
	SPI_connect();
	group_query_saved(&offset_insert_first_plan,
					  "INSERT INTO " PGQ_SCHEMA ".group_offset"
					  "       (group_id, topic_id, partition, version, committed_offset, committed_at)"
					  " VALUES ($1, $2, $3, 1, $4, pg_catalog.clock_timestamp())"
					  " ON CONFLICT DO NOTHING",
					  4, argtypes, args);
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
				   int64 offset)
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
		offset_log_insert(log, group_id, topic->topic_id, partition, version + 1, offset);
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
 * Writes committed offsets (n of them, one per partition of the topic), then
 * checks that the member still owns each partition: a concurrent commit of
 * the same partition waits for this transaction, and a new owner's start
 * and this check see one order.
 */
static void
offsets_write(const char *group_id, const char *member_id, PgqTopic *topic,
			  int32 *partitions, int64 *offsets, int n, bool fence)
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
			OffsetReplace r = offset_log_replace(&log, group_id, topic, partitions[k], offsets[k]);

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
				!offset_log_insert_first(group_id, topic->topic_id, partitions[k], offsets[k]))
				todo[left++] = k;
		}
		ntodo = left;
	}
	offset_log_close(&log);

	if (fence)
		for (i = 0; i < n; i++)
		{
			if (!group_member_owns(group_id, member_id, topic->topic_id, partitions[i]))
				fenced_error(group_id, member_id, topic->name, partitions[i]);
			offset_committed_remember(group_id, member_id, topic->topic_id, partitions[i]);
		}
}

/*
 * Commits this session's positions of a member that differ from what it
 * committed last, for one topic (or all topics of the group, topic NULL).
 * With fence, a position of a partition the member no longer owns is an
 * error; without (auto-commit), it is dropped.
 */
static void
positions_commit(const char *group_id, const char *member_id, PgqTopic *only_topic, bool fence)
{
	HASH_SEQ_STATUS seq;
	Position   *pos;
	List	   *todo = NIL;
	ListCell   *lc;

	hash_seq_init(&seq, positions);
	while ((pos = hash_seq_search(&seq)) != NULL)
		if ((only_topic == NULL || pos->key.topic_id == only_topic->topic_id) &&
			strcmp(pos->key.group_id, group_id) == 0 &&
			strcmp(pos->key.member_id, member_id) == 0 &&
			pos->position != pos->committed)
			todo = lappend(todo, pos);

	/* one statement per topic */
	while (todo != NIL)
	{
		int32		topic_id = ((Position *) linitial(todo))->key.topic_id;
		PgqTopic   *topic = only_topic;
		List	   *rest = NIL;
		int32	   *parts = palloc(sizeof(int32) * list_length(todo));
		int64	   *offs = palloc(sizeof(int64) * list_length(todo));
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
					fenced_error(group_id, member_id, topic->name, pos->key.partition);
				position_drop(pos);
			}
			else
			{
				parts[n] = pos->key.partition;
				offs[n] = pos->position;
				n++;
			}
		}
		offsets_write(group_id, member_id, topic, parts, offs, n, true);
		for (int i = 0; i < n; i++)
		{
			pos = position_find(group_id, member_id, topic_id, parts[i]);
			position_set(group_id, member_id, topic_id, parts[i], pos->position, pos->position);
		}
		todo = rest;
	}
}

/* The committed offsets of partitions (-1 for none). */
static void
offsets_read(const char *group_id, PgqTopic *topic, int32 *partitions, int64 *offsets, int n)
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
			offsets[i] = -1;
	}
	offset_log_end_read(&log);
	PopActiveSnapshot();
	offset_log_close(&log);
}

/* ----------------------------------------------------------------
 * pgq_poll
 * ----------------------------------------------------------------
 */

static char *
arg_group_id(FunctionCallInfo fcinfo, int argno)
{
	char	   *id = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, argno, "group_id")));

	group_id_validate(id, "group_id");
	return id;
}

static const char *
arg_member_id(FunctionCallInfo fcinfo, int argno)
{
	char	   *id;

	if (PG_ARGISNULL(argno))
		return group_session_member_id();
	id = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	group_id_validate(id, "member_id");
	return id;
}

static MemberState *
member_state_get(const char *group_id, const char *member_id, int32 topic_id)
{
	MemberStateKey key;
	MemberState *ms;
	bool		found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.group_id, group_id, sizeof(key.group_id));
	strlcpy(key.member_id, member_id, sizeof(key.member_id));
	key.topic_id = topic_id;
	ms = hash_search(member_states, &key, HASH_ENTER, &found);
	if (!found)
	{
		ms->generation = 0;
		ms->join_epoch = 0;
		ms->next_start = 0;
	}
	return ms;
}

/* Where a partition newly owned by this session starts: the committed offset, or the reset. */
static int64
start_position(PgqTopic *topic, int32 partition, int64 committed, GroupConfig *gc)
{
	PgqPartitionInfo *info = topic_partition_info(topic, partition);
	int64		hwm;

	if (committed >= info->log_start_offset)
		return committed;
	if (gc->reset_latest)
		return partition_last_stable_offset(topic, partition, &hwm);
	return info->log_start_offset;
}

typedef struct PollStep
{
	GroupConfig *gc;
	const char *group_id;
	const char *member_id;
	PgqTopic   *topic;
	List	   *owned;
	Position  **positions;		/* of the owned partitions, in that order */
	int32		max_records;
	MemberState *ms;
	ReturnSetInfo *rsinfo;
	int64		served;
} PollStep;

/*
 * Reads fairly from the owned partitions: each round gives every partition
 * that may have more an equal share of what is left, starting from a
 * partition that rotates from poll to poll.
 *
 * A share is never below max_records / POLL_MAX_SPREAD, so a poll reads at
 * most that many partitions that hold records: with more of them, each
 * poll takes the next ones in turn (as Kafka's fetch sessions rotate
 * partitions), and none starves.  Reading a partition costs an index scan
 * even for a few records; this bounds what a poll spends on them.
 * Partitions with nothing new cost only a look at their high watermark
 * (partition_scan).
 */
#define POLL_MAX_SPREAD		16

static int64
poll_step(void *arg)
{
	PollStep   *ps = (PollStep *) arg;
	int			n = list_length(ps->owned);
	bool	   *active = palloc(sizeof(bool) * n);
	int64		remaining = ps->max_records;
	int64		min_share = (ps->max_records + POLL_MAX_SPREAD - 1) / POLL_MAX_SPREAD;
	uint32		start = ps->ms->next_start % n;
	int			last_served = -1;
	int			i;

	ps->served = 0;
	for (i = 0; i < n; i++)
		active[i] = true;
	for (;;)
	{
		int			nactive = 0;
		int64		share;

		for (i = 0; i < n; i++)
			nactive += active[i] ? 1 : 0;
		if (nactive == 0 || remaining == 0)
			break;
		share = Max((remaining + nactive - 1) / nactive, min_share);
		for (i = 0; i < n && remaining > 0; i++)
		{
			int			k = (start + i) % n;
			int32		p = list_nth_int(ps->owned, k);
			Position   *pos;
			int64		ask = Min(share, remaining);
			int64		got;
			int64		next;
			bool		gone = false;

			if (!active[k])
				continue;
			pos = ps->positions[k];
			got = partition_read(ps->topic, p, pos->position, ask, ps->rsinfo, &next, &gone);
			if (gone)
			{
				/*
				 * Retention removed the records at the position (before this
				 * poll or while it read): start again from the log start, or
				 * the end, in the next round.
				 */
				ps->positions[k] = position_set(ps->group_id, ps->member_id, ps->topic->topic_id, p,
												start_position(ps->topic, p, -1, ps->gc),
												pos->committed);
				continue;
			}
			if (next != pos->position)
				pos = position_set(ps->group_id, ps->member_id, ps->topic->topic_id, p,
								   next, pos->committed);
			ps->positions[k] = pos;
			remaining -= got;
			ps->served += got;
			if (got > 0)
				last_served = k;
			if (got < ask)
				active[k] = false;
		}
	}
	pfree(active);

	/*
	 * The next poll starts after the last partition served, or (when this
	 * one went all the way round) one further than this one started.
	 */
	if (last_served < 0 || (last_served + 1) % n == start)
		ps->ms->next_start = (start + 1) % n;
	else
		ps->ms->next_start = (last_served + 1) % n;
	return ps->served;
}

/*
 * pgq_poll(group_id, topic, max_records, timeout_ms, member_id): auto-commit
 * what this session's previous poll returned (if enabled), heartbeat and
 * rebalance, then read up to max_records records from the owned partitions,
 * sharing max_records fairly among them; with timeout_ms > 0 and nothing to
 * return, waits for a send to the topic (at most half the session timeout).
 */
Datum
pgq_poll(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int32		max_records = DatumGetInt32(pgq_require_arg(fcinfo, 2, "max_records"));
	int32		timeout_ms = DatumGetInt32(pgq_require_arg(fcinfo, 3, "timeout_ms"));
	const char *member_id = arg_member_id(fcinfo, 4);
	PgqTopic   *topic;
	GroupConfig *gc;
	MemberState *ms;
	uint64		old_epoch;
	bool		other_session;
	List	   *owned;
	List	   *releasing;
	int			n;
	int32	   *parts;
	int64	   *committed;
	int			nneed = 0;
	int64		served;
	int			i;
	ReturnSetInfo *rsinfo;
	PollStep	ps;

	check_read_limits(max_records, timeout_ms);
	PreventCommandIfReadOnly("pgq_poll()");
	topic = topic_lookup(topic_name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	poll_state_init();
	gc = group_config_get(group_id);
	ms = member_state_get(group_id, member_id, topic->topic_id);

	/* positions another session made stale are not committed (dropped below) */
	if (gc->auto_commit &&
		!group_member_polled_elsewhere(group_id, member_id, topic->topic_id))
		positions_commit(group_id, member_id, topic, false);

	old_epoch = ms->join_epoch;
	owned = group_member_poll(group_id, member_id, topic, gc->session_timeout_ms,
							  positions_busy(group_id, member_id, topic->topic_id),
							  &ms->generation, &ms->join_epoch, &other_session, &releasing);
	/*
	 * Positions are stale after a rejoin, or if another session polled as
	 * us.  Those of partitions released at the end of this transaction stay,
	 * so that a commit in it still covers what was read from them.
	 */
	positions_drop(group_id, member_id, topic->topic_id,
				   (ms->join_epoch != old_epoch || other_session) ? NIL :
				   list_concat(list_copy(owned), releasing));

	records_result_init(fcinfo);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	n = list_length(owned);
	if (n == 0)
	{
		/*
		 * Nothing to read (yet): wait a little, up to a second, so that a
		 * client polling in a loop neither spins nor misses for long the
		 * partitions released to it meanwhile.
		 */
		if (timeout_ms > 0 && !IsolationUsesXactSnapshot())
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(timeout_ms, 1000), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		return (Datum) 0;
	}

	/*
	 * The owned partitions' positions, looked up once for every read of this
	 * call; those without one start from their committed offset.
	 */
	ps.positions = palloc(sizeof(Position *) * n);
	parts = palloc(sizeof(int32) * n);
	committed = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
		if ((ps.positions[i] = position_find(group_id, member_id, topic->topic_id,
											 list_nth_int(owned, i))) == NULL)
			parts[nneed++] = list_nth_int(owned, i);
	if (nneed > 0)
	{
		int			j = 0;

		offsets_read(group_id, topic, parts, committed, nneed);
		for (i = 0; i < n; i++)
			if (ps.positions[i] == NULL)
			{
				Assert(parts[j] == list_nth_int(owned, i));
				ps.positions[i] = position_set(group_id, member_id, topic->topic_id, parts[j],
											   start_position(topic, parts[j], committed[j], gc),
											   committed[j]);
				j++;
			}
	}

	ps.gc = gc;
	ps.group_id = group_id;
	ps.member_id = member_id;
	ps.topic = topic;
	ps.owned = owned;
	ps.max_records = max_records;
	ps.ms = ms;
	ps.rsinfo = rsinfo;
	/* a wait must end well within the lease the poll just renewed */
	wait_for_records(topic, Min(timeout_ms, gc->session_timeout_ms / 2),
					 poll_step, &ps);
	served = ps.served;
	if (served > 0)
		served_records_flush();
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Commits, heartbeat, leave
 * ----------------------------------------------------------------
 */

/* pgq_commit(group_id, member_id): commits the member's positions. */
Datum
pgq_commit(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	const char *member_id = arg_member_id(fcinfo, 1);

	PreventCommandIfReadOnly("pgq_commit()");
	poll_state_init();
	(void) group_config_get(group_id);
	positions_commit(group_id, member_id, NULL, true);
	PG_RETURN_VOID();
}

/* pgq_commit(group_id, topic, partition, msg_offset, member_id): one offset. */
Datum
pgq_commit_offset(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int32		partition = DatumGetInt32(pgq_require_arg(fcinfo, 2, "partition"));
	int64		offset = DatumGetInt64(pgq_require_arg(fcinfo, 3, "msg_offset"));
	const char *member_id = arg_member_id(fcinfo, 4);
	PgqTopic   *topic;
	Position   *pos;

	PreventCommandIfReadOnly("pgq_commit()");
	topic = topic_lookup(topic_name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	topic_check_partition(topic, partition);
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msg_offset must not be negative")));
	check_offset_not_past_end(topic, partition, offset);
	poll_state_init();
	(void) group_config_get(group_id);
	if (!group_member_owns(group_id, member_id, topic->topic_id, partition))
		fenced_error(group_id, member_id, topic->name, partition);
	offsets_write(group_id, member_id, topic, &partition, &offset, 1, true);

	pos = position_find(group_id, member_id, topic->topic_id, partition);
	if (pos != NULL)
		position_set(group_id, member_id, topic->topic_id, partition, pos->position, offset);
	PG_RETURN_VOID();
}

/*
 * Acting on a member (heartbeat, leave) needs the right to consume every
 * topic it consumes in the group.
 */
static void
check_member_topics_privilege(const char *group_id, const char *member_id)
{
	ListCell   *lc;

	foreach(lc, group_member_topics(group_id, member_id))
	{
		PgqTopic   *topic = topic_lookup_by_id(lfirst_int(lc));

		if (topic != NULL)
			topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	}
}

/* pgq_heartbeat(group_id, member_id) */
Datum
pgq_heartbeat(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	const char *member_id = arg_member_id(fcinfo, 1);
	GroupConfig *gc;

	PreventCommandIfReadOnly("pgq_heartbeat()");
	check_member_topics_privilege(group_id, member_id);
	gc = group_config_get(group_id);
	if (!group_member_heartbeat(group_id, member_id, gc->session_timeout_ms))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" is not in group \"%s\"", member_id, group_id),
				 errdetail("It has not polled yet, it left, or its session timed out."),
				 errhint("Poll to join the group.")));
	PG_RETURN_VOID();
}

/*
 * pgq_leave(group_id, member_id): with auto-commit, commits the member's
 * positions first (as Kafka's close() does), then leaves every topic of the
 * group when the transaction commits; its partitions are free at once then.
 */
Datum
pgq_leave(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	const char *member_id = arg_member_id(fcinfo, 1);
	GroupConfig *gc;

	PreventCommandIfReadOnly("pgq_leave()");
	check_member_topics_privilege(group_id, member_id);
	poll_state_init();
	gc = group_config_get(group_id);
	if (gc->auto_commit)
		positions_commit(group_id, member_id, NULL, false);
	group_member_leave_at_commit(group_id, member_id);
	positions_drop(group_id, member_id, 0, NIL);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Seek and reset
 * ----------------------------------------------------------------
 */

typedef enum SeekTarget
{
	SEEK_OFFSET,				/* (partition, msg_offset) */
	SEEK_EARLIEST,
	SEEK_LATEST,
	SEEK_TIME
} SeekTarget;

/*
 * Decodes the target of pgq_seek and pgq_reset_offsets from the argument
 * at argno: (partition int, msg_offset bigint), a position text or a
 * timestamptz.
 */
static SeekTarget
seek_target(FunctionCallInfo fcinfo, int argno, PgqTopic *topic, int32 *partition,
			int64 *offset, TimestampTz *time)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, argno);

	if (type == INT4OID)
	{
		*partition = DatumGetInt32(pgq_require_arg(fcinfo, argno, "partition"));
		*offset = DatumGetInt64(pgq_require_arg(fcinfo, argno + 1, "msg_offset"));
		topic_check_partition(topic, *partition);
		check_offset_in_range(topic, *partition, *offset);
		check_offset_not_past_end(topic, *partition, *offset);
		return SEEK_OFFSET;
	}
	if (type == TIMESTAMPTZOID)
	{
		*time = DatumGetTimestampTz(pgq_require_arg(fcinfo, argno, "to_timestamp"));
		return SEEK_TIME;
	}
	else
	{
		char	   *where = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, argno,
																		   "to_position")));

		if (strcmp(where, "earliest") == 0)
			return SEEK_EARLIEST;
		if (strcmp(where, "latest") == 0)
			return SEEK_LATEST;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid position \"%s\"", where),
				 errhint("Use 'earliest', 'latest', a timestamp, or a partition and an offset.")));
	}
	return SEEK_OFFSET;			/* keep the compiler quiet */
}

/* The offset a seek or reset of one partition goes to. */
static int64
seek_offset(PgqTopic *topic, int32 partition, SeekTarget target, int64 offset, TimestampTz time)
{
	int64		hwm;

	switch (target)
	{
		case SEEK_OFFSET:
			return offset;
		case SEEK_EARLIEST:
			return topic_partition_info(topic, partition)->log_start_offset;
		case SEEK_TIME:
			offset = partition_offset_for_time(topic, partition, time);
			if (offset >= 0)
				return offset;
			/* FALLTHROUGH: no record that late, go to the end (as Kafka does) */
		case SEEK_LATEST:
			break;
	}
	return partition_last_stable_offset(topic, partition, &hwm);
}

/*
 * pgq_seek(group_id, topic, {partition, msg_offset | to_position |
 * to_timestamp}, member_id): moves this session's fetch positions of
 * partitions the member owns; the committed offsets do not change.
 */
Datum
pgq_seek(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int			member_arg = PG_NARGS() - 1;
	const char *member_id = arg_member_id(fcinfo, member_arg);
	PgqTopic   *topic = topic_lookup(topic_name, false);
	SeekTarget	target;
	int32		partition = -1;
	int64		offset = 0;
	TimestampTz time = 0;
	List	   *owned;
	ListCell   *lc;

	PreventCommandIfReadOnly("pgq_seek()");
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	target = seek_target(fcinfo, 2, topic, &partition, &offset, &time);
	poll_state_init();
	owned = group_member_owned(group_id, member_id, topic->topic_id);
	if (target == SEEK_OFFSET)
	{
		if (!list_member_int(owned, partition))
			fenced_error(group_id, member_id, topic->name, partition);
		owned = list_make1_int(partition);
	}
	else if (owned == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" of group \"%s\" owns no partition of topic \"%s\"",
						member_id, group_id, topic->name),
				 errhint("Poll first: a member seeks in the partitions assigned to it.")));

	foreach(lc, owned)
	{
		int32		p = lfirst_int(lc);
		Position   *pos = position_find(group_id, member_id, topic->topic_id, p);

		position_set(group_id, member_id, topic->topic_id, p,
					 seek_offset(topic, p, target, offset, time),
					 pos != NULL ? pos->committed : -1);
	}
	PG_RETURN_VOID();
}

/*
 * pgq_reset_offsets(group_id, topic, {partition, msg_offset | to_position |
 * to_timestamp}): an admin action on a group's committed offsets, allowed
 * while no live member of the group consumes the topic.
 */
Datum
pgq_reset_offsets(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	PgqTopic   *topic = topic_lookup(topic_name, false);
	SeekTarget	target;
	int32		partition = -1;
	int64		offset = 0;
	TimestampTz time = 0;
	int32	   *parts;
	int64	   *offs;
	int			n = 0;
	int32		p;

	PreventCommandIfReadOnly("pgq_reset_offsets()");
	topic_check_privilege(topic, PGQ_PRIV_ADMIN);
	target = seek_target(fcinfo, 2, topic, &partition, &offset, &time);
	if (group_has_live_members(group_id, topic->topic_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("group \"%s\" has live members consuming topic \"%s\"",
						group_id, topic->name),
				 errhint("Stop the members or have them call pgq_leave() first.")));
	poll_state_init();
	(void) group_config_get(group_id);

	parts = palloc(sizeof(int32) * topic->partitions);
	offs = palloc(sizeof(int64) * topic->partitions);
	for (p = 0; p < topic->partitions; p++)
	{
		if (target == SEEK_OFFSET && p != partition)
			continue;
		parts[n] = p;
		offs[n] = seek_offset(topic, p, target, offset, time);
		n++;
	}
	offsets_write(group_id, NULL, topic, parts, offs, n, false);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Group admin
 * ----------------------------------------------------------------
 */

/* pgq_alter_group(group_id, config): set keys, null removes; creates the group */
Datum
pgq_alter_group(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	Jsonb	   *config = DatumGetJsonbP(pgq_require_arg(fcinfo, 1, "config"));
	Oid			argtypes[2] = {TEXTOID, JSONBOID};
	Datum		args[2];

	PreventCommandIfReadOnly("pgq_alter_group()");
	config_validate(&pgq_group_config, config, true);
	args[0] = CStringGetTextDatum(group_id);
	args[1] = JsonbPGetDatum(config);
	SPI_connect();
	group_query("INSERT INTO " PGQ_SCHEMA ".consumer_group AS g (group_id, config)"
				" VALUES ($1, pg_catalog.jsonb_strip_nulls($2))"
				" ON CONFLICT (group_id) DO UPDATE"
				"   SET config = pg_catalog.jsonb_strip_nulls(g.config OPERATOR(pg_catalog.||) $2)",
				2, argtypes, args);
	SPI_finish();
	catalog_change_register();
	PG_RETURN_VOID();
}

/* pgq_drop_group(group_id, if_exists): only a group without live members */
Datum
pgq_drop_group(PG_FUNCTION_ARGS)
{
	char	   *group_id = arg_group_id(fcinfo, 0);
	bool		if_exists = DatumGetBool(pgq_require_arg(fcinfo, 1, "if_exists"));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	uint64		deleted;

	PreventCommandIfReadOnly("pgq_drop_group()");
	if (group_has_live_members(group_id, 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("group \"%s\" has live members", group_id),
				 errhint("Stop the members or have them call pgq_leave() first.")));
	args[0] = CStringGetTextDatum(group_id);
	SPI_connect();
	group_query("DELETE FROM " PGQ_SCHEMA ".consumer_group WHERE group_id OPERATOR(pg_catalog.=) $1",
				1, argtypes, args);
	deleted = SPI_processed;
	group_query("DELETE FROM " PGQ_SCHEMA ".group_offset WHERE group_id OPERATOR(pg_catalog.=) $1",
				1, argtypes, args);
	deleted += SPI_processed;
	SPI_finish();
	if (deleted == 0)
	{
		if (!if_exists)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("group \"%s\" does not exist", group_id)));
		ereport(NOTICE,
				(errmsg("group \"%s\" does not exist, skipping", group_id)));
	}
	catalog_change_register();
	PG_RETURN_VOID();
}
