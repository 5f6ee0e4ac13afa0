/*-------------------------------------------------------------------------
 *
 * producer.h
 *	  Idempotent producers: producer ids, epochs and per-partition sequence
 *	  numbers, checked at append (producer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_PRODUCER_H
#define PGQ_PRODUCER_H

#include "access/transam.h"
#include "storage/lwlock.h"
#include "topic.h"

/* The idempotence arguments of a send; producer_id < 0: none given. */
typedef struct PgqProducerArgs
{
	int64		producer_id;
	int32		epoch;
	int32		sequence;		/* of the first record to the partition */
} PgqProducerArgs;

/* What an append of count records with these arguments must do. */
typedef enum PgqProducerVerdict
{
	PRODUCER_APPEND,			/* the next sequence: append */
	PRODUCER_DUPLICATE,			/* appended before: *first_offset has its offset */
	PRODUCER_WAIT,				/* another transaction's batch decides: wait for *xid */
	PRODUCER_RELOAD				/* the state went away: load it and try again */
} PgqProducerVerdict;

extern int	pgq_max_producer_states;
extern int	pgq_producer_id_expiration;

extern Size producer_shmem_size(void);
extern void producer_shmem_startup(LWLock *lock);

extern bool producer_args_get(FunctionCallInfo fcinfo, int argno, PgqProducerArgs *args);
extern void producer_check_epoch(const PgqProducerArgs *args);
extern int32 producer_partition(PgqTopic *topic, const PgqProducerArgs *args);
extern void producer_state_ensure(PgqTopic *topic, int32 partition, Oid incarnation,
								  const PgqProducerArgs *args);
extern PgqProducerVerdict producer_check(PgqTopic *topic, int32 partition, Oid incarnation,
										 const PgqProducerArgs *args, int32 count,
										 int64 *first_offset, TransactionId *xid);
extern void producer_record(int32 topic_id, int32 partition, Oid incarnation,
							const PgqProducerArgs *args, int32 count, int64 first_offset);
extern void producer_expire(void);
extern void producer_forget(Oid dbid, int32 topic_id);

#endif							/* PGQ_PRODUCER_H */
