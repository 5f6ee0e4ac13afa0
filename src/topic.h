/*-------------------------------------------------------------------------
 *
 * topic.h
 *	  The topic catalog and the backend-local topic cache (topic.c), and
 *	  per-topic rights (acl.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_TOPIC_H
#define PGQ_TOPIC_H

#include "partition_state.h"

#define PGQ_TOPIC_NAME_MAX		249

/* rights on a topic (pgqueue.topic_grant.privilege) */
#define PGQ_PRIV_PRODUCE		0x01
#define PGQ_PRIV_CONSUME		0x02
#define PGQ_PRIV_ADMIN			0x04

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
extern void catalog_change_register(void);
extern void topic_register_xact_callbacks(void);

/* acl.c */
extern void topic_check_privilege(PgqTopic *topic, int priv);

#endif							/* PGQ_TOPIC_H */
