/*-------------------------------------------------------------------------
 *
 * pgqueue.h
 *	  Declarations shared by the pgqueue source files.
 *
 * Vocabulary, used the same way in every file:
 *
 *	topic		a named, configured log, split into partitions 0..n-1.
 *	partition	an ordered, append-only sub-log of a topic.
 *	segment		one heap table holding a contiguous range of one
 *				partition's offsets (pgqueue.t<topic>_p<partition>_s<n>).  A
 *				partition's log is its segments in base_offset order; retention
 *				drops whole segments instead of deleting rows.
 *	record		one row of a segment: offset, timestamp, key, value, headers.
 *	offset		msg_offset, assigned from a per-partition counter in shared
 *				memory; strictly increasing within a partition.
 *	high watermark	the next offset to be assigned.
 *	pending		a record whose inserting transaction has not ended (as seen
 *				by the reader's snapshot), or is the reader's own.
 *	last stable offset (LSO)	the offset of the first pending record, or the
 *				high watermark if none: readers never go past it.
 *
 * The ordering guarantee rests on one invariant, kept by send.c: a
 * partition's offset is assigned and its record inserted (heap and index,
 * hence WAL) while holding the partition's append lock.  So within a
 * partition, index entries and WAL records appear in offset order, and a
 * reader that stops at the first pending record can never later see a lower
 * offset appear (see fetch.c for the argument).  It holds on a hot standby
 * too, because the standby replays the WAL in that order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQUEUE_H
#define PGQUEUE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/relcache.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "nodes/execnodes.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lockdefs.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#define PGQ_SCHEMA				"pgqueue"
#define PGQ_TOPIC_NAME_MAX		249

/* privileges on a topic (pgqueue.topic_grant.privilege) */
#define PGQ_PRIV_PRODUCE		0x01
#define PGQ_PRIV_CONSUME		0x02
#define PGQ_PRIV_ADMIN			0x04

/* config.c: topic and group config keys */
typedef enum PgqConfigType
{
	PGQ_CONFIG_INT,
	PGQ_CONFIG_BOOL,
	PGQ_CONFIG_STRING
} PgqConfigType;

typedef struct PgqConfigKey
{
	const char *name;			/* Kafka's name */
	PgqConfigType type;
	int64		min;			/* PGQ_CONFIG_INT: smallest value allowed */
	const char *default_value;	/* as JSON */
	const char *choices;		/* PGQ_CONFIG_STRING: allowed words */
} PgqConfigKey;

typedef struct PgqConfigKeys
{
	const char *what;			/* "topic" or "group" */
	const PgqConfigKey *keys;
	int			nkeys;
} PgqConfigKeys;

extern const PgqConfigKeys pgq_topic_config;
extern const PgqConfigKeys pgq_group_config;
extern void config_validate(const PgqConfigKeys *keys, Jsonb *config, bool allow_null);
extern int64 config_get_int(const PgqConfigKeys *keys, Jsonb *config, const char *name);
extern bool config_get_bool(const PgqConfigKeys *keys, Jsonb *config, const char *name);
extern char *config_get_string(const PgqConfigKeys *keys, Jsonb *config, const char *name);

/* pgqueue.c: GUCs */
extern int	pgq_max_partitions;

/*
 * partition_state.c: the shared-memory state of a partition.
 *
 * An entry exists for every partition that has been appended to (or read
 * through the partitions view) since the server started; it is removed only
 * when its topic is dropped, or its creating transaction aborts, or when
 * the extension is created again in its database (partition_state.c).  While a
 * backend uses an entry it must hold a lock on one of the partition's segment
 * tables, which keeps a concurrent drop from removing the entry.  An entry
 * serves only the partition whose offset floor sequence is its incarnation;
 * met by another with the same key, it counts as absent (partition_state.c).
 */
typedef struct PgqPartitionKey
{
	Oid			dbid;
	int32		topic_id;
	int32		partition;
} PgqPartitionKey;

typedef struct PgqPartitionState
{
	PgqPartitionKey key;		/* hash key; immutable */

	/*
	 * The OID of the partition's offset floor sequence (pgqueue.partition):
	 * which partition with this key the entry describes, since a key is
	 * reused after DROP and CREATE EXTENSION.  Written with PgqShared's lock
	 * held exclusively (and the append lock), after the fields below were
	 * reset; read under PgqShared's lock, or without it by
	 * partition_state_peek.
	 */
	Oid			incarnation;

	/*
	 * Held across offset assignment and the insert of the record, so that
	 * offsets enter the index (and the WAL) in order.  Protects loaded,
	 * active_relid and the writing of next_offset.
	 */
	LWLock		append_lock;
	bool		loaded;			/* next_offset and active_relid are valid;
								 * once set, may be tested without the lock */
	bool		rolling;		/* the worker is switching to a new segment */
	Oid			active_relid;	/* the segment new records go to */
	pg_atomic_uint64 next_offset;	/* the high watermark; read without lock */
	int64		floor;			/* every offset assigned is below it, durably */

	slock_t		mutex;			/* protects stable_hint */
	int64		stable_hint;	/* every offset below it is settled */
} PgqPartitionState;

extern Size pgq_shmem_size(void);
extern void pgq_shmem_startup(void);
extern void pgq_shmem_request(void);
extern PgqPartitionState *partition_state_lookup(int32 topic_id, int32 partition,
												 Oid incarnation, bool create);
extern PgqPartitionState *partition_state_peek(int32 topic_id, int32 partition,
											   Oid incarnation, PgqPartitionState **hint);
extern void partition_state_forget(Oid dbid, int32 topic_id, int32 from_partition);
extern ConditionVariable *topic_wakeup_cv(int32 topic_id);
extern uint64 pgq_catalog_generation(void);
extern void pgq_catalog_generation_bump(void);
extern int64 partition_state_get_stable_hint(PgqPartitionState *state);
extern void partition_state_advance_stable_hint(PgqPartitionState *state, int64 offset);
extern void partition_wait_roll(int32 topic_id, PgqPartitionState *state);
extern void partition_state_reset_rolling(void);

/*
 * topic.c: topic catalog, the backend-local topic cache, admin functions.
 */
typedef struct PgqSegment
{
	int32		segment_no;
	int64		base_offset;
	Oid			relid;
} PgqSegment;

typedef struct PgqPartitionInfo
{
	bool		loaded;
	int64		log_start_offset;
	Oid			offset_floor;	/* the partition's offset floor sequence */
	int			nsegments;
	PgqSegment *segments;		/* in base_offset order */
	PgqPartitionState *state_hint;	/* see partition_state_peek */
} PgqPartitionInfo;

typedef struct PgqTopic
{
	char		name[PGQ_TOPIC_NAME_MAX + 1];	/* hash key */
	bool		valid;
	uint64		generation;		/* pgq_catalog_generation() when loaded */
	int32		topic_id;
	int32		partitions;
	Oid			owner;
	int64		max_message_bytes;
	uint32		round_robin;	/* next partition for keyless records */
	Oid			priv_user;		/* privileges below are for this role */
	int			priv_known;		/* PGQ_PRIV_* bits looked up */
	int			priv_granted;	/* PGQ_PRIV_* bits held */
	MemoryContext cxt;			/* holds parts */
	PgqPartitionInfo *parts;	/* [partitions], loaded on demand */
} PgqTopic;

extern PgqTopic *topic_lookup(text *name, bool missing_ok);
extern PgqTopic *topic_lookup_by_id(int32 topic_id);
extern PgqPartitionInfo *topic_partition_info(PgqTopic *topic, int32 partition);
extern void topic_partition_info_forget(PgqTopic *topic, int32 partition);
extern void topic_check_partition(PgqTopic *topic, int32 partition);
extern void topic_cache_invalidate(void);
extern void catalog_change_register(void);
extern void pgq_register_xact_callbacks(void);
extern Datum pgq_require_arg(FunctionCallInfo fcinfo, int argno, const char *argname);

/* group.c: membership, leases and assignment in shared memory */
#define PGQ_GROUP_ID_MAX		127

extern int	pgq_max_group_members;
extern Size group_shmem_size(void);
extern void group_shmem_startup(LWLock *lock);
extern void group_id_validate(const char *id, const char *what);
extern const char *group_session_member_id(void);
extern List *group_member_poll(const char *group_id, const char *member_id, PgqTopic *topic,
							   int session_timeout_ms, const Bitmapset *busy,
							   uint64 *generation, uint64 *join_epoch, bool *other_session,
							   List **releasing);
extern bool group_member_owns(const char *group_id, const char *member_id,
							  int32 topic_id, int32 partition);
extern List *group_member_owned(const char *group_id, const char *member_id,
								int32 topic_id);
extern bool group_member_heartbeat(const char *group_id, const char *member_id,
								   int session_timeout_ms);
extern bool group_member_leave(const char *group_id, const char *member_id);
extern bool group_member_leave_at_commit(const char *group_id, const char *member_id);
extern bool group_member_pin(const char *group_id, const char *member_id,
							 int32 topic_id, int32 partition);
extern List *group_member_topics(const char *group_id, const char *member_id);
extern bool group_member_polled_elsewhere(const char *group_id, const char *member_id,
										  int32 topic_id);
extern bool group_has_live_members(const char *group_id, int32 topic_id);
extern void group_forget_topic(Oid dbid, int32 topic_id);
extern void group_expire_members(void);

/* worker.c and retention.c: the background workers, one per database */
extern char *pgq_databases;
extern int	pgq_maintenance_interval;
extern bool pgq_segment_maintenance;
extern bool pgq_databases_check_hook(char **newval, void **extra, GucSource source);
extern Size worker_shmem_size(void);
extern void worker_shmem_startup(void);
extern void pgq_worker_register(void);
extern void retention_round(void);

/* poll.c: consuming in a group */
extern void group_config_cache_invalidate(void);

/* segment.c: segment tables; their columns (0-based, as in values arrays) */
#define SEG_NATTS		5
#define SEG_OFFSET		0
#define SEG_TIMESTAMP	1
#define SEG_KEY			2
#define SEG_VALUE		3
#define SEG_HEADERS		4

extern Oid	segment_create(int32 topic_id, int32 partition, int32 segment_no,
						   int64 base_offset);
extern void segment_drop(Oid relid);
extern Oid	offset_floor_create(int32 topic_id, int32 partition);
extern Relation segment_open(PgqTopic *topic, Oid relid, LOCKMODE lockmode);
extern int64 segment_max_offset(Oid relid);
extern int64 segment_size(Oid relid);
extern Oid	segment_index(Relation rel);
extern void segment_lock_toast(Relation rel);

/* acl.c: per-topic rights */
extern void topic_check_privilege(PgqTopic *topic, int priv);
typedef struct PgqCatalogContext
{
	Oid			userid;
	int			sec_context;
	int			guc_nest_level;
} PgqCatalogContext;

extern Oid	catalog_owner(void);
extern void catalog_owner_switch(PgqCatalogContext *save);
extern void catalog_owner_restore(PgqCatalogContext *save);

/* send.c */
extern void partition_ensure_loaded(PgqTopic *topic, int32 partition,
									PgqPartitionState *state);

/* fetch.c: reading a partition up to its last stable offset */
typedef bool (*PgqRecordCallback) (void *arg, int64 offset, HeapTuple tuple,
								   TupleDesc desc);
extern int64 partition_scan(PgqTopic *topic, int32 partition, int64 from_offset,
							int64 max_records, Snapshot snapshot,
							PgqRecordCallback callback, void *arg,
							bool *stopped_pending, bool *gone);

extern void records_result_init(FunctionCallInfo fcinfo);
extern int64 partition_read(PgqTopic *topic, int32 partition, int64 from_offset,
							int64 max_records, ReturnSetInfo *rsinfo, int64 *next_offset,
							bool *gone);
extern void check_read_limits(int32 max_records, int32 timeout_ms);

/*
 * wait.c: long polling.  A reader runs read_step until it returns records or
 * the timeout passes, sleeping between tries until a send to the topic ends.
 */
typedef int64 (*PgqReadStep) (void *arg);
extern void wait_for_records(PgqTopic *topic, int32 timeout_ms, PgqReadStep step,
							 void *arg);
extern void send_wakeup_register(int32 topic_id);
extern void wait_register_xact_callback(void);
extern int64 partition_last_stable_offset(PgqTopic *topic, int32 partition, int64 *hwm);
extern int64 partition_offset_for_time(PgqTopic *topic, int32 partition, TimestampTz target);
extern void check_offset_in_range(PgqTopic *topic, int32 partition, int64 offset);
extern void check_offset_not_past_end(PgqTopic *topic, int32 partition, int64 offset);
extern void served_records_flush(void);

/* murmur2.c */
extern int32 pgq_murmur2_hash(const unsigned char *data, int len);
extern int32 pgq_key_partition(const unsigned char *key, int len, int32 partitions);

#endif							/* PGQUEUE_H */
