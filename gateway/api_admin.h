/*-------------------------------------------------------------------------
 *
 * api_admin.h
 *	  The handlers of api_admin.c, the administration APIs: CreateTopics,
 *	  DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs and
 *	  IncrementalAlterConfigs, for api.c's table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_API_ADMIN_H
#define PGQK_API_ADMIN_H

#include "gateway.h"

extern void api_create_topics(Request *req);
extern void api_delete_topics(Request *req);
extern void api_create_partitions(Request *req);
extern void api_describe_configs(Request *req);
extern void api_alter_configs(Request *req);
extern void api_incremental_alter_configs(Request *req);

#endif							/* PGQK_API_ADMIN_H */
