/*-------------------------------------------------------------------------
 *
 * position.c
 *	  Members' positions in backend memory, and what the current transaction
 *	  did to them (see consumer.h for the vocabulary).
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
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "consumer.h"

/* the value of a position before a (sub)transaction first changed it */
typedef struct PositionUndo
{
	Position	before;
	bool		existed;
	int			nest_level;
} PositionUndo;

static HTAB *positions = NULL;
static List *position_undo = NIL;	/* PositionUndo, in TopMemoryContext */
static List *offsets_committed = NIL;	/* PositionKey of the offsets this
										 * transaction committed for a member,
										 * in TopMemoryContext */

static void position_xact_callback(XactEvent event, void *arg);
static void position_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
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

/* Sets up this backend's positions; called before any other function here. */
void
positions_init(void)
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
	RegisterXactCallback(position_xact_callback, NULL);
	RegisterSubXactCallback(position_subxact_callback, NULL);
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

Position *
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
Position *
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

void
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
 * The positions of a member in a topic (every topic if topic_id is 0).  The
 * entries stay put until dropped.
 */
List *
positions_of_member(const char *group_id, const char *member_id, int32 topic_id)
{
	HASH_SEQ_STATUS seq;
	Position   *pos;
	List	   *result = NIL;

	hash_seq_init(&seq, positions);
	while ((pos = hash_seq_search(&seq)) != NULL)
		if ((topic_id == 0 || pos->key.topic_id == topic_id) &&
			strcmp(pos->key.group_id, group_id) == 0 &&
			strcmp(pos->key.member_id, member_id) == 0)
			result = lappend(result, pos);
	return result;
}

/*
 * Drops the positions of a member in a topic (every topic if topic_id is 0),
 * except those of the partitions in keep.
 */
void
positions_drop(const char *group_id, const char *member_id, int32 topic_id, List *keep)
{
	List	   *mine = positions_of_member(group_id, member_id, topic_id);
	ListCell   *lc;
	Bitmapset  *kept = NULL;

	foreach(lc, keep)
		kept = bms_add_member(kept, lfirst_int(lc));
	foreach(lc, mine)
	{
		Position   *pos = lfirst(lc);

		if (!bms_is_member(pos->key.partition, kept))
			position_drop(pos);
	}
	list_free(mine);
	bms_free(kept);
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
	return busy;
}
