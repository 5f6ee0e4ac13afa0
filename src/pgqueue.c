/*-------------------------------------------------------------------------
 *
 * pgqueue.c
 *	  Module set-up: _PG_init, GUCs and the shared-memory hooks; and
 *	  pgq_require_arg, which every SQL function uses.
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

#include "consumer.h"
#include "fetch.h"
#include "group.h"
#include "producer.h"
#include "topic.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* GUC: how many partitions, over all topics and databases, shared memory holds */
int			pgq_max_partitions = 8192;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;

/*
 * The shared memory of every module, and one named LWLock each for the
 * partition table, the group tables and the positions (their own tranche
 * names, so that pg_stat_activity tells their waits apart).
 */
static void
pgq_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(partition_state_shmem_size());
	RequestAddinShmemSpace(group_shmem_size());
	RequestAddinShmemSpace(positions_shmem_size());
	RequestAddinShmemSpace(producer_shmem_size());
	RequestAddinShmemSpace(worker_shmem_size());
	RequestNamedLWLockTranche("pgqueue_partitions", 1);
	RequestNamedLWLockTranche("pgqueue_groups", 1);
	RequestNamedLWLockTranche("pgqueue_positions", 1);
	RequestNamedLWLockTranche("pgqueue_producers", 1);
}

/* Every module's shared memory is set up here, under AddinShmemInitLock. */
static void
pgq_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	partition_state_shmem_startup(&GetNamedLWLockTranche("pgqueue_partitions")->lock);
	group_shmem_startup(&GetNamedLWLockTranche("pgqueue_groups")->lock);
	positions_shmem_startup(&GetNamedLWLockTranche("pgqueue_positions")->lock);
	producer_shmem_startup(&GetNamedLWLockTranche("pgqueue_producers")->lock);
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

	DefineCustomIntVariable("pgqueue.max_positions",
							gettext_noop("Maximum number of fetch positions of group members (one per member and partition it reads) shared memory holds."),
							NULL,
							&pgq_max_positions,
							8192, 16, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgqueue.max_producer_states",
							gettext_noop("Maximum number of idempotent producers, and of (producer, partition) pairs, whose state shared memory holds."),
							NULL,
							&pgq_max_producer_states,
							8192, 16, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgqueue.producer_id_expiration",
							gettext_noop("Time after which the state of an idle idempotent producer leaves shared memory (Kafka's producer.id.expiration.ms)."),
							gettext_noop("A producer that sends again later finds its state rebuilt from its records, if retention kept them."),
							&pgq_producer_id_expiration,
							86400000, 1000, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
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

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgq_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgq_shmem_startup_hook;

	pgq_worker_register();
	topic_register_xact_callbacks();
	wait_register_xact_callback();
}

/*
 * Returns an argument, raising null_value_not_allowed if it is NULL: the
 * pgq_* functions are not STRICT, so that a NULL gets an error rather than
 * silently no result.
 */
Datum
pgq_require_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return PG_GETARG_DATUM(argno);
}
