/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  Kafka's error code for a failed SQL statement, by its SQLSTATE.
 *
 *	  pgqueue gives every error a specific SQLSTATE (README, "Errors"); this
 *	  is the one place that turns them into Kafka's codes.  A code that is
 *	  retriable in Kafka (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) makes the
 *	  client refresh its metadata and retry, which is what a lost
 *	  connection, a standby or a failover needs.  An API whose SQLSTATE
 *	  means something more specific in its context maps it before calling
 *	  this (the group APIs: 55000, a fenced member).
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <string.h>

typedef struct SqlstateMap
{
	const char *sqlstate;		/* five characters, or a two-character class */
	int16_t		error;
} SqlstateMap;

static const SqlstateMap sqlstate_map[] = {
	{"42704", KERR_UNKNOWN_TOPIC_OR_PARTITION}, /* undefined_object */
	{"42602", KERR_INVALID_TOPIC_EXCEPTION},	/* invalid_name */
	{"42501", KERR_TOPIC_AUTHORIZATION_FAILED}, /* insufficient_privilege */
	{"54000", KERR_MESSAGE_TOO_LARGE},	/* program_limit_exceeded */
	/* invalid_parameter_value: in reads, an offset outside the log */
	{"22023", KERR_OFFSET_OUT_OF_RANGE},
	/* headers that are not Kafka's encoding, or not UTF-8 keys */
	{"22P03", KERR_INVALID_RECORD},
	{"22021", KERR_INVALID_RECORD},
	/* the idempotent producer's (docs/producers.md) */
	{"PQ001", KERR_OUT_OF_ORDER_SEQUENCE_NUMBER},
	{"PQ002", KERR_DUPLICATE_SEQUENCE_NUMBER},
	{"PQ003", KERR_INVALID_PRODUCER_EPOCH},
	{"PQ004", KERR_UNKNOWN_PRODUCER_ID},
	/* a standby, or a primary that is shutting down: retry elsewhere */
	{"25006", KERR_NOT_LEADER_OR_FOLLOWER},	/* read_only_sql_transaction */
	{"57P01", KERR_NOT_LEADER_OR_FOLLOWER},	/* admin_shutdown */
	{"57P02", KERR_NOT_LEADER_OR_FOLLOWER},	/* crash_shutdown */
	{"57P03", KERR_NOT_LEADER_OR_FOLLOWER},	/* cannot_connect_now */
	{"08", KERR_NOT_LEADER_OR_FOLLOWER},	/* connection exceptions */
	/* nothing happened: the client may simply retry */
	{"57014", KERR_REQUEST_TIMED_OUT},	/* query_canceled */
	{"40001", KERR_REQUEST_TIMED_OUT},	/* serialization_failure */
	{"40P01", KERR_REQUEST_TIMED_OUT},	/* deadlock_detected */
	/* wrong arguments: a bug of the gateway's or a request it let through */
	{"22004", KERR_INVALID_REQUEST},	/* null_value_not_allowed */
	{"2202E", KERR_INVALID_REQUEST},	/* array_subscript_error */
	/*
	 * 55000 (object_not_in_prerequisite_state) is a fenced member's commit
	 * for the group APIs, which map it to ILLEGAL_GENERATION or
	 * UNKNOWN_MEMBER_ID themselves; anywhere else it is a server error.
	 */
	{NULL, 0}
};

int16_t
kafka_error_for_sqlstate(const char *sqlstate)
{
	const SqlstateMap *m;

	if (sqlstate == NULL)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	for (m = sqlstate_map; m->sqlstate; m++)
	{
		if (strncmp(sqlstate, m->sqlstate, strlen(m->sqlstate)) == 0)
			return m->error;
	}
	return KERR_UNKNOWN_SERVER_ERROR;
}
