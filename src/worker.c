/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pgqueue background worker: retention, segment rolling, and the
 *	  clean-up of expired group members.
 *
 * One worker, registered from _PG_init, connects to the database named by
 * pgqueue.database (as pg_cron's cron.database_name) and every
 * pgqueue.retention_check_interval runs a maintenance round there: it drops
 * the shared-memory entries of group members whose lease expired (in every
 * database: that state is cluster-wide) and applies retention to the topics
 * of its database (retention.c).  Topics in other databases get no
 * retention.
 *
 * The worker waits on its latch between rounds (never a bare sleep), reloads
 * the configuration on SIGHUP, exits on SIGTERM, and is restarted by the
 * postmaster five seconds after it died.  On a hot standby it only waits:
 * its first round runs after promotion.  A round with nothing to do costs one
 * catalog query and a size lookup per segment.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

PGDLLEXPORT void pgq_worker_main(Datum main_arg);

char	   *pgq_database = NULL;
int			pgq_retention_check_interval = 10000;
bool		pgq_retention_enabled = true;

void
pgq_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "pgqueue", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "pgq_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pgqueue worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pgqueue worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* One maintenance round; an error is reported and the round abandoned. */
static void
worker_round(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	pgstat_report_activity(STATE_RUNNING, "pgqueue maintenance");
	PG_TRY();
	{
		group_expire_members();
		if (pgq_retention_enabled)
			retention_round();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
pgq_worker_main(Datum main_arg)
{
	MemoryContext cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(pgq_database, NULL, 0);
	pgstat_report_appname("pgqueue worker");

	cxt = AllocSetContextCreate(TopMemoryContext, "pgqueue worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	/* a previous worker may have died in the middle of a roll */
	partition_state_reset_rolling();

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pgq_retention_check_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (RecoveryInProgress())
			continue;			/* a standby: wait for promotion */

		worker_round();
		MemoryContextReset(cxt);
	}
}
