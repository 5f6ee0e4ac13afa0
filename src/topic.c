/*-------------------------------------------------------------------------
 *
 * topic.c
 *	  Topics: the catalog, the backend-local topic cache and the admin
 *	  functions (pgq_create_topic, pgq_drop_topic,
 *	  pgq_add_partitions, pgq_alter_topic, pgq_grant, pgq_revoke).
 *
 * The catalog (pgqueue.topic, .partition, .segment, .topic_grant) is read
 * and written through SPI, as the extension owner.  Senders and readers do
 * not query it on every call: each backend caches what it read, keyed by
 * topic name, and trusts the cache while the shared catalog generation is
 * unchanged.  Every transaction that changes topic metadata bumps the
 * generation when it commits (and invalidates its own cache at once), so a
 * cache entry is never used after the change it missed became visible.  On
 * a hot standby the generation is not bumped by the primary's changes, so
 * there the cache is only used within one call.
 *
 * Shared partition state of dropped topics (and of topics or partitions
 * whose creating transaction aborted) is removed by the transaction
 * callbacks below, which is also why a transaction that changed topics
 * cannot be prepared.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "config.h"
#include "group.h"
#include "producer.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(pgq_create_topic);
PG_FUNCTION_INFO_V1(pgq_drop_topic);
PG_FUNCTION_INFO_V1(pgq_add_partitions);
PG_FUNCTION_INFO_V1(pgq_alter_topic);
PG_FUNCTION_INFO_V1(pgq_grant);
PG_FUNCTION_INFO_V1(pgq_revoke);
PG_FUNCTION_INFO_V1(pgq_forget_shared_state);

static HTAB *topic_cache = NULL;

/*
 * Topic changes made by the current transaction, for the transaction
 * callbacks.  Allocated in TopMemoryContext; emptied at transaction end.
 */
typedef enum PgqDdlKind
{
	PGQ_DDL_CREATED,			/* topic created, or partitions >= from added */
	PGQ_DDL_DROPPED,
	PGQ_DDL_ALTERED				/* config or rights changed */
} PgqDdlKind;

typedef struct PgqDdl
{
	PgqDdlKind	kind;
	int32		topic_id;
	int32		from_partition;
	int			nest_level;		/* subtransaction that made the change */
} PgqDdl;

static PgqDdl *ddl_list = NULL;
static int	ddl_count = 0;
static int	ddl_alloc = 0;

/* ----------------------------------------------------------------
 * Argument helpers
 * ----------------------------------------------------------------
 */


/*
 * Kafka's rule: 1 to 249 characters of [A-Za-z0-9._-], and not "." or "..".
 * Every function that takes a topic name applies it, so that no other name
 * ever reaches the catalog or an error message unquoted.
 */
static void
topic_name_validate(const char *name, int len)
{
	int			i;

	if (len < 1 || len > PGQ_TOPIC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid topic name: must be 1 to %d characters long",
						PGQ_TOPIC_NAME_MAX)));
	for (i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid topic name \"%.*s\"", len, name),
					 errdetail("Topic names may contain only ASCII letters, digits, \".\", \"_\" and \"-\".")));
	}
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid topic name \"%.*s\"", len, name),
				 errdetail("\".\" and \"..\" are not allowed as topic names.")));
}

/* ----------------------------------------------------------------
 * Reading SPI results
 * ----------------------------------------------------------------
 */

static int64
spi_int64(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	Assert(!isnull);
	return DatumGetInt64(d);
}

static int32
spi_int32(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	Assert(!isnull);
	return DatumGetInt32(d);
}

/* ----------------------------------------------------------------
 * The topic cache
 * ----------------------------------------------------------------
 */

static void
topic_cache_role_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS seq;
	PgqTopic   *topic;

	if (topic_cache == NULL)
		return;
	hash_seq_init(&seq, topic_cache);
	while ((topic = hash_seq_search(&seq)) != NULL)
		topic->priv_known = 0;
}

static void
topic_cache_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PGQ_TOPIC_NAME_MAX + 1;
	ctl.entrysize = sizeof(PgqTopic);
	ctl.hcxt = TopMemoryContext;
	topic_cache = hash_create("pgqueue topic cache", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, topic_cache_role_callback, (Datum) 0);
}

/*
 * Returns the cached metadata of a topic, (re)loading it from the catalog if
 * needed.  Raises invalid_name for a malformed name and undefined_object for
 * an unknown topic, unless missing_ok (then returns NULL).  The result is
 * valid until the next call that may reload the cache.  Only topics that
 * exist are cached.
 */
PgqTopic *
topic_lookup(text *name, bool missing_ok)
{
	char		key[PGQ_TOPIC_NAME_MAX + 1];
	int			len = VARSIZE_ANY_EXHDR(name);
	PgqTopic   *topic;
	bool		found;
	uint64		generation;
	bool		in_recovery = RecoveryInProgress();
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	topic_name_validate(VARDATA_ANY(name), len);
	memset(key, 0, sizeof(key));
	memcpy(key, VARDATA_ANY(name), len);

	if (topic_cache == NULL)
		topic_cache_init();

	generation = pgq_catalog_generation();
	topic = hash_search(topic_cache, key, HASH_ENTER, &found);
	if (!found)
	{
		topic->valid = false;
		topic->cxt = AllocSetContextCreate(TopMemoryContext, "pgqueue topic",
										   ALLOCSET_SMALL_SIZES);
		/* start each session's round-robin at a random partition */
		topic->round_robin = pg_prng_uint32(&pg_global_prng_state);
	}
	if (topic->valid && topic->generation == generation && !in_recovery)
		return topic;

	topic->valid = false;
	topic->priv_known = 0;
	topic->priv_user = InvalidOid;
	MemoryContextReset(topic->cxt);
	topic->parts = NULL;

	catalog_check_layout();
	args[0] = PointerGetDatum(name);
	SPI_connect();
	catalog_query("SELECT topic_id, partitions, owner, config FROM " PGQ_SCHEMA ".topic"
				  " WHERE name OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, true);
	if (SPI_processed == 0)
	{
		SPI_finish();

		/*
		 * Keep nothing for a missing topic: a session that looks up many
		 * names that do not exist (typos, generated names, dropped topics)
		 * would otherwise keep an entry and a memory context for each.
		 */
		MemoryContextDelete(topic->cxt);
		hash_search(topic_cache, key, HASH_REMOVE, NULL);
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", key)));
	}
	else
	{
		bool		isnull;
		Jsonb	   *config;

		topic->topic_id = spi_int32(0, 1);
		topic->partitions = spi_int32(0, 2);
		topic->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 3, &isnull));
		config = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 4, &isnull));
		topic->max_message_bytes = config_get_int(&pgq_topic_config, config, "max.message.bytes");
	}
	SPI_finish();

	topic->parts = MemoryContextAllocZero(topic->cxt,
										  sizeof(PgqPartitionInfo) * topic->partitions);
	/* in recovery the primary's changes do not bump our generation */
	topic->generation = in_recovery ? 0 : generation;
	topic->valid = true;
	return topic;
}

/* The cached metadata of a topic given by id, or NULL if it does not exist. */
PgqTopic *
topic_lookup_by_id(int32 topic_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	text	   *name = NULL;

	/* a cache entry that topic_lookup would trust answers without a query */
	if (topic_cache != NULL && !RecoveryInProgress())
	{
		uint64		generation = pgq_catalog_generation();
		HASH_SEQ_STATUS seq;
		PgqTopic   *topic;

		hash_seq_init(&seq, topic_cache);
		while ((topic = hash_seq_search(&seq)) != NULL)
			if (topic->valid && topic->topic_id == topic_id && topic->generation == generation)
			{
				hash_seq_term(&seq);
				return topic;
			}
	}

	args[0] = Int32GetDatum(topic_id);
	SPI_connect();
	catalog_query("SELECT name FROM " PGQ_SCHEMA ".topic WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, true);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		name = DatumGetTextPP(SPI_datumTransfer(d, false, -1));
	}
	SPI_finish();
	return name != NULL ? topic_lookup(name, true) : NULL;
}

void
topic_check_partition(PgqTopic *topic, int32 partition)
{
	if (partition < 0 || partition >= topic->partitions)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition %d of topic \"%s\" does not exist", partition, topic->name),
				 errdetail("The topic has %d partitions, numbered from 0.", topic->partitions)));
}

/*
 * The log start offset and the segments of a partition, loaded on first use
 * into the topic's cache entry.  One query loads every partition not loaded
 * yet: a poll over many partitions needs them all, and one catalog query per
 * partition would dominate a new session's first polls.
 */
PgqPartitionInfo *
topic_partition_info(PgqTopic *topic, int32 partition)
{
	PgqPartitionInfo *info;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	uint64		first;
	uint64		i;

	topic_check_partition(topic, partition);
	info = &topic->parts[partition];
	if (info->loaded)
		return info;

	args[0] = Int32GetDatum(topic->topic_id);
	SPI_connect();
	catalog_query("SELECT p.partition, p.log_start_offset, s.segment_no, s.base_offset, s.relid,"
				  "       p.offset_floor"
				  "  FROM " PGQ_SCHEMA ".partition p, " PGQ_SCHEMA ".segment s"
				  " WHERE s.topic_id OPERATOR(pg_catalog.=) p.topic_id"
				  "   AND s.partition OPERATOR(pg_catalog.=) p.partition"
				  "   AND p.topic_id OPERATOR(pg_catalog.=) $1"
				  " ORDER BY p.partition, s.base_offset, s.segment_no",
				  1, argtypes, args, NULL, true);

	/* the rows of one partition are consecutive: [first, i) */
	for (first = 0; first < SPI_processed; first = i)
	{
		int32		p = spi_int32(first, 1);
		PgqPartitionInfo *pi;
		bool		isnull;

		for (i = first; i < SPI_processed && spi_int32(i, 1) == p; i++)
			;
		if (p >= topic->partitions || topic->parts[p].loaded)
			continue;			/* added by a newer transaction, or known */
		pi = &topic->parts[p];
		if (pi->segments != NULL)
			pfree(pi->segments);	/* forgotten: rolled or dropped segments */
		pi->segments = MemoryContextAlloc(topic->cxt, sizeof(PgqSegment) * (i - first));
		pi->nsegments = i - first;
		pi->log_start_offset = spi_int64(first, 2);
		pi->offset_floor = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[first],
														  SPI_tuptable->tupdesc, 6, &isnull));
		for (uint64 j = first; j < i; j++)
		{
			PgqSegment *seg = &pi->segments[j - first];

			seg->segment_no = spi_int32(j, 3);
			seg->base_offset = spi_int64(j, 4);
			seg->relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[j],
														SPI_tuptable->tupdesc, 5, &isnull));
		}
		pi->loaded = true;
	}
	SPI_finish();

	if (!info->loaded)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", topic->name),
				 errdetail("Its partition %d has no segment; the topic was probably dropped concurrently.",
						   partition)));
	return info;
}

/* Makes the next topic_partition_info of the partition read the catalog again. */
void
topic_partition_info_forget(PgqTopic *topic, int32 partition)
{
	topic->parts[partition].loaded = false;
}

/* ----------------------------------------------------------------
 * Transaction bookkeeping of topic changes
 * ----------------------------------------------------------------
 */

/*
 * Records a topic change made by the current (sub)transaction and forgets
 * this backend's cached metadata right away; the transaction callbacks do
 * the rest at commit or abort.
 */
static void
topic_ddl_register(PgqDdlKind kind, int32 topic_id, int32 from_partition)
{
	PgqDdl	   *ddl;

	if (ddl_count == ddl_alloc)
	{
		ddl_alloc = Max(8, ddl_alloc * 2);
		ddl_list = ddl_list == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(PgqDdl) * ddl_alloc) :
			repalloc(ddl_list, sizeof(PgqDdl) * ddl_alloc);
	}
	ddl = &ddl_list[ddl_count++];
	ddl->kind = kind;
	ddl->topic_id = topic_id;
	ddl->from_partition = from_partition;
	ddl->nest_level = GetCurrentTransactionNestLevel();
	pgq_catalog_invalidate_local();
}

/*
 * Records a change of other cached catalog data (group config) made by the
 * current transaction: other backends' caches are invalidated when it
 * commits, this backend's at once.
 */
void
catalog_change_register(void)
{
	topic_ddl_register(PGQ_DDL_ALTERED, 0, 0);
}

static void
pgq_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (ddl_count == 0)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that has created, altered or dropped pgqueue topics")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* the topic's segments are still locked: nobody uses the entries */
			for (i = 0; i < ddl_count; i++)
				if (ddl_list[i].kind == PGQ_DDL_DROPPED)
				{
					partition_state_forget(MyDatabaseId, ddl_list[i].topic_id, 0);
					group_forget_topic(MyDatabaseId, ddl_list[i].topic_id);
					producer_forget(MyDatabaseId, ddl_list[i].topic_id);
				}
			pgq_catalog_generation_bump();
			pgq_catalog_invalidate_local();
			ddl_count = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			for (i = 0; i < ddl_count; i++)
				if (ddl_list[i].kind == PGQ_DDL_CREATED)
					partition_state_forget(MyDatabaseId, ddl_list[i].topic_id,
										   ddl_list[i].from_partition);
			pgq_catalog_invalidate_local();
			ddl_count = 0;
			break;
		default:
			break;
	}
}

static void
pgq_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;
	int			kept = 0;

	if (ddl_count == 0)
		return;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < ddl_count; i++)
			if (ddl_list[i].nest_level >= level)
				ddl_list[i].nest_level = level - 1;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* the changes of the aborted subtransaction never happened */
		for (i = 0; i < ddl_count; i++)
		{
			if (ddl_list[i].nest_level < level)
				ddl_list[kept++] = ddl_list[i];
			else if (ddl_list[i].kind == PGQ_DDL_CREATED)
				partition_state_forget(MyDatabaseId, ddl_list[i].topic_id,
									   ddl_list[i].from_partition);
		}
		ddl_count = kept;
		pgq_catalog_invalidate_local();
	}
}

void
topic_register_xact_callbacks(void)
{
	RegisterXactCallback(pgq_xact_callback, NULL);
	RegisterSubXactCallback(pgq_subxact_callback, NULL);
}

/*
 * SQL, run once by the install script: forget every shared state of this
 * database.  An earlier installation of the extension here may have left
 * some behind (DROP EXTENSION cannot clear it), and topic ids start again at
 * 1, so a new topic would meet an old topic's members.  No topic exists yet
 * while the script runs.  Other backends' caches may hold the old
 * installation's topics: they are invalidated at commit.
 *
 * The partition entries do not need it for correctness (their incarnation
 * tells an old entry from a new one, also on a standby, which never runs
 * this), but forgetting them frees their slots now rather than when their
 * key is reused or the server restarts.  The group state in shared memory
 * (group.c) has no incarnation and needs it: the dead topic's members would
 * otherwise hold the new topic's partitions.  A standby has no group state
 * to forget, since pgq_poll does not run in recovery.
 */
Datum
pgq_forget_shared_state(PG_FUNCTION_ARGS)
{
	partition_state_forget(MyDatabaseId, 0, 0);
	group_forget_topic(MyDatabaseId, 0);
	producer_forget(MyDatabaseId, 0);
	catalog_change_register();
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Admin functions
 * ----------------------------------------------------------------
 */

/*
 * Serialises topic changes: a self-conflicting lock on the topic catalog
 * that does not block senders or readers (they take at most AccessShareLock
 * on it, on a cache miss).
 */
static void
topic_ddl_lock(void)
{
	catalog_query("LOCK TABLE " PGQ_SCHEMA ".topic IN SHARE ROW EXCLUSIVE MODE",
				  0, NULL, NULL, NULL, false);
}

/* Looks a topic up afresh for a change; the caller holds topic_ddl_lock. */
static PgqTopic *
topic_lookup_for_ddl(text *name, bool missing_ok)
{
	PgqTopic   *topic;

	pgq_catalog_invalidate_local();
	topic = topic_lookup(name, missing_ok);
	if (topic != NULL)
		topic_check_privilege(topic, PGQ_PRIV_ADMIN);
	return topic;
}

static void
partitions_create(int32 topic_id, int32 from, int32 to)
{
	Oid			argtypes[4] = {INT4OID, INT4OID, OIDOID, OIDOID};
	Datum		args[4];
	int32		p;

	for (p = from; p < to; p++)
	{
		PgqCatalogContext save;
		Oid			relid;
		Oid			floor_seq;

		catalog_owner_switch(&save);
		relid = segment_create(topic_id, p, 0, 0);
		floor_seq = offset_floor_create(topic_id, p);
		catalog_owner_restore(&save);

		args[0] = Int32GetDatum(topic_id);
		args[1] = Int32GetDatum(p);
		args[2] = ObjectIdGetDatum(relid);
		args[3] = ObjectIdGetDatum(floor_seq);
		catalog_query("INSERT INTO " PGQ_SCHEMA ".partition (topic_id, partition, offset_floor)"
					  " VALUES ($1, $2, $4)",
					  4, argtypes, args, NULL, false);
		catalog_query("INSERT INTO " PGQ_SCHEMA ".segment (topic_id, partition, segment_no, base_offset, relid)"
					  " VALUES ($1, $2, 0, 0, $3)",
					  4, argtypes, args, NULL, false);
	}
}

static void
partitions_validate(int32 partitions)
{
	if (partitions <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partitions must be greater than zero")));
	if (partitions > pgq_max_partitions)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a topic can have at most %d partitions", pgq_max_partitions),
				 errhint("Increase pgqueue.max_partitions and restart the server.")));
}

Datum
pgq_create_topic(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	int32		partitions = DatumGetInt32(pgq_require_arg(fcinfo, 1, "partitions"));
	Jsonb	   *config = DatumGetJsonbP(pgq_require_arg(fcinfo, 2, "config"));
	bool		if_not_exists = DatumGetBool(pgq_require_arg(fcinfo, 3, "if_not_exists"));
	Oid			argtypes[5] = {INT4OID, TEXTOID, INT4OID, JSONBOID, OIDOID};
	Datum		args[5];
	int32		topic_id;
	char	   *name_str = text_to_cstring(name);

	topic_name_validate(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	partitions_validate(partitions);
	config_validate(&pgq_topic_config, config, false);
	PreventCommandIfReadOnly("pgq_create_topic()");

	SPI_connect();
	topic_ddl_lock();
	args[0] = PointerGetDatum(name);
	catalog_query("SELECT 1 FROM " PGQ_SCHEMA ".topic WHERE name OPERATOR(pg_catalog.=) $1",
				  1, &argtypes[1], args, NULL, true);
	if (SPI_processed > 0)
	{
		SPI_finish();
		if (if_not_exists)
		{
			ereport(NOTICE,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("topic \"%s\" already exists, skipping", name_str)));
			PG_RETURN_VOID();
		}
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("topic \"%s\" already exists", name_str)));
	}

	catalog_query("SELECT pg_catalog.nextval('" PGQ_SCHEMA ".topic_id_seq')",
				  0, NULL, NULL, NULL, false);
	topic_id = (int32) spi_int64(0, 1);

	args[0] = Int32GetDatum(topic_id);
	args[1] = PointerGetDatum(name);
	args[2] = Int32GetDatum(partitions);
	args[3] = JsonbPGetDatum(config);
	args[4] = ObjectIdGetDatum(GetUserId());
	/* JSON nulls are not stored: they mean "the default" */
	catalog_query("INSERT INTO " PGQ_SCHEMA ".topic (topic_id, name, partitions, config, owner)"
				  " VALUES ($1, $2, $3, pg_catalog.jsonb_strip_nulls($4), $5)",
				  5, argtypes, args, NULL, false);
	partitions_create(topic_id, 0, partitions);
	SPI_finish();

	topic_ddl_register(PGQ_DDL_CREATED, topic_id, 0);
	PG_RETURN_VOID();
}

Datum
pgq_drop_topic(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	bool		if_exists = DatumGetBool(pgq_require_arg(fcinfo, 1, "if_exists"));
	PgqTopic   *topic;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	int32		topic_id;
	uint64		i;

	PreventCommandIfReadOnly("pgq_drop_topic()");
	SPI_connect();
	topic_ddl_lock();
	topic = topic_lookup_for_ddl(name, true);
	if (topic == NULL)
	{
		char	   *name_str = text_to_cstring(name);

		SPI_finish();
		if (if_exists)
		{
			ereport(NOTICE,
					(errmsg("topic \"%s\" does not exist, skipping", name_str)));
			PG_RETURN_VOID();
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", name_str)));
	}
	topic_id = topic->topic_id;

	args[0] = Int32GetDatum(topic_id);
	catalog_query("SELECT relid FROM " PGQ_SCHEMA ".segment WHERE topic_id OPERATOR(pg_catalog.=) $1"
				  " ORDER BY partition, segment_no",
				  1, argtypes, args, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		segment_drop(DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull)));
	}
	catalog_query("SELECT offset_floor FROM " PGQ_SCHEMA ".partition WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		segment_drop(DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull)));
	}
	/* the partitions, segments and grants go with it (ON DELETE CASCADE) */
	catalog_query("DELETE FROM " PGQ_SCHEMA ".topic WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, false);

	/*
	 * Committed offsets have no foreign key (commit.c writes them directly).
	 * A commit racing with the drop may still leave some behind; no view
	 * shows them (topic ids are not reused) and pgq_drop_group removes them.
	 */
	catalog_query("DELETE FROM " PGQ_SCHEMA ".group_offset WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, false);
	SPI_finish();

	topic_ddl_register(PGQ_DDL_DROPPED, topic_id, 0);
	PG_RETURN_VOID();
}

Datum
pgq_add_partitions(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	int32		partitions = DatumGetInt32(pgq_require_arg(fcinfo, 1, "partitions"));
	PgqTopic   *topic;
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		args[2];
	int32		topic_id;
	int32		old_partitions;

	partitions_validate(partitions);

	PreventCommandIfReadOnly("pgq_add_partitions()");
	SPI_connect();
	topic_ddl_lock();
	topic = topic_lookup_for_ddl(name, false);
	topic_id = topic->topic_id;
	old_partitions = topic->partitions;
	if (partitions <= old_partitions)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic \"%s\" already has %d partitions", topic->name, old_partitions),
				 errdetail("The number of partitions can only grow."),
				 errhint("Pass the new total number of partitions, greater than %d.",
						 old_partitions)));

	args[0] = Int32GetDatum(topic_id);
	args[1] = Int32GetDatum(partitions);
	catalog_query("UPDATE " PGQ_SCHEMA ".topic SET partitions = $2 WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  2, argtypes, args, NULL, false);
	partitions_create(topic_id, old_partitions, partitions);
	SPI_finish();

	topic_ddl_register(PGQ_DDL_CREATED, topic_id, old_partitions);
	PG_RETURN_VOID();
}

Datum
pgq_alter_topic(PG_FUNCTION_ARGS)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	Jsonb	   *config = DatumGetJsonbP(pgq_require_arg(fcinfo, 1, "config"));
	PgqTopic   *topic;
	Oid			argtypes[2] = {INT4OID, JSONBOID};
	Datum		args[2];
	int32		topic_id;

	config_validate(&pgq_topic_config, config, true);

	PreventCommandIfReadOnly("pgq_alter_topic()");
	SPI_connect();
	topic_ddl_lock();
	topic = topic_lookup_for_ddl(name, false);
	topic_id = topic->topic_id;
	args[0] = Int32GetDatum(topic_id);
	args[1] = JsonbPGetDatum(config);
	/* set the given keys, then drop those set to null */
	catalog_query("UPDATE " PGQ_SCHEMA ".topic"
				  "   SET config = pg_catalog.jsonb_strip_nulls(config OPERATOR(pg_catalog.||) $2)"
				  " WHERE topic_id OPERATOR(pg_catalog.=) $1",
				  2, argtypes, args, NULL, false);
	SPI_finish();

	topic_ddl_register(PGQ_DDL_ALTERED, topic_id, 0);
	PG_RETURN_VOID();
}

/* Shared by pgq_grant and pgq_revoke. */
static void
topic_change_grant(FunctionCallInfo fcinfo, bool grant)
{
	text	   *name = DatumGetTextPP(pgq_require_arg(fcinfo, 0, "topic"));
	char	   *role = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, 1, "role")));
	char	   *privilege = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, 2, "privilege")));
	PgqTopic   *topic;
	Oid			grantee;
	Oid			argtypes[3] = {INT4OID, OIDOID, TEXTOID};
	Datum		args[3];
	int32		topic_id;

	if (strcmp(privilege, "produce") != 0 && strcmp(privilege, "consume") != 0 &&
		strcmp(privilege, "admin") != 0 && strcmp(privilege, "all") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized topic privilege \"%s\"", privilege),
				 errhint("Valid privileges are produce, consume, admin and all.")));
	grantee = pg_strcasecmp(role, "public") == 0 ? InvalidOid : get_role_oid(role, false);

	PreventCommandIfReadOnly(grant ? "pgq_grant()" : "pgq_revoke()");
	SPI_connect();
	topic_ddl_lock();
	topic = topic_lookup_for_ddl(name, false);
	topic_id = topic->topic_id;
	args[0] = Int32GetDatum(topic_id);
	args[1] = ObjectIdGetDatum(grantee);
	args[2] = CStringGetTextDatum(privilege);
	if (grant)
		catalog_query("INSERT INTO " PGQ_SCHEMA ".topic_grant (topic_id, grantee, privilege)"
					  " SELECT $1, $2, p FROM pg_catalog.unnest(CASE WHEN $3 OPERATOR(pg_catalog.=) 'all'"
					  "   THEN ARRAY['produce', 'consume', 'admin'] ELSE ARRAY[$3] END) p"
					  " ON CONFLICT DO NOTHING",
					  3, argtypes, args, NULL, false);
	else
		catalog_query("DELETE FROM " PGQ_SCHEMA ".topic_grant"
					  " WHERE topic_id OPERATOR(pg_catalog.=) $1 AND grantee OPERATOR(pg_catalog.=) $2"
					  "   AND ($3 OPERATOR(pg_catalog.=) 'all' OR privilege OPERATOR(pg_catalog.=) $3)",
					  3, argtypes, args, NULL, false);
	SPI_finish();

	topic_ddl_register(PGQ_DDL_ALTERED, topic_id, 0);
}

Datum
pgq_grant(PG_FUNCTION_ARGS)
{
	topic_change_grant(fcinfo, true);
	PG_RETURN_VOID();
}

Datum
pgq_revoke(PG_FUNCTION_ARGS)
{
	topic_change_grant(fcinfo, false);
	PG_RETURN_VOID();
}
