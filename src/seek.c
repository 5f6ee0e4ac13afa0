/*-------------------------------------------------------------------------
 *
 * seek.c
 *	  pgq_seek, which moves a member's positions, and pgq_reset_offsets,
 *	  which moves a group's committed offsets: to the earliest or latest
 *	  offset, to a time, or to an offset.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "consumer.h"
#include "fetch.h"

PG_FUNCTION_INFO_V1(pgq_seek);
PG_FUNCTION_INFO_V1(pgq_reset_offsets);

typedef enum SeekTarget
{
	SEEK_OFFSET,				/* (partition, msg_offset) */
	SEEK_EARLIEST,
	SEEK_LATEST,
	SEEK_TIME
} SeekTarget;

/*
 * Decodes the target of pgq_seek and pgq_reset_offsets from the argument
 * at argno: (partition int, msg_offset bigint), a position text or a
 * timestamptz.
 */
static SeekTarget
seek_target(FunctionCallInfo fcinfo, int argno, PgqTopic *topic, int32 *partition,
			int64 *offset, TimestampTz *time)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, argno);

	if (type == INT4OID)
	{
		*partition = DatumGetInt32(pgq_require_arg(fcinfo, argno, "partition"));
		*offset = DatumGetInt64(pgq_require_arg(fcinfo, argno + 1, "msg_offset"));
		topic_check_partition(topic, *partition);
		check_offset_in_range(topic, *partition, *offset);
		check_offset_not_past_end(topic, *partition, *offset);
		return SEEK_OFFSET;
	}
	if (type == TIMESTAMPTZOID)
	{
		*time = DatumGetTimestampTz(pgq_require_arg(fcinfo, argno, "to_timestamp"));
		return SEEK_TIME;
	}
	else
	{
		char	   *where = text_to_cstring(DatumGetTextPP(pgq_require_arg(fcinfo, argno,
																		   "to_position")));

		if (strcmp(where, "earliest") == 0)
			return SEEK_EARLIEST;
		if (strcmp(where, "latest") == 0)
			return SEEK_LATEST;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid position \"%s\"", where),
				 errhint("Use 'earliest', 'latest', a timestamp, or a partition and an offset.")));
	}
	return SEEK_OFFSET;			/* keep the compiler quiet */
}

/* The offset a seek or reset of one partition goes to. */
static int64
seek_offset(PgqTopic *topic, int32 partition, SeekTarget target, int64 offset, TimestampTz time)
{
	int64		hwm;

	switch (target)
	{
		case SEEK_OFFSET:
			return offset;
		case SEEK_EARLIEST:
			return topic_partition_info(topic, partition)->log_start_offset;
		case SEEK_TIME:
			offset = partition_offset_for_time(topic, partition, time);
			if (offset >= 0)
				return offset;
			/* FALLTHROUGH: no record that late, go to the end (as Kafka does) */
		case SEEK_LATEST:
			break;
	}
	return partition_last_stable_offset(topic, partition, &hwm);
}

/*
 * pgq_seek(group_id, topic, {partition, msg_offset | to_position |
 * to_timestamp}, member_id): moves the member's fetch positions of
 * partitions it owns; the committed offsets do not change.
 */
Datum
pgq_seek(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	int			member_arg = PG_NARGS() - 1;
	const char *member_id = group_arg_member_id(fcinfo, member_arg);
	PgqTopic   *topic = topic_lookup(topic_name, false);
	SeekTarget	target;
	int32		partition = -1;
	int64		offset = 0;
	TimestampTz time = 0;
	List	   *owned;
	uint64		join_epoch;
	ListCell   *lc;

	PreventCommandIfReadOnly("pgq_seek()");
	topic_check_privilege(topic, PGQ_PRIV_CONSUME);
	target = seek_target(fcinfo, 2, topic, &partition, &offset, &time);
	positions_init();
	owned = group_member_owned(group_id, member_id, topic->topic_id, &join_epoch);
	if (target == SEEK_OFFSET)
	{
		if (!list_member_int(owned, partition))
			member_fenced_error(group_id, member_id, topic->name, partition);
		owned = list_make1_int(partition);
	}
	else if (owned == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" of group \"%s\" owns no partition of topic \"%s\"",
						member_id, group_id, topic->name),
				 errhint("Poll first: a member seeks in the partitions assigned to it.")));

	foreach(lc, owned)
	{
		int32		p = lfirst_int(lc);
		Position	pos;
		bool		have = position_get(group_id, member_id, topic->topic_id, p, &pos);

		position_set(group_id, member_id, topic->topic_id, p,
					 seek_offset(topic, p, target, offset, time),
					 have && pos.join_epoch == join_epoch ? pos.committed : -1, join_epoch);
	}
	PG_RETURN_VOID();
}

/*
 * pgq_reset_offsets(group_id, topic, {partition, msg_offset | to_position |
 * to_timestamp}): an admin action on a group's committed offsets, allowed
 * while no live member of the group consumes the topic.
 */
Datum
pgq_reset_offsets(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	text	   *topic_name = DatumGetTextPP(pgq_require_arg(fcinfo, 1, "topic"));
	PgqTopic   *topic = topic_lookup(topic_name, false);
	SeekTarget	target;
	int32		partition = -1;
	int64		offset = 0;
	TimestampTz time = 0;
	int32	   *parts;
	int64	   *offs;
	int			n = 0;
	int32		p;

	PreventCommandIfReadOnly("pgq_reset_offsets()");
	topic_check_privilege(topic, PGQ_PRIV_ADMIN);
	target = seek_target(fcinfo, 2, topic, &partition, &offset, &time);
	if (group_has_live_members(group_id, topic->topic_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("group \"%s\" has live members consuming topic \"%s\"",
						group_id, topic->name),
				 errhint("Stop the members or have them call pgq_leave() first.")));
	positions_init();
	(void) group_config_get(group_id);

	parts = palloc(sizeof(int32) * topic->partitions);
	offs = palloc(sizeof(int64) * topic->partitions);
	for (p = 0; p < topic->partitions; p++)
	{
		if (target == SEEK_OFFSET && p != partition)
			continue;
		parts[n] = p;
		offs[n] = seek_offset(topic, p, target, offset, time);
		n++;
	}
	offsets_write(group_id, NULL, topic, parts, offs, NULL, n, false);
	PG_RETURN_VOID();
}
