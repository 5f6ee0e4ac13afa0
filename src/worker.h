/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background workers, one per database (worker.c), and the
 *	  maintenance round they run: rolling and retention (retention.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_WORKER_H
#define PGQ_WORKER_H

#include "utils/guc.h"

extern char *pgq_databases;
extern int	pgq_maintenance_interval;
extern bool pgq_segment_maintenance;
extern bool pgq_databases_check_hook(char **newval, void **extra, GucSource source);
extern Size worker_shmem_size(void);
extern void worker_shmem_startup(void);
extern void pgq_worker_register(void);
extern void retention_round(void);

#endif							/* PGQ_WORKER_H */
