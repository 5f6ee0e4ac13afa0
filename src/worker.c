/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pgqueue background workers: retention, segment rolling, and the
 *	  clean-up of expired group members.
 *
 * pgqueue.databases is a comma-separated list of databases (as pg_cron's
 * cron.database_name names one).  _PG_init registers one worker per listed
 * database, "pgqueue worker for <database>"; each connects to its database
 * and every pgqueue.maintenance_interval runs a maintenance round there:
 * it drops the shared-memory entries of group members whose lease expired
 * (in every database: that state is cluster-wide, and removing an expired
 * member twice is harmless) and applies retention to the topics of its
 * database (retention.c).  Topics in databases not listed get no retention.
 *
 * A worker waits on its latch between rounds (never a bare sleep), reloads
 * the configuration on SIGHUP, exits on SIGTERM or on an error, and is
 * restarted by the postmaster five seconds after it died.  On a hot standby it only waits:
 * its first round runs after promotion.  A round with nothing to do costs one
 * catalog query and a size lookup per segment.
 *
 * A listed database that does not exist: connecting to it fails (FATAL) and
 * the postmaster would restart the worker, only to fail again, every five
 * seconds for ever.  So each worker notes in shared memory that it is about
 * to connect; a worker that finds that note left by its predecessor
 * connects to no database instead, and checks pg_database (a shared
 * catalog).  If its database is missing it logs that once and idles,
 * looking again every round; once the database exists (or if it did all
 * along: the failure had another cause) it exits, and its successor
 * connects normally.
 *
 * The workers' own transactions do not wait for synchronous standbys (see
 * worker_main for why that is safe).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "consumer.h"
#include "partition_state.h"
#include "producer.h"
#include "worker.h"

PGDLLEXPORT void pgq_worker_main(Datum main_arg);

char	   *pgq_databases = NULL;
int			pgq_maintenance_interval = 10000;
bool		pgq_segment_maintenance = true;

/* the databases of pgqueue.databases, parsed by _PG_init in the postmaster */
static List *worker_databases = NIL;

/*
 * What each worker (by its index in worker_databases) last did, in shared
 * memory so that it survives the worker: WORKER_CONNECTING is set just
 * before connecting and replaced once connected.  Only the worker of that
 * index writes its slot, and only one runs at a time: no lock.
 */
#define WORKER_FRESH		0
#define WORKER_CONNECTING	1
#define WORKER_CONNECTED	2

static pg_atomic_uint32 *worker_slots = NULL;

/*
 * Splits a pgqueue.databases value into database names, without duplicates.
 * Returns false if the list is malformed (the names are as in SQL: double
 * quotes keep commas and spaces; unquoted names keep their case).
 */
static bool
worker_database_list(const char *value, List **names)
{
	char	   *raw = pstrdup(value);
	List	   *list;
	ListCell   *lc;

	*names = NIL;
	if (!SplitGUCList(raw, ',', &list))
		return false;
	foreach(lc, list)
	{
		char	   *name = (char *) lfirst(lc);

		if (strlen(name) == 0 || strlen(name) >= NAMEDATALEN)
			return false;
		if (!list_member(*names, makeString(name)))
			*names = lappend(*names, makeString(name));
	}
	return true;
}

/* GUC check hook of pgqueue.databases. */
bool
pgq_databases_check_hook(char **newval, void **extra, GucSource source)
{
	List	   *names;

	if (!worker_database_list(*newval, &names))
	{
		GUC_check_errdetail("pgqueue.databases must be a comma-separated list of database names, each shorter than %d bytes.",
							NAMEDATALEN);
		return false;
	}
	return true;
}

Size
worker_shmem_size(void)
{
	return mul_size(Max(list_length(worker_databases), 1), sizeof(pg_atomic_uint32));
}

/* Called from the shmem startup hook, holding AddinShmemInitLock. */
void
worker_shmem_startup(void)
{
	bool		found;
	int			i;

	worker_slots = ShmemInitStruct("pgqueue workers", worker_shmem_size(), &found);
	if (!found)
		for (i = 0; i < Max(list_length(worker_databases), 1); i++)
			pg_atomic_init_u32(&worker_slots[i], WORKER_FRESH);
}

/* Registers one worker per database of pgqueue.databases (from _PG_init). */
void
pgq_worker_register(void)
{
	ListCell   *lc;

	/* the check hook accepted the value */
	(void) worker_database_list(pgq_databases, &worker_databases);
	foreach(lc, worker_databases)
	{
		const char *dbname = strVal(lfirst(lc));
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 5;
		strlcpy(worker.bgw_library_name, "pgqueue", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "pgq_worker_main", BGW_MAXLEN);
		snprintf(worker.bgw_name, BGW_MAXLEN, "pgqueue worker for %s", dbname);
		strlcpy(worker.bgw_type, "pgqueue worker", BGW_MAXLEN);
		worker.bgw_main_arg = Int32GetDatum(foreach_current_index(lc));
		strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * One maintenance round.  An error ends the worker (a background worker has
 * no outer error handler, so ERROR becomes FATAL) and the postmaster starts
 * it again after bgw_restart_time, as contrib's worker_spi does: whatever
 * the round had in hand (memory, locks, a half-done transaction) goes with
 * the process, and the new worker starts clean (partition_state_reset_rolling).
 */
static void
worker_round(void)
{
	pgstat_report_activity(STATE_RUNNING, "pgqueue maintenance");
	group_expire_members();
	positions_sweep();
	producer_expire();
	if (pgq_segment_maintenance)
		retention_round();

	/*
	 * Send the round's table and transaction statistics (segments created
	 * and dropped, catalog rows inserted, updated and deleted) to the
	 * cumulative statistics system, as a backend does after each statement:
	 * otherwise autovacuum never learns of the worker's churn on pgqueue's
	 * catalog.  Not forced: within a second of the last report they wait for
	 * the next round.
	 */
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Waits for the next round, handling SIGHUP; false on a hot standby. */
static bool
worker_wait(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 pgq_maintenance_interval, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();

	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	return !RecoveryInProgress();
}

static bool
database_exists(const char *dbname)
{
	bool		exists;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	exists = OidIsValid(get_database_oid(dbname, true));
	CommitTransactionCommand();
	return exists;
}

/*
 * The predecessor of this worker died while connecting to dbname.  Connected
 * to no database, find out whether dbname exists; if not, say so once and
 * wait until it does.  Then exit, to be restarted (after bgw_restart_time)
 * by the postmaster: the next worker connects.  Never returns.
 */
static void
worker_wait_for_database(const char *dbname, pg_atomic_uint32 *slot)
{
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("pgqueue worker");

	if (!database_exists(dbname))
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" listed in pgqueue.databases does not exist", dbname),
				 errdetail("The pgqueue worker for it waits until the database is created; its topics get no retention meanwhile."),
				 errhint("Create the database, or remove it from pgqueue.databases and restart the server.")));
		do
			(void) worker_wait();
		while (!database_exists(dbname));
		ereport(LOG,
				(errmsg("database \"%s\" listed in pgqueue.databases now exists; its pgqueue worker restarts to connect to it",
						dbname)));
	}
	pg_atomic_write_u32(slot, WORKER_FRESH);
	proc_exit(1);
}

void
pgq_worker_main(Datum main_arg)
{
	int			index = DatumGetInt32(main_arg);
	char		dbname[BGW_EXTRALEN];
	pg_atomic_uint32 *slot = &worker_slots[index];
	MemoryContext cxt;

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (pg_atomic_read_u32(slot) == WORKER_CONNECTING)
		worker_wait_for_database(dbname, slot);
	pg_atomic_write_u32(slot, WORKER_CONNECTING);
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pg_atomic_write_u32(slot, WORKER_CONNECTED);
	pgstat_report_appname("pgqueue worker");

	/*
	 * The worker's commits wait for the local WAL flush, never for a
	 * synchronous standby.  A roll holds the partition's senders until its
	 * commit returns (retention.c), so waiting for a standby that is gone
	 * would stop every send to the partition, even sends that do not wait
	 * for standbys themselves (synchronous_commit = off or local).
	 *
	 * Durability does not suffer.  Should a failover lose a roll's commit,
	 * nothing that depends on it survives either: records are inserted
	 * into the new segment only after the roll committed, so their WAL
	 * follows its commit record, and a send acknowledged by a synchronous
	 * commit was replicated together with the roll.  A roll assigns no
	 * offset (the new segment's base is the next offset to be assigned), so
	 * losing it reuses none: the new primary keeps appending to the old
	 * segment, with offsets from the offset floor as always, and rolls it
	 * later.  A lost segment drop merely brings back records retention had
	 * removed; the next round drops them again.
	 */
	SetConfigOption("synchronous_commit", "local", PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "pgqueue worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	/* a previous worker may have died in the middle of a roll */
	partition_state_reset_rolling();

	for (;;)
	{
		if (!worker_wait())
			continue;			/* a standby: wait for promotion */
		worker_round();
		MemoryContextReset(cxt);
	}
}
