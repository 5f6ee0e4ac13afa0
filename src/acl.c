/*-------------------------------------------------------------------------
 *
 * acl.c
 *	  Per-topic rights.
 *
 * A topic has an owner (the role that created it) and rights granted with
 * pgq_grant: produce (pgq_send*), consume (pgq_fetch, pgq_offsets_for_time,
 * pgq_poll and the other group functions) and admin (drop, alter, add partitions, grant and revoke;
 * admin implies the other two).  Superusers and members of the owning role
 * have every right.  Grants to a role apply to its members; grants to
 * "public" apply to everyone.  Who may create topics at all is controlled
 * with EXECUTE on pgq_create_topic, which is revoked from PUBLIC.
 *
 * The catalog tables and segment tables belong to the extension owner and
 * nobody else has rights on them; the pgq_* functions switch to that role
 * for their catalog work (catalog.c) after checking the caller's rights here.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "topic.h"

static const char *
privilege_name(int priv)
{
	switch (priv)
	{
		case PGQ_PRIV_PRODUCE:
			return "produce";
		case PGQ_PRIV_CONSUME:
			return "consume";
		default:
			return "admin";
	}
}

/* Looks up every right the current user holds on the topic. */
static int
topic_privileges_of(PgqTopic *topic, Oid user)
{
	Oid			argtypes[2] = {INT4OID, OIDOID};
	Datum		args[2];
	int			granted = 0;
	uint64		i;

	if (superuser_arg(user) || has_privs_of_role(user, topic->owner))
		return PGQ_PRIV_PRODUCE | PGQ_PRIV_CONSUME | PGQ_PRIV_ADMIN;

	args[0] = Int32GetDatum(topic->topic_id);
	args[1] = ObjectIdGetDatum(user);

	SPI_connect();
	catalog_query("SELECT privilege FROM " PGQ_SCHEMA ".topic_grant"
				  " WHERE topic_id OPERATOR(pg_catalog.=) $1"
				  " AND (grantee::pg_catalog.oid OPERATOR(pg_catalog.=) 0"
				  "      OR pg_catalog.pg_has_role($2, grantee, 'USAGE'))",
				  2, argtypes, args, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *priv = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (strcmp(priv, "produce") == 0)
			granted |= PGQ_PRIV_PRODUCE;
		else if (strcmp(priv, "consume") == 0)
			granted |= PGQ_PRIV_CONSUME;
		else if (strcmp(priv, "admin") == 0)
			granted |= PGQ_PRIV_PRODUCE | PGQ_PRIV_CONSUME | PGQ_PRIV_ADMIN;
	}
	SPI_finish();
	return granted;
}

/*
 * Raises insufficient_privilege unless the current user holds 'priv' on the
 * topic.  The answer is cached in the topic's cache entry per role until the
 * topic cache is invalidated (any topic change, pgq_grant/pgq_revoke, or a
 * change of role membership).
 */
void
topic_check_privilege(PgqTopic *topic, int priv)
{
	Oid			user = GetUserId();

	if (topic->priv_user != user || (topic->priv_known & priv) == 0)
	{
		topic->priv_granted = topic_privileges_of(topic, user);
		topic->priv_known = PGQ_PRIV_PRODUCE | PGQ_PRIV_CONSUME | PGQ_PRIV_ADMIN;
		topic->priv_user = user;
	}

	if ((topic->priv_granted & priv) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for topic \"%s\"", topic->name),
				 errdetail("This requires the %s right on the topic.", privilege_name(priv)),
				 errhint("The topic's owner or a role with the admin right can grant it with pgq_grant().")));
}
