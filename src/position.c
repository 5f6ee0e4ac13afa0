/*-------------------------------------------------------------------------
 *
 * position.c
 *	  Members' positions, in shared memory, and what the current transaction
 *	  did to them (see consumer.h for the vocabulary).
 *
 * A position belongs to its member, not to a database session: a member
 * named by member_id polls, commits, seeks and leaves through whichever
 * backend serves the statement (a transaction-mode pooler, a client-side
 * pool), and finds the positions its earlier statements left.  So the
 * positions live in a shared hash table keyed by (database, group, member,
 * topic, partition), of at most pgqueue.max_positions entries.  A member
 * without a member_id is its session (group_session_member_id): its
 * positions are removed when the session ends, and so are the positions a
 * session set last for named members (see positions_at_exit).  Each entry records the
 * member's join epoch (group.c) when it was made: after the member's lease
 * expired and it joined again, its old positions are stale (another member
 * may have moved the committed offset meanwhile), and the poll drops them.
 * The worker drops the positions of members it expires.
 *
 * Locking: PositionsShared->lock protects the table and every field of its
 * entries (shared to read, exclusive to change).  Callers get and set
 * copies; no pointer into the table leaves this file.
 *
 * Positions follow the transaction: if the transaction that polled rolls
 * back, the positions it moved go back too, so the records are delivered
 * again (and a commit made in that transaction is undone with it).  That is
 * what makes poll + process + pgq_commit in one transaction all or nothing.
 * Every change of a position saves its value before the change, per
 * (sub)transaction; an abort puts the saved values back.
 *
 * Fencing at commit: a transaction that committed offsets for a member
 * (commit.c) is checked just before it commits: the member must still own
 * each of those partitions, and is pinned so that it keeps them until the
 * commit is visible (group.c).  So a transaction whose member lost a
 * partition meanwhile fails as a whole, and a new owner never starts from
 * an offset an open transaction is about to move.
 *
 * PREPARE TRANSACTION is refused after a poll or a commit of offsets: a
 * prepared transaction would hold positions and a pin across sessions.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "consumer.h"

/* GUC: how many positions, over all members and databases, shared memory holds */
int			pgq_max_positions = 8192;

typedef struct PositionsShared
{
	LWLock	   *lock;			/* see the file header */
} PositionsShared;

static PositionsShared *positions_shared = NULL;
static HTAB *positions = NULL;

/* the value of a position before a (sub)transaction first changed it */
typedef struct PositionUndo
{
	Position	before;
	bool		existed;
	int			nest_level;
} PositionUndo;

static List *position_undo = NIL;	/* PositionUndo, in TopMemoryContext */
static List *offsets_committed = NIL;	/* PositionKey of the offsets this
										 * transaction committed for a member,
										 * in TopMemoryContext */
static bool positions_initialized = false;

static void position_xact_callback(XactEvent event, void *arg);
static void position_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									  SubTransactionId parentSubid, void *arg);
static void positions_at_exit(int code, Datum arg);

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

	h = hash_bytes_uint32((uint32) k->dbid);
	h = hash_combine(h, hash_bytes((const unsigned char *) k->group_id, strlen(k->group_id)));
	h = hash_combine(h, hash_bytes((const unsigned char *) k->member_id, strlen(k->member_id)));
	h = hash_combine(h, hash_bytes_uint32((uint32) k->topic_id));
	return hash_combine(h, hash_bytes_uint32((uint32) k->partition));
}

Size
positions_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(PositionsShared)),
					hash_estimate_size(pgq_max_positions, sizeof(Position)));
}

/* Called from the shmem startup hook, holding AddinShmemInitLock. */
void
positions_shmem_startup(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	positions_shared = ShmemInitStruct("pgqueue positions", sizeof(PositionsShared), &found);
	if (!found)
		positions_shared->lock = lock;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(PositionKey);
	info.entrysize = sizeof(Position);
	info.hash = position_key_hash;	/* compared whole: keys are zero-padded */
	positions = ShmemInitHash("pgqueue position table",
							  pgq_max_positions, pgq_max_positions,
							  &info, HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
}

/* Sets up this backend's use of positions; called before any other function here. */
void
positions_init(void)
{
	if (positions_initialized)
		return;
	RegisterXactCallback(position_xact_callback, NULL);
	RegisterSubXactCallback(position_subxact_callback, NULL);
	before_shmem_exit(positions_at_exit, (Datum) 0);
	positions_initialized = true;
}

static void
position_key(PositionKey *key, const char *group_id, const char *member_id,
			 int32 topic_id, int32 partition)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	strlcpy(key->group_id, group_id, sizeof(key->group_id));
	strlcpy(key->member_id, member_id, sizeof(key->member_id));
	key->topic_id = topic_id;
	key->partition = partition;
}

/* Copies a member's position of a partition into *pos; false if it has none. */
bool
position_get(const char *group_id, const char *member_id, int32 topic_id, int32 partition,
			 Position *pos)
{
	PositionKey key;
	Position   *entry;

	position_key(&key, group_id, member_id, topic_id, partition);
	LWLockAcquire(positions_shared->lock, LW_SHARED);
	entry = hash_search(positions, &key, HASH_FIND, NULL);
	if (entry != NULL)
		*pos = *entry;
	LWLockRelease(positions_shared->lock);
	return entry != NULL;
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
	Position   *entry;
	MemoryContext old;

	if (position_undo_find(key, level) != NULL)
		return;

	old = MemoryContextSwitchTo(TopMemoryContext);
	undo = palloc0(sizeof(PositionUndo));
	undo->nest_level = level;
	LWLockAcquire(positions_shared->lock, LW_SHARED);
	entry = hash_search(positions, key, HASH_FIND, NULL);
	undo->existed = entry != NULL;
	if (entry != NULL)
		undo->before = *entry;
	else
		undo->before.key = *key;
	LWLockRelease(positions_shared->lock);
	position_undo = lappend(position_undo, undo);
	MemoryContextSwitchTo(old);
}

/* Writes a position into the table, under the lock held exclusively. */
static bool
position_store(const Position *pos)
{
	Position   *entry = hash_search(positions, &pos->key, HASH_ENTER_NULL, NULL);

	if (entry == NULL)
		return false;
	*entry = *pos;
	return true;
}

/*
 * Sets a member's position of a partition: the next offset to read, the
 * last offset it committed (or -1), and the join epoch of the member the
 * position was made for.
 */
void
position_set(const char *group_id, const char *member_id, int32 topic_id, int32 partition,
			 int64 position, int64 committed, uint64 join_epoch)
{
	Position	pos;
	bool		stored;

	position_key(&pos.key, group_id, member_id, topic_id, partition);
	pos.position = position;
	pos.committed = committed;
	pos.join_epoch = join_epoch;
	pos.writer_pid = MyProcPid;
	pos.writer_start = MyStartTimestamp;
	position_save(&pos.key);
	LWLockAcquire(positions_shared->lock, LW_EXCLUSIVE);
	stored = position_store(&pos);
	LWLockRelease(positions_shared->lock);
	if (!stored)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of pgqueue position slots"),
				 errdetail("Shared memory holds at most %d positions of group members.",
						   pgq_max_positions),
				 errhint("Increase pgqueue.max_positions and restart the server.")));
}

void
position_drop(const Position *pos)
{
	position_save(&pos->key);
	LWLockAcquire(positions_shared->lock, LW_EXCLUSIVE);
	hash_search(positions, &pos->key, HASH_REMOVE, NULL);
	LWLockRelease(positions_shared->lock);
}

/*
 * Puts back the positions saved by (sub)transactions at nest_level or
 * deeper, newest first, and forgets those saves.  Runs at abort, so it
 * cannot fail: a position that no longer finds a free slot is left out,
 * and its member reads again from the committed offset.
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
		LWLockAcquire(positions_shared->lock, LW_EXCLUSIVE);
		if (undo->existed)
			(void) position_store(&undo->before);
		else
			hash_search(positions, &undo->before.key, HASH_REMOVE, NULL);
		LWLockRelease(positions_shared->lock);
		position_undo = list_delete_nth_cell(position_undo, i);
		pfree(undo);
	}
}

static void
position_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
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
void
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
			member_fenced_error(k->group_id, k->member_id, topic->name, k->partition);
		}
	}
}

static void
position_xact_callback(XactEvent event, void *arg)
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
 * Copies of the positions of a member in a topic (every topic if topic is
 * NULL), in the current memory context.  For one topic it looks up each of
 * its partitions, under one acquisition of the lock: a poll calls it twice,
 * and a scan of the whole table would cost in proportion to
 * pgqueue.max_positions, not to the member's partitions.
 */
List *
positions_of_member(const char *group_id, const char *member_id, PgqTopic *topic)
{
	HASH_SEQ_STATUS seq;
	Position   *entry;
	List	   *result = NIL;

	LWLockAcquire(positions_shared->lock, LW_SHARED);
	if (topic != NULL)
	{
		PositionKey key;

		position_key(&key, group_id, member_id, topic->topic_id, 0);
		for (key.partition = 0; key.partition < topic->partitions; key.partition++)
		{
			entry = hash_search(positions, &key, HASH_FIND, NULL);
			if (entry != NULL)
			{
				Position   *copy = palloc(sizeof(Position));

				*copy = *entry;
				result = lappend(result, copy);
			}
		}
	}
	else
	{
		hash_seq_init(&seq, positions);
		while ((entry = hash_seq_search(&seq)) != NULL)
			if (entry->key.dbid == MyDatabaseId &&
				strcmp(entry->key.group_id, group_id) == 0 &&
				strcmp(entry->key.member_id, member_id) == 0)
			{
				Position   *copy = palloc(sizeof(Position));

				*copy = *entry;
				result = lappend(result, copy);
			}
	}
	LWLockRelease(positions_shared->lock);
	return result;
}

/*
 * Drops the positions of a member in a topic (every topic if topic is NULL),
 * except those of the partitions in keep made for the member's join epoch
 * (any epoch if join_epoch is 0).  Undone if the transaction aborts.
 */
void
positions_drop(const char *group_id, const char *member_id, PgqTopic *topic, List *keep,
			   uint64 join_epoch)
{
	List	   *mine = positions_of_member(group_id, member_id, topic);
	ListCell   *lc;
	Bitmapset  *kept = NULL;

	foreach(lc, keep)
		kept = bms_add_member(kept, lfirst_int(lc));
	foreach(lc, mine)
	{
		Position   *pos = lfirst(lc);

		if (!bms_is_member(pos->key.partition, kept) ||
			(join_epoch != 0 && pos->join_epoch != join_epoch))
			position_drop(pos);
	}
	list_free_deep(mine);
	bms_free(kept);
}

/*
 * Removes, outside any transaction's undo, the positions of a member of a
 * group in a topic of a database (every member if member_id is NULL, every
 * group and topic of the database if group_id is NULL and topic_id 0):
 * for members that expired or left at the end of their session, and topics
 * that were dropped.
 */
static void
positions_forget(Oid dbid, const char *group_id, int32 topic_id, const char *member_id)
{
	HASH_SEQ_STATUS seq;
	Position   *entry;

	if (positions == NULL)
		return;
	LWLockAcquire(positions_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, positions);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (entry->key.dbid == dbid &&
			(topic_id == 0 || entry->key.topic_id == topic_id) &&
			(group_id == NULL || strcmp(entry->key.group_id, group_id) == 0) &&
			(member_id == NULL || strcmp(entry->key.member_id, member_id) == 0))
			hash_search(positions, &entry->key, HASH_REMOVE, NULL);
	LWLockRelease(positions_shared->lock);
}

/*
 * Removes the positions of members that are not in their group any more
 * (their lease expired, or their topic was dropped), in every database:
 * run by the worker after it expired members.  A member that joins again
 * between the check and the removal loses positions it just made; it then
 * reads again from its committed offset (at least once, never a loss).
 */
void
positions_sweep(void)
{
	HASH_SEQ_STATUS seq;
	Position   *entry;
	PositionKey *owner;
	HASHCTL		ctl;
	HTAB	   *owners;

	/* one key per (database, group, topic, member) with positions */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PositionKey);
	ctl.entrysize = sizeof(PositionKey);
	ctl.hash = position_key_hash;
	ctl.hcxt = CurrentMemoryContext;
	owners = hash_create("pgqueue position owners", 64, &ctl,
						 HASH_ELEM | HASH_FUNCTION | HASH_CONTEXT);
	LWLockAcquire(positions_shared->lock, LW_SHARED);
	hash_seq_init(&seq, positions);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		PositionKey key = entry->key;

		key.partition = 0;
		(void) hash_search(owners, &key, HASH_ENTER, NULL);
	}
	LWLockRelease(positions_shared->lock);

	hash_seq_init(&seq, owners);
	while ((owner = hash_seq_search(&seq)) != NULL)
		if (!group_member_exists(owner->dbid, owner->group_id, owner->topic_id,
								 owner->member_id))
			positions_forget(owner->dbid, owner->group_id, owner->topic_id, owner->member_id);
	hash_destroy(owners);
}

/*
 * At the end of a session, its own member's positions go with it, and so
 * do the positions it set last for named members.  A client that talks to
 * its own backend and dies (a crash, pg_terminate_backend) loses its
 * positions as a Kafka consumer does: whoever polls as that member next
 * starts from the committed offsets, so records the dead client was given
 * but never committed are delivered again.  Behind a pool the backend
 * outlives its clients; a server connection that the pool closes only
 * costs its members a re-read from the committed offset.
 */
static void
positions_at_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS seq;
	Position   *entry;
	const char *session_member = group_session_member_id();

	/* an open transaction's changes are undone first, as its abort would */
	LWLockReleaseAll();
	positions_undo(0);
	LWLockAcquire(positions_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, positions);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (strcmp(entry->key.member_id, session_member) == 0 ||
			(entry->writer_pid == MyProcPid && entry->writer_start == MyStartTimestamp))
			hash_search(positions, &entry->key, HASH_REMOVE, NULL);
	LWLockRelease(positions_shared->lock);
}

/*
 * The partitions of a member in a topic that the current transaction used:
 * moved a position of (read from, started, sought) or committed.
 */
Bitmapset *
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
	/* (a member that commits explicit offsets may have no position) */
	foreach(lc, offsets_committed)
	{
		PositionKey *k = lfirst(lc);

		if (k->topic_id == topic_id && strcmp(k->group_id, group_id) == 0 &&
			strcmp(k->member_id, member_id) == 0)
			busy = bms_add_member(busy, k->partition);
	}
	return busy;
}
