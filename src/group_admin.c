/*-------------------------------------------------------------------------
 *
 * group_admin.c
 *	  A group's config (pgqueue.consumer_group) and its backend-local
 *	  cache; pgq_alter_group and pgq_drop_group.
 *
 * A group needs no row to be used: without one it has the default config.
 * The cache follows the catalog generation, as the topic cache does
 * (topic.c), so a committed pgq_alter_group reaches every backend's next
 * poll, and this backend's own change at once.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "config.h"
#include "consumer.h"

PG_FUNCTION_INFO_V1(pgq_alter_group);
PG_FUNCTION_INFO_V1(pgq_drop_group);

static HTAB *group_configs = NULL;

/*
 * The config of a group: the defaults, overlaid with its row in
 * pgqueue.consumer_group if it has one.  Nothing is written: a group needs
 * no row to be used.
 */
GroupConfig *
group_config_get(const char *group_id)
{
	char		key[PGQ_GROUP_ID_MAX + 1];
	GroupConfig *gc;
	bool		found;
	uint64		generation = pgq_catalog_generation();
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Jsonb	   *config;
	char	   *reset;

	if (group_configs == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(GroupConfig);
		ctl.hcxt = TopMemoryContext;
		group_configs = hash_create("pgqueue group configs", 16, &ctl,
									HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, group_id, sizeof(key));
	gc = hash_search(group_configs, key, HASH_ENTER, &found);
	if (found && gc->valid && gc->generation == generation)
		return gc;

	catalog_check_layout();
	args[0] = CStringGetTextDatum(group_id);
	SPI_connect();
	catalog_query("SELECT config FROM " PGQ_SCHEMA ".consumer_group"
				  " WHERE group_id OPERATOR(pg_catalog.=) $1", 1, argtypes, args, NULL, false);
	if (SPI_processed == 1)
	{
		bool		isnull;

		config = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	else
		config = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	gc->session_timeout_ms = (int) Min(config_get_int(&pgq_group_config, config,
													  "session.timeout.ms"), INT_MAX);
	gc->auto_commit = config_get_bool(&pgq_group_config, config, "enable.auto.commit");
	reset = config_get_string(&pgq_group_config, config, "auto.offset.reset");
	gc->reset_latest = strcmp(reset, "latest") == 0;
	SPI_finish();

	gc->generation = generation;
	gc->valid = true;
	return gc;
}

/* pgq_alter_group(group_id, config): set keys, null removes; creates the group */
Datum
pgq_alter_group(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	Jsonb	   *config = DatumGetJsonbP(pgq_require_arg(fcinfo, 1, "config"));
	Oid			argtypes[2] = {TEXTOID, JSONBOID};
	Datum		args[2];

	PreventCommandIfReadOnly("pgq_alter_group()");
	catalog_check_layout();
	config_validate(&pgq_group_config, config, true);
	args[0] = CStringGetTextDatum(group_id);
	args[1] = JsonbPGetDatum(config);
	SPI_connect();
	catalog_query("INSERT INTO " PGQ_SCHEMA ".consumer_group AS g (group_id, config)"
				  " VALUES ($1, pg_catalog.jsonb_strip_nulls($2))"
				  " ON CONFLICT (group_id) DO UPDATE"
				  "   SET config = pg_catalog.jsonb_strip_nulls(g.config OPERATOR(pg_catalog.||) $2)",
				  2, argtypes, args, NULL, false);
	SPI_finish();
	catalog_change_register();
	PG_RETURN_VOID();
}

/* pgq_drop_group(group_id, if_exists): only a group without live members */
Datum
pgq_drop_group(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg_group_id(fcinfo, 0);
	bool		if_exists = DatumGetBool(pgq_require_arg(fcinfo, 1, "if_exists"));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	uint64		deleted;

	PreventCommandIfReadOnly("pgq_drop_group()");
	catalog_check_layout();
	if (group_has_live_members(group_id, 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("group \"%s\" has live members", group_id),
				 errhint("Stop the members or have them call pgq_leave() first.")));
	args[0] = CStringGetTextDatum(group_id);
	SPI_connect();
	catalog_query("DELETE FROM " PGQ_SCHEMA ".consumer_group WHERE group_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, false);
	deleted = SPI_processed;
	catalog_query("DELETE FROM " PGQ_SCHEMA ".group_offset WHERE group_id OPERATOR(pg_catalog.=) $1",
				  1, argtypes, args, NULL, false);
	deleted += SPI_processed;
	SPI_finish();
	if (deleted == 0)
	{
		if (!if_exists)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("group \"%s\" does not exist", group_id)));
		ereport(NOTICE,
				(errmsg("group \"%s\" does not exist, skipping", group_id)));
	}
	catalog_change_register();
	PG_RETURN_VOID();
}
