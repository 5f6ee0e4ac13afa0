/*-------------------------------------------------------------------------
 *
 * group.h
 *	  Consumer-group membership, leases and assignment in shared memory
 *	  (group.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_GROUP_H
#define PGQ_GROUP_H

#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "topic.h"

#define PGQ_GROUP_ID_MAX		127

extern int	pgq_max_group_members;
extern Size group_shmem_size(void);
extern void group_shmem_startup(LWLock *lock);
extern char *group_arg_group_id(FunctionCallInfo fcinfo, int argno);
extern const char *group_arg_member_id(FunctionCallInfo fcinfo, int argno);
extern const char *group_session_member_id(void);
/*
 * What a member says about the partitions it holds when it syncs
 * (group_member_sync).
 */
typedef enum SyncHolds
{
	SYNC_RELEASES,				/* pgq_poll: it gives up the partitions beyond
								 * its share at once */
	SYNC_HOLDS_ALL,				/* it holds every partition it owns, until it
								 * says it gave them up */
	SYNC_HOLDS_LISTED			/* it holds those in held; the others it owns it
								 * gave up */
} SyncHolds;

typedef struct MemberSyncArgs
{
	int			session_timeout_ms; /* the group's session.timeout.ms */
	int			own_timeout_ms; /* > 0: the member's own session timeout from
								 * now on (its heartbeats renew with it too);
								 * 0: keep its own, if any; -1: it has none */
	SyncHolds	holds;
	const Bitmapset *held;		/* SYNC_HOLDS_LISTED */
	const Bitmapset *busy;		/* partitions the current transaction read
								 * from or committed */
} MemberSyncArgs;

extern List *group_member_sync(const char *group_id, const char *member_id, PgqTopic *topic,
							   const MemberSyncArgs *args, uint64 *generation,
							   uint64 *join_epoch, List **releasing);
extern bool group_member_owns(const char *group_id, const char *member_id,
							  int32 topic_id, int32 partition);
extern List *group_member_owned(const char *group_id, const char *member_id,
								int32 topic_id, uint64 *join_epoch);
extern bool group_member_heartbeat(const char *group_id, const char *member_id,
								   int session_timeout_ms);
extern bool group_member_leave_at_commit(const char *group_id, const char *member_id);
extern bool group_member_pin(const char *group_id, const char *member_id,
							 int32 topic_id, int32 partition);
extern List *group_member_topics(const char *group_id, const char *member_id);
extern bool group_has_live_members(const char *group_id, int32 topic_id);
extern void group_forget_topic(Oid dbid, int32 topic_id);
extern void group_expire_members(void);
extern bool group_member_exists(Oid dbid, const char *group_id, int32 topic_id,
								const char *member_id);
extern bool group_member_assignment(const char *group_id, const char *member_id,
									int32 topic_id, List **owned, uint64 *generation);
extern void member_not_in_group_error(const char *group_id,
									  const char *member_id) pg_attribute_noreturn();
extern void member_check_exists(const char *group_id, const char *member_id);
extern void member_fenced_error(const char *group_id, const char *member_id,
								const char *topic, int32 partition) pg_attribute_noreturn();

#endif							/* PGQ_GROUP_H */
