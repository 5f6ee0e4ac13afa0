/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Running catalog work as the catalog owner, and checking that the
 *	  installed catalog is the one this library implements.
 *
 * The catalog tables and segment tables belong to the extension owner and
 * nobody else has rights on them; the pgq_* functions check the caller's
 * rights (acl.c) and then switch to that role for their catalog work, with
 * search_path set to pg_catalog, pg_temp so that no object of the caller's
 * can shadow what our SQL means.  Every SPI statement on the catalog goes
 * through catalog_query or catalog_query_saved; their callers connect to
 * SPI.
 *
 * The library (pgqueue.so) and the SQL objects (the install and update
 * scripts) are versioned together.  After a new library is installed, a
 * database whose extension has not yet been updated still has the old
 * objects, which the new C code may misread; catalog_check_layout refuses
 * to work with them until ALTER EXTENSION pgqueue UPDATE has run.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"

/* The owner of the pgqueue schema: the extension owner. */
Oid
catalog_owner(void)
{
	Oid			nsp = get_namespace_oid(PGQ_SCHEMA, false);
	HeapTuple	tuple;
	Oid			owner;

	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * Switches to the catalog owner, with a safe search_path.  Errors restore
 * the previous user and search_path at (sub)transaction abort.
 */
void
catalog_owner_switch(PgqCatalogContext *save)
{
	Oid			owner = catalog_owner();

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	SetUserIdAndSecContext(owner, save->sec_context | SECURITY_LOCAL_USERID_CHANGE);
	save->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
catalog_owner_restore(PgqCatalogContext *save)
{
	AtEOXact_GUC(true, save->guc_nest_level);
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/*
 * Runs a catalog statement as the catalog owner and returns SPI's result
 * code; a failure is an error.  Reads (read_only) use the latest snapshot,
 * like catalog lookups in Postgres itself, so that a cache never stores
 * what an old REPEATABLE READ snapshot saw.  Writes see the transaction's
 * earlier writes.
 */
int
catalog_query(const char *sql, int nargs, Oid *argtypes, Datum *args,
			  const char *nulls, bool read_only)
{
	PgqCatalogContext save;
	int			ret;

	catalog_owner_switch(&save);
	if (read_only)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		ret = SPI_execute_snapshot(plan, args, nulls, GetLatestSnapshot(),
								   InvalidSnapshot, true, false, 0);
		SPI_freeplan(plan);
	}
	else
		ret = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, false, 0);
	catalog_owner_restore(&save);

	if (ret < 0)
		elog(ERROR, "catalog query failed: %s", SPI_result_code_string(ret));
	return ret;
}

/*
 * catalog_query for a write run often: parsed and planned once per session
 * into *plan (the plan cache replans it after catalog changes).
 */
int
catalog_query_saved(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes,
					Datum *args)
{
	PgqCatalogContext save;
	int			ret;

	catalog_owner_switch(&save);
	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare(sql, nargs, argtypes);

		if (prepared == NULL || SPI_keepplan(prepared) != 0)
			elog(ERROR, "could not prepare catalog query \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		*plan = prepared;
	}
	ret = SPI_execute_plan(*plan, args, NULL, false, 0);
	catalog_owner_restore(&save);
	if (ret < 0)
		elog(ERROR, "catalog query failed: %s", SPI_result_code_string(ret));
	return ret;
}

/*
 * The version of the pgqueue extension installed in this database, or NULL
 * if it is not installed.
 */
static char *
installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pgqueue"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/* Are the extension's SQL objects here the version this library implements? */
bool
catalog_layout_ok(void)
{
	char	   *version = installed_version();
	bool		ok = version != NULL && strcmp(version, PGQ_EXTVERSION) == 0;

	if (version != NULL)
		pfree(version);
	return ok;
}

/*
 * Raises an error unless the extension's SQL objects in this database are
 * the version this library implements.  Called whenever a backend loads
 * catalog data into its caches (topics, group configs) and by the worker
 * before each round, so it costs one index lookup per cache load.
 */
void
catalog_check_layout(void)
{
	char	   *version = installed_version();

	if (version == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"pgqueue\" is not installed in this database")));
	if (strcmp(version, PGQ_EXTVERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgqueue library version %s cannot use the objects of extension version %s",
						PGQ_EXTVERSION, version),
				 errdetail("The server loaded a new pgqueue library, but the extension in this database was not updated."),
				 errhint("Run ALTER EXTENSION pgqueue UPDATE.")));
	pfree(version);
}
