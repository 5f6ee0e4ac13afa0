/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Long polling: readers wait for records, woken when a send ends.
 *
 * pgq_fetch and pgq_poll with timeout_ms > 0 that find nothing to return
 * (and pgq_wait, which returns no records, and pgq_fetch_partitions, until
 * one of their entries is ready; see read_entries_wait for waits over
 * several topics) sleep on their topic's condition variable (partition_state.c) until a
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
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/proclist.h"
#include "utils/builtins.h"
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

PG_FUNCTION_INFO_V1(pgq_wait);

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
 * Sleeps until a send ends (a broadcast on cv, which the caller prepared
 * to sleep on) or remaining ms pass; on a hot standby, where no local send
 * wakes anybody, for at most STANDBY_RECHECK_MS.
 */
static void
wait_sleep(ConditionVariable *cv, bool in_recovery, long remaining)
{
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
	bool		read_with_statement_snapshot = true;
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

		/*
		 * The first read used the statement's snapshot, taken before we
		 * registered: a send that ended in between woke nobody, so read
		 * again at once with a snapshot taken after registering.
		 */
		if (read_with_statement_snapshot)
		{
			read_with_statement_snapshot = false;
			continue;
		}
		wait_sleep(cv, in_recovery, remaining);
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
 * Wakes the readers that wait for several topics (pgq_wait), if there are
 * any.  The look at the sleepers takes no lock, so that senders do not all
 * take one spinlock when nobody waits: a reader registers as a sleeper
 * before it reads, and the barrier orders our commit before the look, so
 * either the reader's read sees the commit or the look sees the reader.
 */
static void
wake_any_topic_readers(void)
{
	ConditionVariable *cv = topics_wakeup_any_cv();

	pg_memory_barrier();
	if (!proclist_is_empty(&cv->wakeup))
		ConditionVariableBroadcast(cv);
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
			wake_any_topic_readers();
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

/*
 * The condition variable a wait for the entries sleeps on: their topic's if
 * they all share one, else the one for readers of several topics.  NULL if
 * no entry's topic exists (then every entry is ready).
 */
static ConditionVariable *
entries_wakeup_cv(PgqReadEntry *entries, int n)
{
	ConditionVariable *cv = NULL;
	int			i;

	for (i = 0; i < n; i++)
	{
		ConditionVariable *topic_cv;

		if (entries[i].topic == NULL)
			continue;
		topic_cv = topic_wakeup_cv(entries[i].topic->topic_id);
		if (cv != NULL && cv != topic_cv)
			return topics_wakeup_any_cv();
		cv = topic_cv;
	}
	return cv;
}

/* Marks the entries a read would answer now; returns how many. */
static int
entries_check(PgqReadEntry *entries, int n, bool *ready)
{
	int			nready = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ready[i] = read_entry_ready(&entries[i]);
		nready += ready[i] ? 1 : 0;
	}
	return nready;
}

/*
 * Waits until a read of one of the entries would answer (see
 * read_entry_ready), or timeout_ms passes: marks the ready entries in ready
 * and returns how many there are.  With timeout_ms = 0, under REPEATABLE
 * READ or SERIALIZABLE (whose one snapshot would never see a later commit),
 * or with no entries, it only checks, once.
 *
 * A wait for the partitions of one topic sleeps on that topic's condition
 * variable; one for several topics on a shared one, which every sending
 * transaction broadcasts on while someone sleeps there, so such a wait also
 * wakes up (and checks its entries again) when other topics are sent to.
 * Before each check after the first, the topics are looked up again, which
 * reloads their segment lists if topic metadata changed meanwhile.  Each
 * check reads with a snapshot taken after registering as a sleeper, so a
 * caller that reads after a wait must take a new snapshot too.
 */
int
read_entries_wait(PgqReadEntry *entries, int n, int32 timeout_ms, bool *ready)
{
	bool		in_recovery = RecoveryInProgress();
	ConditionVariable *cv = NULL;
	TimestampTz deadline;
	MemoryContext step_cxt;
	MemoryContext old_cxt;
	bool		first = true;
	int			nready;

	/* what a check allocates is freed before the next: a wait may see many wake-ups */
	step_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgqueue wait step",
									 ALLOCSET_DEFAULT_SIZES);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;)
	{
		long		remaining;

		MemoryContextReset(step_cxt);
		old_cxt = MemoryContextSwitchTo(step_cxt);
		if (!first)
			read_entries_lookup(entries, n);
		/* register before reading, so that no wake-up is missed */
		cv = entries_wakeup_cv(entries, n);
		if (!in_recovery && cv != NULL)
			ConditionVariablePrepareToSleep(cv);

		/*
		 * A snapshot taken after registering, even for the first check: the
		 * statement's is older, and a send that ended in between would wake
		 * nobody.  Under REPEATABLE READ there is no wait and the
		 * transaction's snapshot is the only one.
		 */
		if (IsolationUsesXactSnapshot())
			nready = entries_check(entries, n, ready);
		else
		{
			PushActiveSnapshot(GetLatestSnapshot());
			nready = entries_check(entries, n, ready);
			PopActiveSnapshot();
		}
		MemoryContextSwitchTo(old_cxt);
		first = false;

		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (nready > 0 || n == 0 || remaining <= 0 || IsolationUsesXactSnapshot())
			break;
		wait_sleep(cv, in_recovery, remaining);
	}
	if (!in_recovery)
		ConditionVariableCancelSleep();
	MemoryContextDelete(step_cxt);
	return nready;
}

/*
 * pgq_wait(topics, partitions, msg_offsets, timeout_ms): the entries for
 * which a read (pgq_fetch_partitions) would answer now: it would serve a
 * record at or above the offset (below the last stable offset), or move
 * past a gap of rolled-back sends, or report an error.  With timeout_ms > 0
 * and no entry ready, it waits (read_entries_wait) until a send to one of
 * the topics ends and an entry is ready, or the timeout passes.  Returns no
 * records: a Kafka gateway parks its Fetch requests on it, many requests
 * in one wait.
 */
Datum
pgq_wait(PG_FUNCTION_ARGS)
{
	PgqReadEntry *entries;
	int			n = read_entries_get(fcinfo, 0, &entries);
	int32		timeout_ms = DatumGetInt32(pgq_require_arg(fcinfo, 3, "timeout_ms"));
	bool	   *ready = palloc0(sizeof(bool) * Max(n, 1));
	ReturnSetInfo *rsinfo;
	int			i;

	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must not be negative")));
	(void) read_entries_wait(entries, n, timeout_ms, ready);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (!ready[i])
			continue;
		values[0] = Int32GetDatum(i + 1);
		values[1] = PointerGetDatum(entries[i].topic_name);
		values[2] = Int32GetDatum(entries[i].partition);
		values[3] = Int64GetDatum(entries[i].offset);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
