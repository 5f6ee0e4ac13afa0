/*-------------------------------------------------------------------------
 *
 * pgqueue.c
 *	  Module set-up: _PG_init, GUCs and the shared-memory hooks.
 *
 * pgqueue keeps per-partition state (the offset counter and the append
 * lock) in shared memory, so it must be loaded at server start through
 * shared_preload_libraries.  _PG_init does only set-up; the work is in the
 * files named for each concern (see pgqueue.h for the vocabulary).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* GUC: how many partitions, over all topics and databases, shared memory holds */
int			pgq_max_partitions = 8192;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static void
pgq_shmem_request_hook(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	pgq_shmem_request();
	RequestAddinShmemSpace(worker_shmem_size());
}

static void
pgq_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pgq_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgqueue must be loaded via shared_preload_libraries"),
				 errhint("Add pgqueue to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomIntVariable("pgqueue.max_partitions",
							gettext_noop("Maximum number of partitions, over all topics and databases, whose state is kept in shared memory."),
							NULL,
							&pgq_max_partitions,
							8192, 16, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgqueue.max_group_members",
							gettext_noop("Maximum number of consumer-group members (per group and topic) shared memory holds."),
							NULL,
							&pgq_max_group_members,
							1024, 16, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pgqueue.databases",
							   gettext_noop("Databases, separated by commas, in each of which a pgqueue background worker does maintenance."),
							   NULL,
							   &pgq_databases,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   pgq_databases_check_hook, NULL, NULL);

	DefineCustomIntVariable("pgqueue.maintenance_interval",
							gettext_noop("Time between two maintenance rounds of the pgqueue worker (retention, segment rolling, expired members)."),
							NULL,
							&pgq_maintenance_interval,
							10000, 10, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pgqueue.segment_maintenance",
							 gettext_noop("Whether the pgqueue workers roll segments over and apply retention."),
							 gettext_noop("Expired group members are cleared either way."),
							 &pgq_segment_maintenance,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("pgqueue");

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgq_shmem_request_hook;
#else
	pgq_shmem_request_hook();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgq_shmem_startup_hook;

	pgq_worker_register();
	pgq_register_xact_callbacks();
	wait_register_xact_callback();
}
