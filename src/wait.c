/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Long polling: readers wait for records, woken when a send ends.
 *
 * pgq_fetch and pgq_poll with timeout_ms > 0 that find nothing to return
 * sleep on their topic's condition variable (partition_state.c) until a
 * transaction that sent to the topic commits or aborts, then read again with
 * a new snapshot; they return as soon as a read finds records, or when the
 * timeout passes, or when the query is cancelled.  A sending transaction
 * broadcasts at its end from a transaction callback: after commit, its
 * records are visible to the snapshots the woken readers take.  An abort
 * wakes readers too, because a rolled-back record may have been holding
 * back committed ones; a reader that then still finds nothing goes back to
 * sleep for the rest of its timeout, so from outside a rollback does not end
 * a wait.
 *
 * While it sleeps a reader holds no lock on segment tables (partition_scan
 * releases them after each read), so it never holds up retention, and it
 * burns no CPU; pg_stat_activity shows wait_event_type "Extension".  It does
 * keep its statement's snapshot, as any running statement does, and the
 * AccessShareLocks its topic lookup took on pgqueue's catalog tables (they
 * conflict only with DROP EXTENSION or VACUUM FULL of the catalog).
 *
 * A topic's segments can change during a wait: the worker rolls a partition
 * over to a new segment, or retention drops its oldest ones.  Each read
 * therefore first checks the catalog generation (partition_state.c) and, if
 * it moved since the partitions' segment lists were loaded, forgets them, so that
 * the read finds records in a segment created during the wait and does not
 * trip over a dropped one.  The generation is read before the segment lists
 * are reloaded, and it is bumped only after the change committed, so a
 * change the reload may have missed moves it again and the next read
 * catches up.
 *
 * In REPEATABLE READ or SERIALIZABLE a read could never see records
 * committed after the transaction's snapshot, so there is no wait: the call
 * returns at once.  On a hot standby there are no local senders to wake the
 * reader: it checks again every 10 ms until the timeout, and since the
 * primary's changes do not move the standby's catalog generation, each of
 * those reads loads the segment lists again (one catalog query per read).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "fetch.h"

/* topics this transaction sent to, to wake their readers at its end */
static int32 *sent_topics = NULL;
static int	nsent_topics = 0;
static int	sent_topics_alloc = 0;

#define STANDBY_RECHECK_MS	10

/*
 * Before a read that follows a wait: makes the reads of the topic's
 * partitions load their segment lists again if the catalog changed since
 * they were loaded (*seen is the generation they are at least as new as).
 * On a hot standby the generation does not follow the primary's changes,
 * so the lists are always loaded again.
 */
static void
wait_forget_stale_segments(PgqTopic *topic, bool in_recovery, uint64 *seen)
{
	uint64		generation = pgq_catalog_generation();
	int32		partition;

	if (!in_recovery && generation == *seen)
		return;
	for (partition = 0; partition < topic->partitions; partition++)
		topic_partition_info_forget(topic, partition);
	*seen = generation;
}

/*
 * Runs step (a read of the topic that returns how many records it served)
 * and, while it serves nothing and time is left, waits for a send to the
 * topic to end and runs it again with a new snapshot and current segment
 * lists.  topic is the cache entry step reads through; it must stay the
 * entry of this topic for the whole call (no topic_lookup of the same name
 * may reload it meanwhile).
 */
void
wait_for_records(PgqTopic *topic, int32 timeout_ms, PgqReadStep step, void *arg)
{
	ConditionVariable *cv = topic_wakeup_cv(topic->topic_id);
	TimestampTz deadline;
	bool		in_recovery = RecoveryInProgress();
	bool		first = true;
	uint64		seen_generation = topic->generation;
	MemoryContext step_cxt;
	MemoryContext old_cxt;

	if (timeout_ms == 0 || IsolationUsesXactSnapshot())
	{
		step(arg);
		return;
	}

	/*
	 * What a read allocates besides its results (which go to the caller's
	 * tuplestore) is freed before the next one: a wait may see thousands of
	 * wake-ups.
	 */
	step_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgqueue read step",
									 ALLOCSET_DEFAULT_SIZES);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;)
	{
		int64		served;
		long		remaining;

		/* register before reading, so that no wake-up is missed */
		if (!in_recovery)
			ConditionVariablePrepareToSleep(cv);
		MemoryContextReset(step_cxt);
		old_cxt = MemoryContextSwitchTo(step_cxt);
		if (first)
			served = step(arg);
		else
		{
			wait_forget_stale_segments(topic, in_recovery, &seen_generation);
			PushActiveSnapshot(GetLatestSnapshot());
			served = step(arg);
			PopActiveSnapshot();
		}
		MemoryContextSwitchTo(old_cxt);
		first = false;

		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (served > 0 || remaining <= 0)
			break;
		if (in_recovery)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining, STANDBY_RECHECK_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		else
			(void) ConditionVariableTimedSleep(cv, remaining, PG_WAIT_EXTENSION);
	}
	if (!in_recovery)
		ConditionVariableCancelSleep();
	MemoryContextDelete(step_cxt);
}

/* Records that this transaction sent to a topic, to wake its readers at the end. */
void
send_wakeup_register(int32 topic_id)
{
	int			i;

	for (i = 0; i < nsent_topics; i++)
		if (sent_topics[i] == topic_id)
			return;
	if (nsent_topics == sent_topics_alloc)
	{
		sent_topics_alloc = Max(8, sent_topics_alloc * 2);
		sent_topics = sent_topics == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(int32) * sent_topics_alloc) :
			repalloc(sent_topics, sizeof(int32) * sent_topics_alloc);
	}
	sent_topics[nsent_topics++] = topic_id;
}

/*
 * At commit (after the records became visible) or abort, wake the readers of
 * the topics this transaction sent to.  A prepared transaction wakes nobody
 * when it is later committed: its readers see its records at their next read
 * (or when their timeout passes).
 */
static void
wait_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (nsent_topics == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			for (i = 0; i < nsent_topics; i++)
				ConditionVariableBroadcast(topic_wakeup_cv(sent_topics[i]));
			/* FALLTHROUGH */
		case XACT_EVENT_PREPARE:
			nsent_topics = 0;
			break;
		default:
			break;
	}
}

void
wait_register_xact_callback(void)
{
	RegisterXactCallback(wait_xact_callback, NULL);
}
