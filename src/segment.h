/*-------------------------------------------------------------------------
 *
 * segment.h
 *	  Segment tables and offset floors (segment.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_SEGMENT_H
#define PGQ_SEGMENT_H

#include "storage/lockdefs.h"
#include "utils/relcache.h"
#include "topic.h"

/* the columns of a segment table (0-based, as in values arrays) */
#define SEG_NATTS		8
#define SEG_OFFSET		0
#define SEG_TIMESTAMP	1
#define SEG_KEY			2
#define SEG_VALUE		3
#define SEG_HEADERS		4
#define SEG_PRODUCER_ID	5		/* of an idempotent send (producer.c), else null */
#define SEG_PRODUCER_EPOCH 6
#define SEG_SEQUENCE	7

extern Oid	segment_create(int32 topic_id, int32 partition, int32 segment_no,
						   int64 base_offset);
extern void segment_drop(Oid relid);
extern Oid	offset_floor_create(int32 topic_id, int32 partition);
extern Relation segment_open(PgqTopic *topic, Oid relid, LOCKMODE lockmode);
extern int64 segment_max_offset(Oid relid);
extern int64 segment_size(Oid relid);
extern Oid	segment_index(Relation rel);
extern Oid	segment_producer_index(Relation rel);
extern void segment_lock_toast(Relation rel);

/* the offset floor of a partition (see segment.c) */
#define PGQ_OFFSET_FLOOR_STEP	32
extern int64 offset_floor_read(Oid seq);
extern void offset_floor_raise(Oid seq, int64 floor, Oid owner);

#endif							/* PGQ_SEGMENT_H */
