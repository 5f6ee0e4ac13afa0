/*-------------------------------------------------------------------------
 *
 * segment.c
 *	  Segment tables: creating, dropping and probing them; and the offset
 *	  floor, the sequence of each partition that bounds its offsets.
 *
 * A segment is an ordinary heap table in the schema pgqueue holding a
 * contiguous range of one partition's offsets, with a btree index on
 * msg_offset (reads by offset are index range scans).  Records are inserted
 * only by send.c, never updated or deleted: retention drops whole segments,
 * as Kafka deletes segment files, so storage never depends on VACUUM.
 *
 * Segment tables are owned by the extension owner, carry no grants (nobody
 * but pgqueue's C code touches them) and depend automatically on the
 * extension, so DROP EXTENSION removes them.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "segment.h"

/*
 * Creates the table of one segment and returns its OID.  The caller must be
 * connected to SPI and running as the catalog owner (catalog_owner_switch).
 * The table name is built from integers only.
 */
Oid
segment_create(int32 topic_id, int32 partition, int32 segment_no, int64 base_offset)
{
	char		name[NAMEDATALEN];
	char		sql[512];
	Oid			relid;
	ObjectAddress table;
	ObjectAddress extension;

	snprintf(name, sizeof(name), "t%d_p%d_s%d", topic_id, partition, segment_no);

	snprintf(sql, sizeof(sql),
			 "CREATE TABLE " PGQ_SCHEMA ".%s ("
			 " msg_offset bigint NOT NULL,"
			 " \"timestamp\" timestamptz NOT NULL,"
			 " key bytea,"
			 " value bytea,"
			 " headers jsonb,"
			 " producer_id bigint,"
			 " producer_epoch integer,"
			 " sequence integer"
			 ") WITH (fillfactor = 100)", name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create segment table %s", name);

	snprintf(sql, sizeof(sql),
			 "CREATE INDEX %s_offset ON " PGQ_SCHEMA ".%s (msg_offset) WITH (fillfactor = 100)",
			 name, name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the index of segment table %s", name);

	/* an idempotent producer's newest records (producer.c) */
	snprintf(sql, sizeof(sql),
			 "CREATE INDEX %s_producer ON " PGQ_SCHEMA ".%s (producer_id, producer_epoch, sequence)"
			 " WHERE producer_id IS NOT NULL",
			 name, name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the producer index of segment table %s", name);

	relid = get_relname_relid(name, get_namespace_oid(PGQ_SCHEMA, false));
	if (!OidIsValid(relid))
		elog(ERROR, "segment table %s was not created", name);

	/* DROP EXTENSION drops the segments along with the catalog */
	ObjectAddressSet(table, RelationRelationId, relid);
	ObjectAddressSet(extension, ExtensionRelationId, get_extension_oid("pgqueue", false));
	recordDependencyOn(&table, &extension, DEPENDENCY_AUTO);

	(void) base_offset;			/* recorded in pgqueue.segment by the caller */
	return relid;
}

/*
 * Creates the sequence that keeps a partition's offset floor (below) and
 * returns its OID.  Same conditions as segment_create.
 */
Oid
offset_floor_create(int32 topic_id, int32 partition)
{
	char		name[NAMEDATALEN];
	char		sql[256];
	Oid			relid;
	ObjectAddress seq;
	ObjectAddress extension;

	snprintf(name, sizeof(name), "t%d_p%d_offset_floor", topic_id, partition);
	snprintf(sql, sizeof(sql),
			 "CREATE SEQUENCE " PGQ_SCHEMA ".%s AS bigint MINVALUE 0 START WITH 0 CACHE 1", name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create sequence %s", name);
	relid = get_relname_relid(name, get_namespace_oid(PGQ_SCHEMA, false));
	ObjectAddressSet(seq, RelationRelationId, relid);
	ObjectAddressSet(extension, ExtensionRelationId, get_extension_oid("pgqueue", false));
	recordDependencyOn(&seq, &extension, DEPENDENCY_AUTO);
	return relid;
}

/* Drops a segment table (taking AccessExclusiveLock on it). */
void
segment_drop(Oid relid)
{
	ObjectAddress table;

	ObjectAddressSet(table, RelationRelationId, relid);
	performDeletion(&table, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
}

/*
 * Opens (and locks) a segment table of a topic.  A segment table that is
 * gone means that the topic was dropped after the caller looked it up.
 */
Relation
segment_open(PgqTopic *topic, Oid relid, LOCKMODE lockmode)
{
	Relation	rel = try_table_open(relid, lockmode);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", topic->name),
				 errdetail("It was dropped concurrently.")));
	return rel;
}

/*
 * The bytes of a segment table on disk (heap, TOAST, free space and
 * visibility maps; not the index), or 0 if retention just dropped it.
 */
int64
segment_size(Oid relid)
{
	Relation	rel = try_table_open(relid, AccessShareLock);
	int64		size;

	if (rel == NULL)
		return 0;
	size = DatumGetInt64(DirectFunctionCall1(pg_table_size, ObjectIdGetDatum(relid)));
	table_close(rel, AccessShareLock);
	return size;
}

/*
 * The OID of a segment table's index on the column attnum, of which it is
 * the first key: the offset index (msg_offset) and the producer index
 * (producer_id, producer_epoch, sequence).
 */
static Oid
segment_index_on(Relation rel, AttrNumber attnum)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		bool		match;

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for index %u", indexoid);
		match = ((Form_pg_index) GETSTRUCT(tuple))->indkey.values[0] == attnum;
		ReleaseSysCache(tuple);
		if (match)
			return indexoid;
	}
	elog(ERROR, "segment table \"%s\" has no index on column %d",
		 RelationGetRelationName(rel), attnum);
	return InvalidOid;			/* keep the compiler quiet */
}

/* The OID of a segment table's offset index. */
Oid
segment_index(Relation rel)
{
	return segment_index_on(rel, SEG_OFFSET + 1);
}

/* The OID of a segment table's producer index. */
Oid
segment_producer_index(Relation rel)
{
	return segment_index_on(rel, SEG_PRODUCER_ID + 1);
}

/*
 * Takes RowExclusiveLock on a segment's TOAST table and its index, as
 * inserting a record too big to stay inline does.  send.c calls it, when a
 * record is big enough to be TOASTed, before taking the append lock, so
 * that a conflicting lock (a REINDEX of the TOAST table, say) makes the
 * sender wait there, interruptibly, rather than inside heap_insert with the
 * append lock held, which would block every other sender to the partition
 * uncancellably.  The acquisitions inside heap_insert are then satisfied
 * from the local lock table.  The locks are kept until the end of the
 * transaction, like those heap_insert takes.
 */
void
segment_lock_toast(Relation rel)
{
	Relation	toast;
	List	   *indexes;
	ListCell   *lc;

	if (!OidIsValid(rel->rd_rel->reltoastrelid))
		return;
	toast = table_open(rel->rd_rel->reltoastrelid, RowExclusiveLock);
	indexes = RelationGetIndexList(toast);
	foreach(lc, indexes)
		LockRelationOid(lfirst_oid(lc), RowExclusiveLock);
	list_free(indexes);
	table_close(toast, NoLock);
}

/*
 * The highest offset in a segment, or -1 if it is empty.  Every index entry
 * counts, whatever the state of its inserting transaction (SnapshotAny), so
 * that an offset held by a prepared or in-progress transaction is counted
 * too.  Reads only the index.
 */
int64
segment_max_offset(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Relation	index = index_open(segment_index(rel), AccessShareLock);
	IndexScanDesc scan;
	int64		result = -1;

	scan = index_beginscan(rel, index, SnapshotAny, 0, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, NULL, 0, NULL, 0);
	if (index_getnext_tid(scan, BackwardScanDirection) != NULL)
	{
		bool		isnull;

		result = DatumGetInt64(index_getattr(scan->xs_itup, 1,
											 scan->xs_itupdesc, &isnull));
	}
	index_endscan(scan);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * The offset floor.  Offsets come from the counter in shared memory, which a
 * restart loses; it is then recomputed from the highest offset present.  But
 * offsets of rolled-back sends may be gone from the index by then (VACUUM),
 * and such an offset must not be handed out again: a group may have
 * committed past it, or a reader may have been served past it.  So every
 * partition has a sequence whose value is a durable upper bound of the
 * offsets assigned: before assigning an offset at or above it, the sender
 * raises it past the records it is appending plus PGQ_OFFSET_FLOOR_STEP (as
 * Postgres's sequences log 32 values ahead; setval is not transactional and is
 * WAL-logged before the record, so any record that commits, and anything a
 * reader is served, is covered).  After a restart the counter starts at the
 * floor: up to 32 offsets after the last one used are skipped (gaps).
 */
int64
offset_floor_read(Oid seq)
{
	LOCAL_FCINFO(fcinfo, 1);
	PgqCatalogContext save;
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seq);
	fcinfo->args[0].isnull = false;
	catalog_owner_switch(&save);
	result = pg_sequence_last_value(fcinfo);
	catalog_owner_restore(&save);
	return fcinfo->isnull ? 0 : DatumGetInt64(result);
}

/*
 * Raises the floor, as the catalog owner (only it may set the sequence).
 * Called under the append lock, so it must take no heavyweight lock the
 * caller does not hold already: the caller opened the sequence.
 */
void
offset_floor_raise(Oid seq, int64 floor, Oid owner)
{
	Oid			save_userid;
	int			save_sec;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	(void) DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(seq), Int64GetDatum(floor),
							   BoolGetDatum(true));
	SetUserIdAndSecContext(save_userid, save_sec);
}
