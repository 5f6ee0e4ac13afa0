/*-------------------------------------------------------------------------
 *
 * consumer.h
 *	  Consuming in a group, as the SQL functions see it: the group config
 *	  cache (group_admin.c), members' positions and what the current
 *	  transaction did to them (position.c), and committed offsets
 *	  (commit.c).  Membership itself is group.h.
 *
 * Vocabulary:
 *	position			where a member's next poll reads a partition it owns:
 *						the offset after the last record it was given (as in
 *						Kafka).  Kept in shared memory per member, so any
 *						backend serving the member continues from it.
 *	committed offset	per (group, topic, partition), in pgqueue.group_offset:
 *						the offset of the next record to process (Kafka's
 *						convention).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_CONSUMER_H
#define PGQ_CONSUMER_H

#include "utils/timestamp.h"

#include "group.h"

/* group_admin.c: a group's config, cached like topic metadata */
typedef struct GroupConfig
{
	char		group_id[PGQ_GROUP_ID_MAX + 1]; /* hash key */
	bool		valid;
	uint64		generation;		/* pgq_catalog_generation() when loaded */
	int			session_timeout_ms;
	bool		auto_commit;
	bool		reset_latest;
} GroupConfig;

extern GroupConfig *group_config_get(const char *group_id);

/* position.c */
extern int	pgq_max_positions;

typedef struct PositionKey
{
	Oid			dbid;
	char		group_id[PGQ_GROUP_ID_MAX + 1];
	char		member_id[PGQ_GROUP_ID_MAX + 1];
	int32		topic_id;
	int32		partition;
} PositionKey;

typedef struct Position
{
	PositionKey key;
	int64		position;		/* the next offset to read */
	int64		committed;		/* the last offset the member committed, or -1 */
	uint64		join_epoch;		/* of the member entry it was made for */
	int			writer_pid;		/* the backend that set it last */
	TimestampTz writer_start;	/* and that backend's start time */
} Position;

extern Size positions_shmem_size(void);
extern void positions_shmem_startup(LWLock *lock);
extern void positions_init(void);
extern bool position_get(const char *group_id, const char *member_id,
						 int32 topic_id, int32 partition, Position *pos);
extern void position_set(const char *group_id, const char *member_id,
						 int32 topic_id, int32 partition, int64 position,
						 int64 committed, uint64 join_epoch);
extern void position_drop(const Position *pos);
extern List *positions_of_member(const char *group_id, const char *member_id,
								 PgqTopic *topic);
extern void positions_drop(const char *group_id, const char *member_id, PgqTopic *topic,
						   List *keep, uint64 join_epoch);
extern void positions_sweep(void);
extern Bitmapset *positions_busy(const char *group_id, const char *member_id,
								 int32 topic_id);
extern void offset_committed_remember(const char *group_id, const char *member_id,
									  int32 topic_id, int32 partition);

/* commit.c */
extern void offsets_write(const char *group_id, const char *member_id, PgqTopic *topic,
						  int32 *partitions, int64 *offsets, char **metadata, int n,
						  bool fence);
extern void offsets_read(const char *group_id, PgqTopic *topic, int32 *partitions,
						 int64 *offsets, char **metadata, int n);
extern List *positions_commit(const char *group_id, const char *member_id,
							  PgqTopic *only_topic, bool fence);
extern void commit_result(FunctionCallInfo fcinfo, List *committed);

#endif							/* PGQ_CONSUMER_H */
