/*-------------------------------------------------------------------------
 *
 * api_group.h
 *	  The consumer-group APIs (api_group.c), for api.c's table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_API_GROUP_H
#define PGQK_API_GROUP_H

#include "gateway.h"

#define API_OFFSET_COMMIT		8
#define API_OFFSET_FETCH		9
#define API_FIND_COORDINATOR	10
#define API_JOIN_GROUP			11
#define API_HEARTBEAT			12
#define API_LEAVE_GROUP			13
#define API_SYNC_GROUP			14
#define API_DESCRIBE_GROUPS		15
#define API_LIST_GROUPS			16

extern void api_find_coordinator(Request *req);	/* v0-2 */
extern void api_join_group(Request *req);	/* v0-5 */
extern void api_sync_group(Request *req);	/* v0-3 */
extern void api_heartbeat(Request *req);	/* v0-3 */
extern void api_leave_group(Request *req);	/* v0-3 */
extern void api_offset_commit(Request *req);	/* v2-7 */
extern void api_offset_fetch(Request *req);	/* v1-5 */
extern void api_describe_groups(Request *req);	/* v0-4 */
extern void api_list_groups(Request *req);	/* v0-2 */

/*
 * The Kafka error of a group API's failed statement (NULL: the connection
 * to Postgres was lost): the coordinator errors where the client should
 * look for the coordinator again, else kafka_error_for_sqlstate's.
 */
extern int16_t group_error_for_sqlstate(const char *sqlstate);

#endif							/* PGQK_API_GROUP_H */
