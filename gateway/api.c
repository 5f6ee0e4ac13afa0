/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The table of the Kafka APIs the gateway advertises, their versions and
 *	  their handlers.
 *
 *	  The version ranges are what ApiVersions advertises, and clients derive
 *	  their features from the ranges alone (librdkafka before 2.11 checks
 *	  that each feature's versions overlap ours, e.g. JoinGroup v0 for
 *	  balanced consumers, Produce v0 for compression): so every range here
 *	  is the research notes' "Advertise" column, whether its handler is
 *	  built yet or not.  Versions in [min_version, min_served) use the old
 *	  MessageSet format: no client negotiates them when a newer one is
 *	  shared, and their handler answers UNSUPPORTED_VERSION.
 *
 *	  An entry whose handler is NULL is advertised but not served yet: a
 *	  request to it closes the connection (server.c logs it).
 *
 *	  The SASL APIs are the table's last entries, and exist (advertised and
 *	  served) only with --sasl: advertising them to clients that do not
 *	  authenticate would turn on librdkafka's SaslHandshake and SaslAuthReq
 *	  features for nothing.
 *
 *	  first_flexible is the first flexible version of the API (request
 *	  header v2 with tagged fields, response header v1) if it is within our
 *	  range, else -1.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include "api_admin.h"
#include "api_data.h"
#include "api_group.h"
#include "api_meta.h"
#include "auth.h"

static const ApiSpec api_table[] = {
	/* key, name, advertised min-max, first served, first flexible, handler */
	{0, "Produce", 0, 7, 3, -1, api_produce},
	{1, "Fetch", 0, 11, 4, -1, api_fetch},
	{2, "ListOffsets", 0, 3, 1, -1, api_list_offsets},
	{3, "Metadata", 0, 8, 0, -1, api_metadata},
	{8, "OffsetCommit", 2, 7, 2, -1, api_offset_commit},
	{9, "OffsetFetch", 1, 5, 1, -1, api_offset_fetch},
	{10, "FindCoordinator", 0, 2, 0, -1, api_find_coordinator},
	{11, "JoinGroup", 0, 5, 0, -1, api_join_group},
	{12, "Heartbeat", 0, 3, 0, -1, api_heartbeat},
	{13, "LeaveGroup", 0, 3, 0, -1, api_leave_group},
	{14, "SyncGroup", 0, 3, 0, -1, api_sync_group},
	{15, "DescribeGroups", 0, 4, 0, -1, api_describe_groups},
	{16, "ListGroups", 0, 2, 0, -1, api_list_groups},
	{18, "ApiVersions", 0, 3, 0, 3, api_versions},
	{19, "CreateTopics", 0, 4, 0, -1, api_create_topics},
	{20, "DeleteTopics", 0, 3, 0, -1, api_delete_topics},
	{22, "InitProducerId", 0, 1, 0, -1, api_init_producer_id},
	{32, "DescribeConfigs", 0, 3, 0, -1, api_describe_configs},
	{33, "AlterConfigs", 0, 1, 0, -1, api_alter_configs},
	{37, "CreatePartitions", 0, 1, 0, -1, api_create_partitions},
	{44, "IncrementalAlterConfigs", 0, 0, 0, -1, api_incremental_alter_configs},
	/* only with --sasl: keep these last (API_SASL_COUNT) */
	{API_SASL_HANDSHAKE, "SaslHandshake", 0, 1, 1, -1, api_sasl_handshake},
	{API_SASL_AUTHENTICATE, "SaslAuthenticate", 0, 2, 0, 2, api_sasl_authenticate},
};

#define API_SASL_COUNT 2
#define API_COUNT ((int) (sizeof(api_table) / sizeof(api_table[0])) - \
				   (gw_config.sasl ? 0 : API_SASL_COUNT))

const ApiSpec *
api_lookup(int16_t key)
{
	int			i;

	for (i = 0; i < API_COUNT; i++)
	{
		if (api_table[i].key == key)
			return &api_table[i];
	}
	return NULL;
}

const ApiSpec *
api_all(int *n)
{
	*n = API_COUNT;
	return api_table;
}
