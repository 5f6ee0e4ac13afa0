/*-------------------------------------------------------------------------
 *
 * api_meta.c
 *	  ApiVersions and Metadata.
 *
 *	  ApiVersions lists api.c's table.  Metadata describes a one-broker
 *	  cluster: this gateway (node id and advertised address) is the broker,
 *	  the controller, and the leader and only replica of every partition,
 *	  since any gateway can serve any partition (pgqueue holds all state).
 *	  The topics and their partition counts come from pgqueue's pgq_topics;
 *	  the cluster id is derived from the database (its system identifier
 *	  and name), so that every gateway of one database reports the same.
 *
 *	  With --auto-create-topics, a Metadata request for topics that do not
 *	  exist (and, from v4 on, that allows it) creates them with
 *	  pgq_create_topic(..., if_not_exists => true), as Kafka's
 *	  auto.create.topics.enable does; then it reads the topics again.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "api_meta.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KERR_LEADER_NOT_AVAILABLE	5

/* authorized operations that were not asked for (Kafka's INT32_MIN) */
#define AUTHORIZED_OPS_OMITTED		INT32_MIN

/* Kafka's topic name rule, which pgq_create_topic also applies */
#define TOPIC_NAME_MAX				249

/* ---------------------------------------------------------- ApiVersions */

/*
 * Writes the body of an ApiVersions response of the given version; a
 * version we do not have is answered in v0's format, which every client
 * can read, with UNSUPPORTED_VERSION and our versions, so that the client
 * retries with one of them (as Kafka does).
 */
static void
write_api_versions(KWriter *w, int16_t version, int16_t error)
{
	int			n;
	int			i;
	const ApiSpec *apis = api_all(&n);
	bool		compact = version >= 3;

	kw_i16(w, error);
	if (compact)
		kw_uvarint(w, (uint32_t) n + 1);
	else
		kw_i32(w, n);
	for (i = 0; i < n; i++)
	{
		kw_i16(w, apis[i].key);
		kw_i16(w, apis[i].min_version);
		kw_i16(w, apis[i].max_version);
		if (compact)
			kw_empty_tagged_fields(w);
	}
	if (version >= 1)
		kw_i32(w, 0);			/* throttle_time_ms */
	if (compact)
		kw_empty_tagged_fields(w);
}

void
api_versions(Request *req)
{
	const ApiSpec *spec = api_lookup(req->api_key);
	KWriter		w;

	kw_init(&w);
	if (req->api_version > spec->max_version || req->api_version < spec->min_version)
		write_api_versions(&w, 0, KERR_UNSUPPORTED_VERSION);
	else
	{
		int16_t		error = KERR_NONE;

		if (req->api_version >= 3)
		{
			const char *s;
			int32_t		len;

			/* client_software_name and _version: only their form is checked */
			kr_compact_string(&req->body, &s, &len);
			kr_compact_string(&req->body, &s, &len);
			kr_skip_tagged_fields(&req->body);
			if (req->body.err)
				error = KERR_INVALID_REQUEST;
		}
		write_api_versions(&w, req->api_version, error);
	}
	request_respond(req, &w);
	kw_free(&w);
}

/* ------------------------------------------------------------- Metadata */

typedef struct MetaTopic
{
	char	   *name;			/* NUL-terminated copy */
	bool		valid;			/* a legal name: asked of the database */
	int16_t		error;
	bool		create_failed;	/* error is pgq_create_topic's */
	int32_t		partitions;
} MetaTopic;

typedef struct MetaState
{
	bool		all_topics;		/* the request asked for every topic */
	bool		may_create;		/* the unknown ones are to be created */
	bool		created;		/* the creation round is over */
	int			ntopics;
	MetaTopic  *topics;
	int			next_create;	/* the next topic the creation round looks at */
	char	   *cluster_id;
	char	   *names_param;	/* the valid names as a text[] literal */
} MetaState;

static const char meta_sql[] =
"SELECT c.cluster_id, x.topic, x.partitions\n"
"  FROM (SELECT 'pgqueue-' || system_identifier || '-' || current_database() AS cluster_id\n"
"          FROM pg_control_system()) c\n"
"  LEFT JOIN (SELECT t.topic, t.partitions, 0::bigint AS ord\n"
"               FROM pgq_topics t\n"
"              WHERE $1::text[] IS NULL\n"
"             UNION ALL\n"
"             SELECT w.name, t.partitions, w.ord\n"
"               FROM unnest($1::text[]) WITH ORDINALITY AS w(name, ord)\n"
"               LEFT JOIN pgq_topics t ON t.topic = w.name) x ON true\n"
" ORDER BY x.ord, x.topic";

static const char create_sql[] =
"SELECT pgq_create_topic($1, $2::int, if_not_exists => true)";

static void meta_query(Request *req);

static void
meta_state_free(MetaState *st)
{
	int			i;

	for (i = 0; i < st->ntopics; i++)
		free(st->topics[i].name);
	free(st->topics);
	free(st->cluster_id);
	free(st->names_param);
	free(st);
}

/* Kafka's rule: 1-249 characters of [A-Za-z0-9._-], not "." or ".." */
bool
topic_name_legal(const char *s, int32_t len)
{
	int32_t		i;

	if (len < 1 || len > TOPIC_NAME_MAX)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * Reads a Metadata request (v0-8) into a new MetaState; NULL if it does
 * not parse (or out of memory).
 */
static MetaState *
meta_parse(Request *req)
{
	KReader    *r = &req->body;
	MetaState  *st = calloc(1, sizeof(MetaState));
	int32_t		n;
	int			i;
	bool		allow_auto_create = true;
	size_t		names_len = 3;

	if (st == NULL)
		return NULL;
	n = kr_array_len(r, 2);
	if (r->err)
		goto bad;
	/* v0: an empty array means every topic; v1 on: a null array does */
	st->all_topics = req->api_version == 0 ? n == 0 : n < 0;
	if (n > 0)
	{
		st->topics = calloc(n, sizeof(MetaTopic));
		if (st->topics == NULL)
			goto bad;
	}
	for (i = 0; i < n; i++)
	{
		MetaTopic  *t = &st->topics[i];
		const char *s;
		int32_t		len;

		if (!kr_string(r, &s, &len) || s == NULL)
			goto bad;
		t->name = strndup(s, len);
		if (t->name == NULL)
			goto bad;
		st->ntopics++;
		t->valid = topic_name_legal(s, len);
		t->error = t->valid ? KERR_NONE : KERR_INVALID_TOPIC_EXCEPTION;
		if (t->valid)
			names_len += len + 3;
	}
	if (req->api_version >= 4)
		allow_auto_create = kr_i8(r) != 0;
	if (req->api_version >= 8)
	{
		(void) kr_i8(r);		/* include_cluster_authorized_operations */
		(void) kr_i8(r);		/* include_topic_authorized_operations */
	}
	if (r->err)
		goto bad;
	st->may_create = gw_config.auto_create_topics && allow_auto_create && !st->all_topics;

	/* legal names need no quoting in an array literal, but "null" would */
	if (!st->all_topics)
	{
		char	   *p;

		st->names_param = malloc(names_len);
		if (st->names_param == NULL)
			goto bad;
		p = st->names_param;
		*p++ = '{';
		for (i = 0; i < st->ntopics; i++)
		{
			if (!st->topics[i].valid)
				continue;
			p += sprintf(p, "%s\"%s\"", p > st->names_param + 1 ? "," : "",
						 st->topics[i].name);
		}
		*p++ = '}';
		*p = '\0';
	}
	return st;

bad:
	meta_state_free(st);
	return NULL;
}

static void
write_int32_array1(KWriter *w, int32_t v)
{
	kw_i32(w, 1);
	kw_i32(w, v);
}

static void
write_topic(KWriter *w, int16_t version, const MetaTopic *t)
{
	int32_t		p;

	kw_i16(w, t->error);
	kw_string(w, t->name, -1);
	if (version >= 1)
		kw_i8(w, 0);			/* is_internal */
	kw_i32(w, t->error == KERR_NONE ? t->partitions : 0);
	for (p = 0; t->error == KERR_NONE && p < t->partitions; p++)
	{
		kw_i16(w, KERR_NONE);
		kw_i32(w, p);
		kw_i32(w, gw_config.node_id);	/* leader */
		if (version >= 7)
			kw_i32(w, -1);		/* leader_epoch: none, clients skip the checks */
		write_int32_array1(w, gw_config.node_id);	/* replicas */
		write_int32_array1(w, gw_config.node_id);	/* in-sync replicas */
		if (version >= 5)
			kw_i32(w, 0);		/* offline replicas: none */
	}
	if (version >= 8)
		kw_i32(w, AUTHORIZED_OPS_OMITTED);
}

static void
meta_respond(Request *req, MetaState *st)
{
	int16_t		version = req->api_version;
	KWriter		w;
	int			i;

	kw_init(&w);
	if (version >= 3)
		kw_i32(&w, 0);			/* throttle_time_ms */
	/* brokers: this gateway */
	kw_i32(&w, 1);
	kw_i32(&w, gw_config.node_id);
	kw_string(&w, gw_config.advertised_host, -1);
	kw_i32(&w, gw_config.advertised_port);
	if (version >= 1)
		kw_string(&w, NULL, -1);	/* rack */
	if (version >= 2)
		kw_string(&w, st->cluster_id, -1);
	if (version >= 1)
		kw_i32(&w, gw_config.node_id);	/* controller */
	kw_i32(&w, st->ntopics);
	for (i = 0; i < st->ntopics; i++)
		write_topic(&w, version, &st->topics[i]);
	if (version >= 8)
		kw_i32(&w, AUTHORIZED_OPS_OMITTED);
	request_respond(req, &w);
	kw_free(&w);
	meta_state_free(st);
}

/* Creates the next unknown topic of the request, or reads them all again. */
static void meta_create_next(Request *req);

static void
meta_created(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	MetaState  *st = req->state;
	MetaTopic  *t = &st->topics[st->next_create];

	if (res == NULL || sqlstate)
	{
		t->error = res == NULL ? KERR_LEADER_NOT_AVAILABLE : kafka_error_for_sqlstate(sqlstate);
		t->create_failed = true;
		gw_log("could not create topic \"%s\": %s", t->name,
			   res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "no connection to the database");
	}
	else
		gw_log("created topic \"%s\" (client id \"%s\")", t->name,
			   req->client_id ? req->client_id : "");
	st->next_create++;
	meta_create_next(req);
}

static void
meta_create_next(Request *req)
{
	MetaState  *st = req->state;
	char		partitions[16];
	const char *values[2];

	while (st->next_create < st->ntopics &&
		   st->topics[st->next_create].error != KERR_UNKNOWN_TOPIC_OR_PARTITION)
		st->next_create++;
	if (st->next_create >= st->ntopics)
	{
		st->created = true;
		meta_query(req);
		return;
	}
	snprintf(partitions, sizeof(partitions), "%d", gw_config.default_partitions);
	values[0] = st->topics[st->next_create].name;
	values[1] = partitions;
	pg_submit(POOL_DEFAULT, create_sql, 2, NULL, values, NULL, NULL, false,
			  meta_created, req);
}

static int32_t
parse_partitions(const char *s)
{
	long		v = strtol(s, NULL, 10);

	return v < 0 || v > INT32_MAX ? 0 : (int32_t) v;
}

static void
meta_query_done(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	MetaState  *st = req->state;
	int			nrows;
	int			row;
	int			i;
	bool		any_unknown = false;

	if (res == NULL || sqlstate)
	{
		int16_t		error = res == NULL ? KERR_LEADER_NOT_AVAILABLE
			: kafka_error_for_sqlstate(sqlstate);

		gw_log("Metadata failed: %s", res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
			   : "no connection to the database");
		if (st->all_topics)
		{
			/* no list to put an error in: the client reconnects and retries */
			meta_state_free(st);
			request_close(req, "no connection to the database");
			return;
		}
		for (i = 0; i < st->ntopics; i++)
			if (st->topics[i].valid && !st->topics[i].create_failed)
				st->topics[i].error = error;
		meta_respond(req, st);
		return;
	}

	nrows = PQntuples(res);
	if (nrows > 0 && !PQgetisnull(res, 0, 0))
	{
		free(st->cluster_id);
		st->cluster_id = strdup(PQgetvalue(res, 0, 0));
	}
	if (st->all_topics)
	{
		MetaTopic  *topics = calloc(nrows > 0 ? nrows : 1, sizeof(MetaTopic));

		if (topics == NULL)
		{
			meta_state_free(st);
			request_close(req, "out of memory");
			return;
		}
		st->topics = topics;
		for (row = 0; row < nrows; row++)
		{
			if (PQgetisnull(res, row, 1))
				continue;		/* no topic at all: the cluster id's row */
			topics[st->ntopics].name = strdup(PQgetvalue(res, row, 1));
			topics[st->ntopics].partitions = parse_partitions(PQgetvalue(res, row, 2));
			topics[st->ntopics].valid = true;
			if (topics[st->ntopics].name == NULL)
				topics[st->ntopics].error = KERR_UNKNOWN_SERVER_ERROR;
			st->ntopics++;
		}
	}
	else
	{
		/* one row per valid name, in the request's order */
		row = 0;
		for (i = 0; i < st->ntopics; i++)
		{
			MetaTopic  *t = &st->topics[i];

			if (!t->valid)
				continue;
			if (row >= nrows || t->create_failed)
			{
				row++;
				continue;
			}
			if (PQgetisnull(res, row, 2))
			{
				t->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				any_unknown = true;
			}
			else
			{
				t->error = KERR_NONE;
				t->partitions = parse_partitions(PQgetvalue(res, row, 2));
			}
			row++;
		}
	}
	if (any_unknown && st->may_create && !st->created)
	{
		st->next_create = 0;
		meta_create_next(req);
		return;
	}
	meta_respond(req, st);
}

static void
meta_query(Request *req)
{
	MetaState  *st = req->state;
	const char *values[1];

	values[0] = st->names_param;	/* NULL: every topic */
	pg_submit(POOL_DEFAULT, meta_sql, 1, NULL, values, NULL, NULL, false,
			  meta_query_done, req);
}

void
api_metadata(Request *req)
{
	MetaState  *st = meta_parse(req);

	if (st == NULL)
	{
		request_close(req, "malformed Metadata request");
		return;
	}
	req->state = st;
	meta_query(req);
}
