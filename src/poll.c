/*-------------------------------------------------------------------------
 *
 * poll.c
 *	  Consuming in a group: pgq_poll, pgq_sync_member, pgq_heartbeat,
 *	  pgq_leave, pgq_join and pgq_assignment.
 *
 * A poll auto-commits what the member's previous poll in this session
 * returned (if the group says so), heartbeats and rebalances (group.c),
 * sets up the positions of newly owned partitions from their committed
 * offsets (commit.c), then reads from the owned partitions fairly, waiting
 * for records if asked to (wait.c).  A sync (pgq_sync_member) is the
 * membership part of a poll alone, for a client that reads and commits by
 * explicit offsets: both go through member_sync.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "config.h"
#include "consumer.h"
#include "fetch.h"

PG_FUNCTION_INFO_V1(pgq_poll);
PG_FUNCTION_INFO_V1(pgq_sync_member);
PG_FUNCTION_INFO_V1(pgq_heartbeat);
PG_FUNCTION_INFO_V1(pgq_leave);
PG_FUNCTION_INFO_V1(pgq_assignment);
PG_FUNCTION_INFO_V1(pgq_join);

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
	uint64		join_epoch;		/* of the member entry, at our last poll */
	uint32		next_start;		/* rotates the first partition read */
} MemberState;

static HTAB *member_states = NULL;

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
	if (member_states == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(MemberStateKey);
		ctl.entrysize = sizeof(MemberState);
		ctl.hcxt = TopMemoryContext;
		member_states = hash_create("pgqueue member states", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
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

/*
 * Joins, renews and rebalances a member (group_member_sync), then drops the
 * positions it no longer needs: those of partitions it no longer owns, and
 * all of them after it joined again (its lease had expired: another member
 * may have moved the committed offsets meanwhile).  Those of partitions it
 * still owns but is giving up (released at the end of this transaction, or
 * held by a syncing member until it says it gave them up) stay, so that a
 * commit still covers what was read from them.  Returns the target
 * assignment.
 */
static List *
member_sync(const char *group_id, const char *member_id, PgqTopic *topic,
			MemberSyncArgs *args, MemberState *ms)
{
	List	   *owned;
	List	   *releasing;

	args->busy = positions_busy(group_id, member_id, topic->topic_id);
	owned = group_member_sync(group_id, member_id, topic, args, &ms->generation,
							  &ms->join_epoch, &releasing);
	positions_drop(group_id, member_id, topic,
				   list_concat(list_copy(owned), releasing), ms->join_epoch);
	return owned;
}

typedef struct PollStep
{
	GroupConfig *gc;
	const char *group_id;
	const char *member_id;
	PgqTopic   *topic;
	List	   *owned;
	Position   *positions;		/* copies of the owned partitions' positions,
								 * in that order; written through */
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
			pos = &ps->positions[k];
			got = partition_read(ps->topic, p, pos->position, ask, ps->rsinfo, &next, &gone);
			if (gone)
			{
				/*
				 * Retention removed the records at the position (before this
				 * poll or while it read): start again from the log start, or
				 * the end, in the next round.
				 */
				pos->position = start_position(ps->topic, p, -1, ps->gc);
				position_set(ps->group_id, ps->member_id, ps->topic->topic_id, p,
							 pos->position, pos->committed, pos->join_epoch);
				continue;
			}
			if (next != pos->position)
			{
				pos->position = next;
				position_set(ps->group_id, ps->member_id, ps->topic->topic_id, p,
							 pos->position, pos->committed, pos->join_epoch);
			}
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
	if (last_served < 0 || (uint32) ((last_served + 1) % n) == start)
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
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int32		max_records = DatumGetInt32(pgq_require_arg(fcinfo, 2, "max_records"));
	int32		timeout_ms = DatumGetInt32(pgq_require_arg(fcinfo, 3, "timeout_ms"));
	const char *member_id = group_arg_member_id(fcinfo, 4);
	PgqTopic   *topic;
	GroupConfig *gc;
	MemberState *ms;
	MemberSyncArgs sync;
	List	   *owned;
	int			n;
	int32	   *parts;
	int64	   *committed;
	bool	   *have;
	int			nneed = 0;
	int64		served;
	int			i;
	ReturnSetInfo *rsinfo;
	PollStep	ps;

	check_read_limits(max_records, timeout_ms);
	PreventCommandIfReadOnly("pgq_poll()");
	topic = topic_lookup(topic_name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	positions_init();
	gc = group_config_get(group_id);
	ms = member_state_get(group_id, member_id, topic->topic_id);

	/* what the member's previous poll returned, whichever backend served it */
	if (gc->auto_commit)
		positions_commit(group_id, member_id, topic, false);

	memset(&sync, 0, sizeof(sync));
	sync.session_timeout_ms = gc->session_timeout_ms;
	sync.own_timeout_ms = -1;	/* a polling member's lease is the group's */
	sync.holds = SYNC_RELEASES;
	owned = member_sync(group_id, member_id, topic, &sync, ms);

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
	ps.positions = palloc(sizeof(Position) * n);
	parts = palloc(sizeof(int32) * n);
	committed = palloc(sizeof(int64) * n);
	have = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
		if (!(have[i] = position_get(group_id, member_id, topic->topic_id,
									 list_nth_int(owned, i), &ps.positions[i])))
			parts[nneed++] = list_nth_int(owned, i);
	if (nneed > 0)
	{
		int			j = 0;

		offsets_read(group_id, topic, parts, committed, NULL, nneed);
		for (i = 0; i < n; i++)
			if (!have[i])
			{
				Position   *pos = &ps.positions[i];

				Assert(parts[j] == list_nth_int(owned, i));
				pos->position = start_position(topic, parts[j], committed[j], gc);
				pos->committed = committed[j];
				pos->join_epoch = ms->join_epoch;
				position_set(group_id, member_id, topic->topic_id, parts[j],
							 pos->position, pos->committed, pos->join_epoch);
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

/* One row (partitions int[], generation bigint): an assignment. */
static void
assignment_result(FunctionCallInfo fcinfo, List *owned, uint64 generation)
{
	ReturnSetInfo *rsinfo;
	Datum	   *parts;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	ListCell   *lc;
	int			i = 0;

	parts = palloc(sizeof(Datum) * Max(list_length(owned), 1));
	foreach(lc, owned)
		parts[i++] = Int32GetDatum(lfirst_int(lc));
	values[0] = PointerGetDatum(construct_array(parts, i, INT4OID, sizeof(int32), true,
												TYPALIGN_INT));
	values[1] = Int64GetDatum((int64) generation);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * pgq_sync_member(group_id, topic, member_id, owned, session_timeout_ms):
 * the membership part of a poll without reading records, for a client that
 * reads with pgq_fetch and commits explicit offsets (the Kafka gateway's
 * JoinGroup, SyncGroup and Heartbeat).  Joins or renews the member and
 * returns its target assignment and the group's generation of the topic.
 * The lease lasts session_timeout_ms, which becomes the member's own (its
 * later syncs and heartbeats without one renew with it); without one, the
 * member's own, or the group's session.timeout.ms if it never gave one.
 *
 * owned lists the partitions the client still holds: those the member owns
 * and that are not listed are given up (an eager client lists none, a
 * cooperative one what it kept); owned NULL gives up nothing.  Partitions
 * the rebalance takes from the member stay its own, out of its target,
 * until it gives them up, so that it can commit them first; partitions it
 * gave up are released at once, or when the transaction ends if it read
 * from or committed them (see group.c).
 */
Datum
pgq_sync_member(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	const char *member_id = group_arg_member_id(fcinfo, 2);
	PgqTopic   *topic;
	GroupConfig *gc;
	MemberState *ms;
	MemberSyncArgs sync;
	Bitmapset  *held = NULL;
	List	   *owned;

	PreventCommandIfReadOnly("pgq_sync_member()");
	topic = topic_lookup(topic_name, false);
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);

	memset(&sync, 0, sizeof(sync));
	sync.holds = SYNC_HOLDS_ALL;
	if (!PG_ARGISNULL(3))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *elems;
		bool	   *elem_nulls;
		int			nelems;
		int			i;

		deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT,
						  &elems, &elem_nulls, &nelems);
		for (i = 0; i < nelems; i++)
		{
			if (elem_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("owned must not contain NULL")));
			topic_check_partition(topic, DatumGetInt32(elems[i]));
			held = bms_add_member(held, DatumGetInt32(elems[i]));
		}
		sync.holds = SYNC_HOLDS_LISTED;
		sync.held = held;
	}
	gc = group_config_get(group_id);
	sync.session_timeout_ms = gc->session_timeout_ms;
	if (!PG_ARGISNULL(4))
	{
		sync.own_timeout_ms = PG_GETARG_INT32(4);
		if (sync.own_timeout_ms < PGQ_MIN_SESSION_TIMEOUT_MS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("session_timeout_ms must be at least %d", PGQ_MIN_SESSION_TIMEOUT_MS)));
	}

	positions_init();
	ms = member_state_get(group_id, member_id, topic->topic_id);
	owned = member_sync(group_id, member_id, topic, &sync, ms);
	assignment_result(fcinfo, owned, ms->generation);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Heartbeat and leave
 * ----------------------------------------------------------------
 */

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
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	const char *member_id = group_arg_member_id(fcinfo, 1);
	GroupConfig *gc;

	PreventCommandIfReadOnly("pgq_heartbeat()");
	check_member_topics_privilege(group_id, member_id);
	gc = group_config_get(group_id);
	if (!group_member_heartbeat(group_id, member_id, gc->session_timeout_ms))
		member_not_in_group_error(group_id, member_id);
	PG_RETURN_VOID();
}

/*
 * pgq_leave(group_id, member_id): with auto-commit, commits the member's
 * positions first (as Kafka's close() does) and returns what it committed,
 * then leaves every topic of the group when the transaction commits; its
 * partitions are free at once then.  A member that is not in the group
 * (its lease expired, or it left already) has nothing to leave: no rows,
 * no error, so that a client's shutdown can always call it.
 */
Datum
pgq_leave(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	const char *member_id = group_arg_member_id(fcinfo, 1);
	GroupConfig *gc;
	List	   *committed = NIL;

	PreventCommandIfReadOnly("pgq_leave()");
	check_member_topics_privilege(group_id, member_id);
	positions_init();
	gc = group_config_get(group_id);
	if (gc->auto_commit && group_member_topics(group_id, member_id) != NIL)
		committed = positions_commit(group_id, member_id, NULL, false);
	(void) group_member_leave_at_commit(group_id, member_id);
	positions_drop(group_id, member_id, NULL, NIL, 0);
	commit_result(fcinfo, committed);
	return (Datum) 0;
}

/*
 * pgq_join(group_id, member_id): a process that starts consuming as the
 * member calls it first.  It forgets the positions a previous process of
 * the member left, without committing them, so that the member reads on
 * from its committed offsets, as a restarted Kafka consumer does: records a
 * dead process was given but did not commit are delivered again.  Behind a
 * pool nothing else can tell a new process from an old one (the backend
 * that served the dead one lives on).  The member's partitions and lease
 * are kept: a static member that restarts within session.timeout.ms keeps
 * its partitions without a rebalance.
 */
Datum
pgq_join(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	const char *member_id = group_arg_member_id(fcinfo, 1);

	PreventCommandIfReadOnly("pgq_join()");
	check_member_topics_privilege(group_id, member_id);
	positions_init();
	positions_drop(group_id, member_id, NULL, NIL, 0);
	PG_RETURN_VOID();
}

/*
 * pgq_assignment(group_id, topic, member_id): the partitions the member
 * owns in the topic now and the generation of the group's assignment of
 * the topic, which changes whenever a member joins or leaves or a
 * partition changes hands.  Reads only: it neither renews the lease nor
 * rebalances (pgq_poll does).
 */
Datum
pgq_assignment(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	const char *member_id = group_arg_member_id(fcinfo, 2);
	PgqTopic   *topic = topic_lookup(topic_name, false);
	List	   *owned;
	uint64		generation;

	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	if (!group_member_assignment(group_id, member_id, topic->topic_id, &owned, &generation))
		member_not_in_group_error(group_id, member_id);
	assignment_result(fcinfo, owned, generation);
	return (Datum) 0;
}
