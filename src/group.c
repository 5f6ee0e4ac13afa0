/*-------------------------------------------------------------------------
 *
 * group.c
 *	  Consumer-group membership, leases and partition assignment, in shared
 *	  memory.
 *
 * Vocabulary:
 *	member		a consumer of a group, named by member_id (or, if the caller
 *				gives none, by its database session); it consumes a topic by
 *				polling it.  One PgqMember entry per (group, topic, member).
 *	lease		a member owns its partitions while its lease is fresh: every
 *				poll or heartbeat renews it for the group's session.timeout.ms.
 *	owner		the member a partition of a (group, topic) is assigned to.
 *
 * Leases and ownership are not transactional and not durable, on purpose:
 * a lease renewed inside a long transaction must be seen by the other
 * members at once, and after a restart or failover every member simply
 * joins again (as in Kafka, where the group coordinator keeps them in
 * memory).  Committed offsets, which must survive, are in the table
 * pgqueue.group_offset (commit.c).
 *
 * Assignment is balanced and sticky, computed by each member for itself
 * when it polls and something changed (a member joined, left or expired, or
 * partitions were added): with p partitions and m live members, each member
 * gets floor(p/m) partitions, and the p % m members that hold the most
 * (ties by member_id) get one more.  A member over its share releases
 * partitions, one under it claims free ones.  A partition is free only when
 * no live member holds it, so it moves only after its owner released it (at
 * its next poll, which first auto-commits) or its lease expired: two members
 * never own one partition at the same time, and the partitions that need
 * not move keep being consumed (cooperative, incremental rebalancing).
 *
 * Two kinds of members give partitions up differently.  A member that
 * polls (pgq_poll) gives up the partitions beyond its share at once, at its
 * next poll, which auto-commits first: it reads nothing from them any more.
 * A member that syncs (pgq_sync_member: a Kafka client behind the gateway,
 * which reads with pgq_fetch and commits explicit offsets) keeps them until
 * it says it gave them up, by leaving them out of the partitions it lists
 * as held, as Kafka's cooperative protocol does: meanwhile they are left
 * out of its target assignment (so the client knows to commit and revoke
 * them), it may still commit their offsets, and no other member can take
 * them.  Both kinds may share a group: one balance, one owner per partition,
 * decided in one place (group_member_sync).  A sync may also give a member
 * its own session timeout, which its heartbeats then renew the lease with.
 *
 * The generation of a (group, topic) changes whenever its assignment does:
 * a member joins or leaves, partitions are added, or a member's partitions
 * change.  A member that gives up partitions and claims the same ones back
 * in one sync (an eager Kafka client gives up everything before it syncs)
 * changes nothing, so it does not make the others rebalance again.
 *
 * Hand-overs and transactions.  Ownership is not transactional, but what a
 * member does with a partition inside a transaction must end before another
 * member can take the partition, or the new owner would start from a
 * committed offset that the open transaction is about to move (and process
 * its records again).  So:
 *	- a member gives up a partition that its current transaction read from
 *	  or committed an offset of only when that transaction ends (deferred
 *	  release; it reads no more from it meanwhile), and pgq_leave takes
 *	  effect when its transaction commits;
 *	- a transaction that committed offsets pins its member at COMMIT
 *	  (position.c checks, just before, that the member still owns those
 *	  partitions with a fresh lease, and fails the commit if not): a pinned
 *	  member's lease cannot expire until the commit is done and visible.
 * Together: a new owner reads the committed offset only after the last
 * transaction of the old owner that could move it has ended.
 *
 * Locking: PgqGroups->lock protects the hash tables, the member lists, the
 * generations and the owned bitmaps (shared to read, exclusive to change).
 * A member's lease and pin are protected by its mutex, so that
 * polls of different members, which need the lock only in shared mode,
 * do not serialise.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "funcapi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "group.h"

PG_FUNCTION_INFO_V1(pgq_members_info);

typedef struct PgqGroupTopicKey
{
	Oid			dbid;
	int32		topic_id;
	char		group_id[PGQ_GROUP_ID_MAX + 1];
} PgqGroupTopicKey;

typedef struct PgqGroupTopic
{
	PgqGroupTopicKey key;
	uint64		generation;		/* bumped by every change of members or owners */
	TimestampTz check_after;	/* the earliest lease expiry at the last change */
	int32		partitions;		/* of the topic, at the last rebalance */
	dlist_head	members;		/* PgqMember.node */
} PgqGroupTopic;

typedef struct PgqMemberKey
{
	PgqGroupTopicKey group;
	char		member_id[PGQ_GROUP_ID_MAX + 1];
} PgqMemberKey;

typedef struct PgqMember
{
	PgqMemberKey key;
	dlist_node	node;
	uint64		join_epoch;		/* unique per creation of this entry */
	slock_t		mutex;			/* protects the three fields below */
	TimestampTz lease_expires;
	int			own_timeout_ms; /* its own session timeout, or 0: the group's */
	int			committing_pid; /* a backend committing offsets for it, or 0 */
	int32		share;			/* how many partitions it should own, as of
								 * its last rebalance */
	int32		nowned;
	uint8		owned[FLEXIBLE_ARRAY_MEMBER];	/* bitmap of partitions */
} PgqMember;

typedef struct PgqGroups
{
	LWLock	   *lock;
	uint64		next_join_epoch;	/* lock (exclusive) */
} PgqGroups;

int			pgq_max_group_members = 1024;

static PgqGroups *pgq_groups = NULL;
static HTAB *group_topics = NULL;
static HTAB *members = NULL;
static bool leave_at_exit_registered = false;

/*
 * What this backend's transaction must do to the shared state when it ends
 * (see the header comment); in TopMemoryContext.
 */
typedef struct DeferredChange
{
	char		group_id[PGQ_GROUP_ID_MAX + 1];
	char		member_id[PGQ_GROUP_ID_MAX + 1];
	int32		topic_id;
	uint64		join_epoch;		/* of the member entry it applies to */
	int32		partition;		/* released at the end; -1: leave at commit */
} DeferredChange;

static List *deferred_changes = NIL;	/* DeferredChange */
static List *pinned_members = NIL;	/* DeferredChange, partition unused */
static bool xact_callback_registered = false;

static void group_xact_callback(XactEvent event, void *arg);
static bool group_member_leave(const char *group_id, const char *member_id);

#define OWNED_BYTES		((pgq_max_partitions + 7) / 8)
#define MEMBER_SIZE		(offsetof(PgqMember, owned) + OWNED_BYTES)
#define OWNS(m, p)		(((m)->owned[(p) / 8] & (1 << ((p) % 8))) != 0)
#define SET_OWNED(m, p) ((m)->owned[(p) / 8] |= (1 << ((p) % 8)))
#define CLEAR_OWNED(m, p) ((m)->owned[(p) / 8] &= ~(1 << ((p) % 8)))

Size
group_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgqGroups));

	size = add_size(size, hash_estimate_size(pgq_max_group_members, sizeof(PgqGroupTopic)));
	size = add_size(size, hash_estimate_size(pgq_max_group_members, MEMBER_SIZE));
	return size;
}

void
group_shmem_startup(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	pgq_groups = ShmemInitStruct("pgqueue groups", sizeof(PgqGroups), &found);
	if (!found)
	{
		pgq_groups->lock = lock;
		pgq_groups->next_join_epoch = 1;
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(PgqGroupTopicKey);
	info.entrysize = sizeof(PgqGroupTopic);
	group_topics = ShmemInitHash("pgqueue group topics",
								 pgq_max_group_members, pgq_max_group_members,
								 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(PgqMemberKey);
	info.entrysize = MEMBER_SIZE;
	members = ShmemInitHash("pgqueue group members",
							pgq_max_group_members, pgq_max_group_members,
							&info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

/*
 * Group and member ids: 1 to PGQ_GROUP_ID_MAX bytes, no control characters
 * (they appear in views and error messages).
 */
static void
group_id_validate(const char *id, const char *what)
{
	size_t		len = strlen(id);
	size_t		i;

	if (len < 1 || len > PGQ_GROUP_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid %s: must be 1 to %d bytes long", what, PGQ_GROUP_ID_MAX)));
	for (i = 0; i < len; i++)
		if ((unsigned char) id[i] < 32 || id[i] == 127)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid %s: must not contain control characters", what)));
}

/* A group_id argument of a SQL function: not null, and valid. */
char *
group_arg_group_id(FunctionCallInfo fcinfo, int argno)
{
	char	   *id = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, argno, "group_id")));

	group_id_validate(id, "group_id");
	return id;
}

/* A member_id argument of a SQL function: valid, or NULL for the session's. */
const char *
group_arg_member_id(FunctionCallInfo fcinfo, int argno)
{
	char	   *id;

	if (PG_ARGISNULL(argno))
		return group_session_member_id();
	id = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	group_id_validate(id, "member_id");
	return id;
}

/*
 * The error of a member acting on a partition it does not own (Kafka's
 * zombie fencing): a commit, a seek, or a transaction that committed.
 */
void
member_fenced_error(const char *group_id, const char *member_id, const char *topic,
					int32 partition)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("member \"%s\" of group \"%s\" does not own partition %d of topic \"%s\"",
					member_id, group_id, partition, topic),
			 errdetail("Its lease expired, the partition was reassigned, or the member left the group."),
			 errhint("Poll again to rejoin; the records after the committed offset will be delivered again.")));
}

/* The member id of this database session, used when member_id is NULL. */
const char *
group_session_member_id(void)
{
	static char id[64];

	if (id[0] == '\0')
		snprintf(id, sizeof(id), "session-%d-%llx", MyProcPid,
				 (unsigned long long) MyStartTimestamp);
	return id;
}

static void
group_topic_key(PgqGroupTopicKey *key, const char *group_id, int32 topic_id)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->topic_id = topic_id;
	strlcpy(key->group_id, group_id, sizeof(key->group_id));
}

/*
 * Is m the member member_id of the group group_id (of any group, if NULL),
 * in any topic of the current database?
 */
static bool
member_matches(PgqMember *m, const char *group_id, const char *member_id)
{
	return m->key.group.dbid == MyDatabaseId &&
		(group_id == NULL || strcmp(m->key.group.group_id, group_id) == 0) &&
		strcmp(m->key.member_id, member_id) == 0;
}

static PgqMember *
member_find(const char *group_id, int32 topic_id, const char *member_id)
{
	PgqMemberKey key;

	memset(&key, 0, sizeof(key));
	group_topic_key(&key.group, group_id, topic_id);
	strlcpy(key.member_id, member_id, sizeof(key.member_id));
	return hash_search(members, &key, HASH_FIND, NULL);
}

/* A member's lease expiry; a member pinned by a committing transaction does not expire. */
static TimestampTz
member_lease(PgqMember *m)
{
	TimestampTz lease;

	SpinLockAcquire(&m->mutex);
	lease = m->committing_pid != 0 ? DT_NOEND : m->lease_expires;
	SpinLockRelease(&m->mutex);
	return lease;
}

static bool
deferred_matches(DeferredChange *d, PgqMember *m)
{
	return d->topic_id == m->key.group.topic_id && d->join_epoch == m->join_epoch &&
		strcmp(d->group_id, m->key.group.group_id) == 0 &&
		strcmp(d->member_id, m->key.member_id) == 0;
}

/*
 * Is the release of the member's partition p deferred to the end of this
 * transaction (p = -1: its leave)?
 */
static bool
release_deferred(PgqMember *m, int32 p)
{
	ListCell   *lc;

	foreach(lc, deferred_changes)
	{
		DeferredChange *d = lfirst(lc);

		if (d->partition == p && deferred_matches(d, m))
			return true;
	}
	return false;
}

static void
defer_change(List **list, PgqMember *m, int32 partition)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	DeferredChange *d = palloc0(sizeof(DeferredChange));

	strlcpy(d->group_id, m->key.group.group_id, sizeof(d->group_id));
	strlcpy(d->member_id, m->key.member_id, sizeof(d->member_id));
	d->topic_id = m->key.group.topic_id;
	d->join_epoch = m->join_epoch;
	d->partition = partition;
	*list = lappend(*list, d);
	MemoryContextSwitchTo(old);
	if (!xact_callback_registered)
	{
		RegisterXactCallback(group_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * The partitions a member owns, as a list, less those whose release this
 * transaction deferred (it reads no more from them).
 */
static List *
member_owned_list(PgqMember *m, int32 partitions)
{
	List	   *owned = NIL;
	int32		p;

	for (p = 0; p < partitions; p++)
		if (OWNS(m, p) && !release_deferred(m, p))
			owned = lappend_int(owned, p);
	return owned;
}

/*
 * The outcome of a sync: the member's target assignment, the lowest
 * numbered of the partitions it owns and will keep (those whose release
 * this transaction deferred excluded), at most max of them; and in
 * *releasing the partitions it still owns that are not in the target
 * (deferred releases, and what a syncing member holds beyond its share
 * until it gives them up).
 */
static List *
member_target_list(PgqMember *m, int32 partitions, int32 max, List **releasing)
{
	List	   *target = NIL;
	int32		n = 0;
	int32		p;

	*releasing = NIL;
	for (p = 0; p < partitions; p++)
		if (OWNS(m, p))
		{
			if (n < max && !release_deferred(m, p))
			{
				target = lappend_int(target, p);
				n++;
			}
			else
				*releasing = lappend_int(*releasing, p);
		}
	return target;
}

/* Does the member hold every partition it owns, by the list it gave? */
static bool
member_holds_all(PgqMember *m, int32 partitions, const Bitmapset *held)
{
	int32		p;

	for (p = 0; p < partitions; p++)
		if (OWNS(m, p) && !bms_is_member(p, held))
			return false;
	return true;
}

/*
 * Renews a member's lease: for its own session timeout if it has one, else
 * for the group's; args->own_timeout_ms sets or clears its own first.
 */
static void
member_renew(PgqMember *m, TimestampTz now, const MemberSyncArgs *args)
{
	SpinLockAcquire(&m->mutex);
	if (args->own_timeout_ms != 0)
		m->own_timeout_ms = Max(args->own_timeout_ms, 0);
	m->lease_expires = TimestampTzPlusMilliseconds(now, m->own_timeout_ms > 0 ?
												   m->own_timeout_ms : args->session_timeout_ms);
	SpinLockRelease(&m->mutex);
}

/* Removes a member; the caller holds the lock exclusively. */
static void
member_remove(PgqGroupTopic *gt, PgqMember *m)
{
	dlist_delete(&m->node);
	hash_search(members, &m->key, HASH_REMOVE, NULL);
	gt->generation++;
	if (dlist_is_empty(&gt->members))
		hash_search(group_topics, &gt->key, HASH_REMOVE, NULL);
}

static void
group_leave_at_exit(int code, Datum arg)
{
	/* a session's member leaves its groups when the session ends */
	LWLockReleaseAll();
	group_member_leave(NULL, group_session_member_id());
}

typedef struct RankedMember
{
	PgqMember  *member;
	int32		nowned;
} RankedMember;

static int
compare_ranked(const void *a, const void *b)
{
	const RankedMember *ra = a;
	const RankedMember *rb = b;

	if (ra->nowned != rb->nowned)
		return ra->nowned > rb->nowned ? -1 : 1;
	return strcmp(ra->member->key.member_id, rb->member->key.member_id);
}

/*
 * The rebalance step of one member, under the exclusive lock: expire the
 * members whose lease ran out, take back what the member says it gave up,
 * work out its share and release or claim partitions to reach it.  A
 * member that polls releases the partitions beyond its share at once (those
 * in args->busy, which the current transaction used, when it ends); one
 * that syncs keeps them until it says it gave them up (see the header
 * comment).  Returns the member's target assignment, and in *releasing
 * what it owns besides (member_target_list).
 */
static List *
group_rebalance(PgqGroupTopic *gt, PgqMember *me, int32 partitions, TimestampTz now,
				const MemberSyncArgs *args, List **releasing)
{
	dlist_mutable_iter miter;
	dlist_iter	iter;
	RankedMember *ranked;
	int			nlive = 0;
	int			rank = 0;
	int32		quota;
	int32		p;
	int32		ndeferred = 0;
	uint8	   *taken;
	uint8	   *before;
	Bitmapset  *given_up = NULL;
	TimestampTz earliest = DT_NOEND;
	int			i;
	int			pass;

	dlist_foreach_modify(miter, &gt->members)
	{
		PgqMember  *m = dlist_container(PgqMember, node, miter.cur);

		if (m != me && member_lease(m) <= now)
			member_remove(gt, m);	/* gt survives: me is still in it */
	}

	if (gt->partitions != partitions)
	{
		gt->partitions = partitions;
		gt->generation++;
	}

	/*
	 * The member's own changes bump the generation once at the end, and
	 * only if they changed what it owns.
	 */
	before = palloc(OWNED_BYTES);
	memcpy(before, me->owned, OWNED_BYTES);

	/* what a syncing member says it gave up */
	if (args->holds == SYNC_HOLDS_LISTED)
		for (p = 0; p < partitions; p++)
			if (OWNS(me, p) && !bms_is_member(p, args->held) && !release_deferred(me, p))
			{
				if (bms_is_member(p, args->busy))
				{
					defer_change(&deferred_changes, me, p);
					continue;
				}
				CLEAR_OWNED(me, p);
				me->nowned--;
				given_up = bms_add_member(given_up, p);
			}

	ranked = palloc(sizeof(RankedMember) * pgq_max_group_members);
	taken = palloc0(OWNED_BYTES);
	dlist_foreach(iter, &gt->members)
	{
		PgqMember  *m = dlist_container(PgqMember, node, iter.cur);

		/*
		 * A member ranks by what it held when it came in: one that gave
		 * up everything to sync (an eager Kafka client) is not demoted for
		 * it, or its claims would shift partitions between members at
		 * every rebalance.
		 */
		ranked[nlive].member = m;
		ranked[nlive].nowned = m->nowned + (m == me ? bms_num_members(given_up) : 0);
		nlive++;
		if (m != me)
			for (i = 0; i < OWNED_BYTES; i++)
				taken[i] |= m->owned[i];
		earliest = Min(earliest, member_lease(m));
	}
	qsort(ranked, nlive, sizeof(RankedMember), compare_ranked);
	while (ranked[rank].member != me)
		rank++;
	quota = partitions / nlive + (rank < partitions % nlive ? 1 : 0);

	for (p = 0; p < partitions; p++)
		if (OWNS(me, p) && release_deferred(me, p))
			ndeferred++;

	/* a polling member releases the highest-numbered partitions beyond the share */
	if (args->holds == SYNC_RELEASES)
		for (p = partitions - 1; p >= 0 && me->nowned - ndeferred > quota; p--)
			if (OWNS(me, p) && !release_deferred(me, p))
			{
				if (bms_is_member(p, args->busy))
				{
					defer_change(&deferred_changes, me, p);
					ndeferred++;
					continue;
				}
				CLEAR_OWNED(me, p);
				me->nowned--;
			}

	/*
	 * Claim free ones up to the share: first those the member just gave up
	 * (sticky for a client that gives up everything before it syncs), then
	 * the lowest-numbered.
	 */
	for (pass = 0; pass < 2; pass++)
		for (p = 0; p < partitions && me->nowned - ndeferred < quota; p++)
			if (!OWNS(me, p) && (taken[p / 8] & (1 << (p % 8))) == 0 &&
				(pass == 1 || bms_is_member(p, given_up)))
			{
				SET_OWNED(me, p);
				me->nowned++;
			}

	if (memcmp(before, me->owned, OWNED_BYTES) != 0)
		gt->generation++;
	me->share = quota;
	gt->check_after = earliest;
	pfree(ranked);
	pfree(taken);
	pfree(before);
	bms_free(given_up);
	return member_target_list(me, partitions, quota, releasing);
}

/*
 * The membership part of a poll or a sync, the one place that decides
 * membership, leases and assignment: joins (group, topic) if needed,
 * renews the lease, takes back what the member says it gave up,
 * rebalances if anything changed since this session's last look, and
 * returns the member's target assignment: the partitions it is to consume
 * now.  *releasing gets the partitions it owns besides: those whose release
 * is deferred to the end of the transaction (args->busy: those the
 * transaction read from or committed), and those a syncing member holds
 * beyond its share until it says it gave them up.
 *
 * *generation is the caller's memory of the group's generation (0 at
 * first), *join_epoch its memory of the member entry's join epoch (0 at
 * first); both are set to the current ones.  A new join epoch means the
 * member joined again (its lease had expired), so positions made for
 * another epoch are stale (position.c).
 */
List *
group_member_sync(const char *group_id, const char *member_id, PgqTopic *topic,
				  const MemberSyncArgs *args, uint64 *generation, uint64 *join_epoch,
				  List **releasing)
{
	TimestampTz now = GetCurrentTimestamp();
	PgqGroupTopic *gt;
	PgqMember  *me;
	PgqGroupTopicKey gtkey;
	List	   *owned = NIL;
	bool		found;

	group_topic_key(&gtkey, group_id, topic->topic_id);

	/*
	 * The fast path: nothing changed since this member's last rebalance,
	 * and it neither gave anything up nor holds more than its share.
	 */
	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	gt = hash_search(group_topics, &gtkey, HASH_FIND, NULL);
	me = gt ? member_find(group_id, topic->topic_id, member_id) : NULL;
	if (me != NULL && me->join_epoch == *join_epoch && gt->generation == *generation &&
		now < gt->check_after && gt->partitions == topic->partitions &&
		(args->holds == SYNC_RELEASES || me->nowned <= me->share) &&
		(args->holds != SYNC_HOLDS_LISTED || member_holds_all(me, gt->partitions, args->held)))
	{
		member_renew(me, now, args);
		owned = member_target_list(me, gt->partitions, gt->partitions, releasing);
		LWLockRelease(pgq_groups->lock);
		return owned;
	}
	LWLockRelease(pgq_groups->lock);

	LWLockAcquire(pgq_groups->lock, LW_EXCLUSIVE);
	gt = hash_search(group_topics, &gtkey, HASH_ENTER_NULL, &found);
	if (gt == NULL)
		goto out_of_slots;
	if (!found)
	{
		dlist_init(&gt->members);
		gt->generation = 1;
		gt->partitions = topic->partitions;
		gt->check_after = DT_NOEND;
	}
	me = member_find(group_id, topic->topic_id, member_id);
	if (me == NULL)
	{
		PgqMemberKey key;

		memset(&key, 0, sizeof(key));
		key.group = gtkey;
		strlcpy(key.member_id, member_id, sizeof(key.member_id));
		me = hash_search(members, &key, HASH_ENTER_NULL, &found);
		if (me == NULL)
		{
			if (dlist_is_empty(&gt->members))
				hash_search(group_topics, &gtkey, HASH_REMOVE, NULL);
			goto out_of_slots;
		}
		me->join_epoch = pgq_groups->next_join_epoch++;
		SpinLockInit(&me->mutex);
		me->committing_pid = 0;
		me->own_timeout_ms = 0;
		me->share = 0;
		me->nowned = 0;
		memset(me->owned, 0, OWNED_BYTES);
		dlist_push_tail(&gt->members, &me->node);
		gt->generation++;

		if (strcmp(member_id, group_session_member_id()) == 0 && !leave_at_exit_registered)
		{
			before_shmem_exit(group_leave_at_exit, (Datum) 0);
			leave_at_exit_registered = true;
		}
	}
	member_renew(me, now, args);
	owned = group_rebalance(gt, me, topic->partitions, now, args, releasing);

	*join_epoch = me->join_epoch;
	*generation = gt->generation;
	LWLockRelease(pgq_groups->lock);
	return owned;

out_of_slots:
	LWLockRelease(pgq_groups->lock);
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of pgqueue group member slots"),
			 errdetail("Shared memory holds at most %d members over all groups and topics.",
					   pgq_max_group_members),
			 errhint("Increase pgqueue.max_group_members and restart the server.")));
	return NIL;					/* keep the compiler quiet */
}

/*
 * Does the member own the partition, with a fresh lease?  The fencing test
 * of commits and seeks.
 */
bool
group_member_owns(const char *group_id, const char *member_id, int32 topic_id,
				  int32 partition)
{
	PgqMember  *m;
	bool		owns = false;

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	m = member_find(group_id, topic_id, member_id);
	if (m != NULL && partition < pgq_max_partitions && OWNS(m, partition) &&
		member_lease(m) > GetCurrentTimestamp())
		owns = true;
	LWLockRelease(pgq_groups->lock);
	return owns;
}

/*
 * The partitions a member owns now (with a fresh lease), and its join
 * epoch (0 if it is not a member).
 */
List *
group_member_owned(const char *group_id, const char *member_id, int32 topic_id,
				   uint64 *join_epoch)
{
	PgqMember  *m;
	List	   *owned = NIL;

	*join_epoch = 0;
	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	m = member_find(group_id, topic_id, member_id);
	if (m != NULL && member_lease(m) > GetCurrentTimestamp())
	{
		PgqGroupTopic *gt = hash_search(group_topics, &m->key.group, HASH_FIND, NULL);

		owned = member_owned_list(m, gt->partitions);
		*join_epoch = m->join_epoch;
	}
	LWLockRelease(pgq_groups->lock);
	return owned;
}

/*
 * Pins a member that owns the partition with a fresh lease until this
 * transaction ends, so that its lease cannot expire while the transaction
 * commits the partition's offset (see the header comment).  Returns false,
 * pinning nothing, if the member does not own it any more.
 */
bool
group_member_pin(const char *group_id, const char *member_id, int32 topic_id, int32 partition)
{
	PgqMember  *m;
	bool		ok = false;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	m = member_find(group_id, topic_id, member_id);
	if (m != NULL && partition < pgq_max_partitions && OWNS(m, partition))
	{
		bool		newly = false;

		SpinLockAcquire(&m->mutex);
		if (m->committing_pid == MyProcPid)
			ok = true;
		else if (m->lease_expires > now)
		{
			/* another session committing as the same member keeps its pin */
			if (m->committing_pid == 0)
			{
				m->committing_pid = MyProcPid;
				newly = true;
			}
			ok = true;
		}
		SpinLockRelease(&m->mutex);
		if (newly)
			defer_change(&pinned_members, m, -1);
	}
	LWLockRelease(pgq_groups->lock);
	return ok;
}

/* The topics the member consumes in the group. */
List *
group_member_topics(const char *group_id, const char *member_id)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	List	   *topics = NIL;

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (member_matches(m, group_id, member_id))
			topics = lappend_int(topics, m->key.group.topic_id);
	LWLockRelease(pgq_groups->lock);
	return topics;
}

/*
 * Is member_id a member of the group in a topic of a database (of any
 * database: for the worker's sweep of positions)?
 */
bool
group_member_exists(Oid dbid, const char *group_id, int32 topic_id, const char *member_id)
{
	PgqMemberKey key;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.group.dbid = dbid;
	key.group.topic_id = topic_id;
	strlcpy(key.group.group_id, group_id, sizeof(key.group.group_id));
	strlcpy(key.member_id, member_id, sizeof(key.member_id));
	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	found = hash_search(members, &key, HASH_FIND, NULL) != NULL;
	LWLockRelease(pgq_groups->lock);
	return found;
}

/* Raises 55000: the member is not (or no longer) in the group. */
void
member_not_in_group_error(const char *group_id, const char *member_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("member \"%s\" is not in group \"%s\"", member_id, group_id),
			 errdetail("It has not polled yet, it left, or its session timed out."),
			 errhint("Poll to join the group.")));
}

/* Raises 55000 unless the member is in the group (in any topic). */
void
member_check_exists(const char *group_id, const char *member_id)
{
	if (group_member_topics(group_id, member_id) == NIL)
		member_not_in_group_error(group_id, member_id);
}

/*
 * The partitions a member owns in a topic and the generation of the
 * group's assignment of the topic; false if it is not a member there.
 * Nothing is renewed or rebalanced.
 */
bool
group_member_assignment(const char *group_id, const char *member_id, int32 topic_id,
						List **owned, uint64 *generation)
{
	PgqMember  *m;
	bool		found = false;

	*owned = NIL;
	*generation = 0;
	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	m = member_find(group_id, topic_id, member_id);
	if (m != NULL)
	{
		PgqGroupTopic *gt = hash_search(group_topics, &m->key.group, HASH_FIND, NULL);

		*owned = member_owned_list(m, gt->partitions);
		*generation = gt->generation;
		found = true;
	}
	LWLockRelease(pgq_groups->lock);
	return found;
}

/*
 * Makes the member leave every topic of the group when this transaction
 * commits (nothing happens if it aborts).  Returns false if it is not a
 * member.
 */
bool
group_member_leave_at_commit(const char *group_id, const char *member_id)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	bool		found = false;

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (member_matches(m, group_id, member_id))
		{
			defer_change(&deferred_changes, m, -1);
			found = true;
		}
	LWLockRelease(pgq_groups->lock);
	return found;
}

/*
 * At the end of a transaction: unpin the members it pinned, release the
 * partitions whose release it deferred, and (at commit) make the members
 * it asked to leave leave.
 */
static void
group_xact_callback(XactEvent event, void *arg)
{
	bool		commit;
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			commit = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			commit = false;
			break;
		default:
			return;
	}
	if (deferred_changes == NIL && pinned_members == NIL)
		return;

	/* unpinning alone changes only mutex-protected fields */
	LWLockAcquire(pgq_groups->lock, deferred_changes != NIL ? LW_EXCLUSIVE : LW_SHARED);
	foreach(lc, pinned_members)
	{
		DeferredChange *d = lfirst(lc);
		PgqMember  *m = member_find(d->group_id, d->topic_id, d->member_id);

		if (m != NULL)
		{
			SpinLockAcquire(&m->mutex);
			if (m->committing_pid == MyProcPid)
				m->committing_pid = 0;
			SpinLockRelease(&m->mutex);
		}
	}
	foreach(lc, deferred_changes)
	{
		DeferredChange *d = lfirst(lc);
		PgqMember  *m = member_find(d->group_id, d->topic_id, d->member_id);
		PgqGroupTopic *gt;

		if (m == NULL || m->join_epoch != d->join_epoch)
			continue;			/* it left or expired meanwhile */
		gt = hash_search(group_topics, &m->key.group, HASH_FIND, NULL);
		if (d->partition < 0)
		{
			if (commit)
				member_remove(gt, m);
		}
		else if (OWNS(m, d->partition))
		{
			CLEAR_OWNED(m, d->partition);
			m->nowned--;
			gt->generation++;
		}
	}
	LWLockRelease(pgq_groups->lock);
	list_free_deep(pinned_members);
	pinned_members = NIL;
	list_free_deep(deferred_changes);
	deferred_changes = NIL;
}

/*
 * Renews the member's leases on every topic it consumes in the group, for
 * session_timeout_ms (the group's), or for its own session timeout where a
 * sync gave it one.  Returns false if it is not a member (it never polled,
 * left, or expired and was removed).
 */
bool
group_member_heartbeat(const char *group_id, const char *member_id, int session_timeout_ms)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	bool		found = false;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		if (member_matches(m, group_id, member_id))
		{
			SpinLockAcquire(&m->mutex);
			m->lease_expires = TimestampTzPlusMilliseconds(now, m->own_timeout_ms > 0 ?
														   m->own_timeout_ms : session_timeout_ms);
			SpinLockRelease(&m->mutex);
			found = true;
		}
	}
	LWLockRelease(pgq_groups->lock);
	return found;
}

/*
 * Removes a member from every topic of the group (of every group, if
 * group_id is NULL).  Its partitions are free at once.  Returns false if it
 * was not a member.
 */
static bool
group_member_leave(const char *group_id, const char *member_id)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	bool		found = false;

	LWLockAcquire(pgq_groups->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		if (member_matches(m, group_id, member_id))
		{
			PgqGroupTopic *gt = hash_search(group_topics, &m->key.group, HASH_FIND, NULL);

			member_remove(gt, m);
			found = true;
		}
	}
	LWLockRelease(pgq_groups->lock);
	return found;
}

/*
 * Does the group have a live member (on the topic, or on any topic if
 * topic_id is 0)?  Admin actions on committed offsets require that it has
 * none, as Kafka's offset reset requires an inactive group.  A member that
 * this transaction made leave (at its commit) does not count.
 */
bool
group_has_live_members(const char *group_id, int32 topic_id)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	bool		live = false;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		if (m->key.group.dbid == MyDatabaseId &&
			(topic_id == 0 || m->key.group.topic_id == topic_id) &&
			strcmp(m->key.group.group_id, group_id) == 0 &&
			member_lease(m) > now && !release_deferred(m, -1))
			live = true;
	}
	LWLockRelease(pgq_groups->lock);
	return live;
}

/*
 * Removes every member whose lease expired (in every database), freeing its
 * slot and its partitions; run by the worker.  Polls do the same lazily for
 * their own group, so this only matters for groups nobody polls any more.
 */
void
group_expire_members(void)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(pgq_groups->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (member_lease(m) <= now)
			member_remove(hash_search(group_topics, &m->key.group, HASH_FIND, NULL), m);
	LWLockRelease(pgq_groups->lock);
}

/*
 * Forgets the group state of a dropped topic (at the drop's commit), or of
 * every topic of the database if topic_id is 0.
 */
void
group_forget_topic(Oid dbid, int32 topic_id)
{
	HASH_SEQ_STATUS seq;
	PgqMember  *m;

	LWLockAcquire(pgq_groups->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		if (m->key.group.dbid == dbid && (topic_id == 0 || m->key.group.topic_id == topic_id))
			member_remove(hash_search(group_topics, &m->key.group, HASH_FIND, NULL), m);
	}
	LWLockRelease(pgq_groups->lock);
}

/*
 * SQL: the live members of the current database with their partitions and
 * lease expiry; backs pgq_members, pgq_groups and pgq_consumer_lag.
 */
Datum
pgq_members_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	HASH_SEQ_STATUS seq;
	PgqMember  *m;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	LWLockAcquire(pgq_groups->lock, LW_SHARED);
	hash_seq_init(&seq, members);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		TimestampTz lease = member_lease(m);
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		Datum	   *parts;
		int			n = 0;
		int32		p;
		PgqGroupTopic *gt;

		if (m->key.group.dbid != MyDatabaseId || lease <= now)
			continue;
		gt = hash_search(group_topics, &m->key.group, HASH_FIND, NULL);
		parts = palloc(sizeof(Datum) * Max(m->nowned, 1));
		for (p = 0; p < gt->partitions; p++)
			if (OWNS(m, p))
				parts[n++] = Int32GetDatum(p);
		values[0] = CStringGetTextDatum(m->key.group.group_id);
		values[1] = CStringGetTextDatum(m->key.member_id);
		values[2] = Int32GetDatum(m->key.group.topic_id);
		values[3] = PointerGetDatum(construct_array(parts, n, INT4OID, 4, true, TYPALIGN_INT));
		values[4] = TimestampTzGetDatum(lease);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(pgq_groups->lock);
	return (Datum) 0;
}
