/*-------------------------------------------------------------------------
 *
 * api_admin.c
 *	  The administration APIs, mapped onto pgqueue's topic functions:
 *
 *	CreateTopics		pgq_create_topic(name, partitions, config)
 *	DeleteTopics		pgq_drop_topic(name)
 *	CreatePartitions	pgq_add_partitions(name, new total)
 *	DescribeConfigs		pgq_topics' effective config (topics); the
 *						gateway's own options (brokers)
 *	AlterConfigs		pgq_alter_topic(name, config): the keys given, every
 *						other key back to its default (Kafka's AlterConfigs
 *						replaces a topic's whole set of overrides)
 *	IncrementalAlterConfigs pgq_alter_topic with SET and DELETE
 *
 * Kafka's configs are strings; pgqueue's are JSON values.  A value that
 * is an integer in decimal becomes a JSON number and any other a JSON
 * string, which is right for every key pgqueue knows (the integers and
 * cleanup.policy); a value of the wrong kind is then refused by pgqueue's
 * own checks like any other bad value (INVALID_CONFIG), so the gateway
 * needs no list of the keys to create or alter topics.  The conversion is
 * done in SQL, from text arrays of keys and values.
 *
 * validate_only runs the very statement, with its checks (name, count,
 * config, rights, existence, pgqueue.max_partitions), and makes it fail
 * after it succeeded, so that its transaction rolls back: a cast of a
 * marker to int, whose error (22P02 with the marker in its message) means
 * "valid".  pgqueue's functions raise 22P02 for nothing else they can meet
 * here, and the marker cannot appear in their messages.
 *
 * The topics (or resources) of a request are handled one statement after
 * the other, each in its own transaction, as Kafka's controller handles
 * each topic on its own: one failing does not stop the others.  Errors that
 * the request itself shows (an illegal name, a count below 1, replica
 * assignments, an unsupported operation) are answered without a statement.
 *
 * A lost connection, a standby or a shutting-down server answer
 * NOT_CONTROLLER, which makes clients look for the controller again and
 * retry: a retry of a creation whose commit was lost with the connection
 * then answers TOPIC_ALREADY_EXISTS, as with a Kafka controller that fails.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_admin.h"
#include "api_meta.h"
#include "pgbin.h"

/* Kafka's error codes used only here */
#define KERR_TOPIC_ALREADY_EXISTS			36
#define KERR_INVALID_PARTITIONS				37
#define KERR_INVALID_REPLICATION_FACTOR		38
#define KERR_INVALID_REPLICA_ASSIGNMENT		39
#define KERR_INVALID_CONFIG					40
#define KERR_NOT_CONTROLLER					41

/* the config APIs' resource types */
#define RESOURCE_TOPIC		2
#define RESOURCE_BROKER		4

/* DescribeConfigs' config sources (v1+) */
#define SOURCE_UNKNOWN			0
#define SOURCE_TOPIC_CONFIG		1
#define SOURCE_STATIC_BROKER	4
#define SOURCE_DEFAULT_CONFIG	5

/* DescribeConfigs' config types (v3+) */
#define CONFIG_TYPE_BOOLEAN		1
#define CONFIG_TYPE_INT			3
#define CONFIG_TYPE_LONG		5
#define CONFIG_TYPE_LIST		7

/* IncrementalAlterConfigs' operations */
#define OP_SET			0
#define OP_DELETE		1
#define OP_APPEND		2
#define OP_SUBTRACT		3

/* bytes of the smallest element of the arrays read here */
#define MIN_CREATE_TOPIC_SIZE	16	/* name, count, factor, two arrays */
#define MIN_ASSIGNMENT_SIZE		8
#define MIN_CONFIG_SIZE			4	/* name, value */
#define MIN_INCR_CONFIG_SIZE	5	/* name, operation, value */
#define MIN_PARTITIONS_SIZE		10	/* name, count, assignments */
#define MIN_RESOURCE_SIZE		7	/* type, name, array */
#define MIN_STRING_SIZE			2

/*
 * The topic config keys pgqueue knows, with their defaults: src/config.c's
 * table, which SQL does not show (pgq_topics has the effective config
 * only).  DescribeConfigs reports a value equal to its default as the
 * default (test/t/061_gateway_admin.pl checks that a new topic's are).
 */
typedef struct TopicConfigKey
{
	const char *name;
	const char *default_value;
	int8_t		type;
	const char *doc;
} TopicConfigKey;

static const TopicConfigKey topic_config_keys[] = {
	{"cleanup.policy", "delete", CONFIG_TYPE_LIST,
	"Only delete: records leave by retention (compact is not supported)."},
	{"max.message.bytes", "1048588", CONFIG_TYPE_INT,
	"The largest record: key, value and headers, in bytes."},
	{"retention.bytes", "-1", CONFIG_TYPE_LONG,
	"The size a partition may keep on disk; -1: no limit."},
	{"retention.ms", "604800000", CONFIG_TYPE_LONG,
	"How long a closed segment is kept; -1: forever."},
	{"segment.bytes", "1073741824", CONFIG_TYPE_INT,
	"The active segment rolls over when it is this large."},
	{"segment.ms", "604800000", CONFIG_TYPE_LONG,
	"The active segment rolls over when it is this old."},
};

#define TOPIC_CONFIG_KEYS ((int) (sizeof(topic_config_keys) / sizeof(topic_config_keys[0])))

/* ------------------------------------------------------------- the SQL */

/*
 * A config object from text arrays of keys and values: an integer becomes
 * a JSON number, another value a JSON string, and a NULL value JSON null
 * (which pgq_alter_topic takes as "back to the default").
 */
#define CONFIG_JSON(keys, values) \
	"(SELECT coalesce(jsonb_object_agg(k, CASE WHEN v IS NULL THEN 'null'::jsonb" \
	" WHEN v ~ '^-?[0-9]+$' THEN to_jsonb(v::numeric) ELSE to_jsonb(v) END), '{}')" \
	" FROM unnest(" keys "::text[], " values "::text[]) AS u(k, v))"

#define VALIDATE_MARKER "pgqueue-kafka: validate_only"
#define RUN(call)		"SELECT " call
#define VALIDATE(call)	"SELECT (" call "::text || '" VALIDATE_MARKER "')::int"

#define CREATE_CALL "pgq_create_topic($1, $2, " CONFIG_JSON("$3", "$4") ")"
#define PARTITIONS_CALL "pgq_add_partitions($1, $2)"
/* AlterConfigs: every key the topic has, set to null, then the given ones */
#define ALTER_CALL \
	"pgq_alter_topic($1, coalesce((SELECT jsonb_object_agg(k, 'null'::jsonb)" \
	" FROM pgq_topics t, jsonb_object_keys(t.config) AS k WHERE t.topic = $1), '{}')" \
	" || " CONFIG_JSON("$2", "$3") ")"
#define INCREMENTAL_CALL "pgq_alter_topic($1, " CONFIG_JSON("$2", "$3") ")"

static const char delete_sql[] = "SELECT pgq_drop_topic($1)";

/* every key of each topic named, in the request's order ($1: NULLs too) */
static const char describe_sql[] =
"SELECT w.ord, e.key, e.value #>> '{}'\n"
"  FROM unnest($1::text[]) WITH ORDINALITY AS w(name, ord)\n"
"  JOIN pgq_topics t ON t.topic = w.name\n"
" CROSS JOIN LATERAL jsonb_each(t.config) AS e\n"
" ORDER BY w.ord, e.key";

/* ----------------------------------------------------------- the state */

/*
 * One topic or config resource of a request.  It is kept small, and points
 * into the request rather than copying from it: a request holds up to one
 * item per two bytes (DeleteTopics), which bounds what it makes the
 * gateway allocate to about 20 times its size.
 */
typedef struct AdminItem
{
	const char *name;			/* into the request */
	const char *message;		/* the error's; NULL: none */
	uint32_t	entries;		/* its configs (or DescribeConfigs' keys): the
								 * array's position in the request, read again */
	int32_t		name_len;
	int32_t		count;			/* partitions (CreateTopics, CreatePartitions) */
	int16_t		error;
	int8_t		resource_type;	/* the config APIs' */
	bool		message_owned;	/* message is malloc'ed (a database's) */
	bool		decided;		/* answered without a statement */
	bool		repeated;		/* a later entry of a duplicated name: not answered */
	bool		found;			/* DescribeConfigs: the topic has rows */
} AdminItem;

typedef struct AdminState AdminState;

/* What differs between the APIs that run a statement per item. */
typedef struct AdminApi
{
	const char *done;			/* for the log: "created topic" */
	/* queues the item's statement; false if it could not be built */
	bool		(*submit) (Request *req, AdminState *st, AdminItem *it);
	int16_t		(*error_for) (const char *sqlstate);
	void		(*respond) (Request *req, AdminState *st, KWriter *w);
} AdminApi;

struct AdminState
{
	const AdminApi *api;
	int			nitems;
	AdminItem  *items;
	int			next;			/* the item whose statement runs */
	bool		validate_only;
	bool		incremental;	/* IncrementalAlterConfigs */
	bool		include_synonyms;
	bool		include_documentation;
};

static AdminState *
admin_state_new(Request *req, int32_t n)
{
	AdminState *st = calloc(1, sizeof(AdminState));

	if (st == NULL)
		return NULL;
	if (n > 0)
	{
		st->items = calloc(n, sizeof(AdminItem));
		if (st->items == NULL)
		{
			free(st);
			return NULL;
		}
	}
	req->state = st;
	return st;
}

static void
admin_state_free(AdminState *st)
{
	int			i;

	if (st == NULL)
		return;
	for (i = 0; i < st->nitems; i++)
		if (st->items[i].message_owned)
			free((char *) st->items[i].message);
	free(st->items);
	free(st);
}

/* The item's error, decided, with a message that lives as long as the program. */
static void
item_fail(AdminItem *it, int16_t error, const char *message)
{
	if (it->message_owned)
		free((char *) it->message);
	it->error = error;
	it->decided = true;
	it->message = message;
	it->message_owned = false;
}

/* The same with a message of the database's, which is copied. */
static void
item_fail_copy(AdminItem *it, int16_t error, const char *message)
{
	char	   *copy = message ? strdup(message) : NULL;

	item_fail(it, error, copy);
	it->message_owned = copy != NULL;
}

/* A reader of the item's config (or key) array. */
static KReader
item_entries(const Request *req, const AdminItem *it)
{
	KReader		r;

	kr_init(&r, req->body.data + it->entries, req->body.len - it->entries);
	return r;
}

static void
admin_close(Request *req, const char *why)
{
	admin_state_free(req->state);
	req->state = NULL;
	request_close(req, why);
}

static int
item_cmp(const void *a, const void *b)
{
	const AdminItem *x = *(const AdminItem *const *) a;
	const AdminItem *y = *(const AdminItem *const *) b;
	int32_t		len = x->name_len < y->name_len ? x->name_len : y->name_len;
	int			c;

	if (x->resource_type != y->resource_type)
		return x->resource_type < y->resource_type ? -1 : 1;
	c = memcmp(x->name, y->name, len);
	if (c != 0)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return x < y ? -1 : 1;		/* the request's order */
}

/*
 * A name given twice is refused (INVALID_REQUEST, as Kafka does) and
 * answered once: clients match the answers to their entries by name.
 * Sorting makes this O(n log n) for requests of many entries.
 */
static bool
mark_duplicates(AdminState *st)
{
	AdminItem **sorted;
	int			i;

	if (st->nitems < 2)
		return true;
	sorted = malloc(st->nitems * sizeof(AdminItem *));
	if (sorted == NULL)
		return false;
	for (i = 0; i < st->nitems; i++)
		sorted[i] = &st->items[i];
	qsort(sorted, st->nitems, sizeof(AdminItem *), item_cmp);
	for (i = 1; i < st->nitems; i++)
	{
		AdminItem  *prev = sorted[i - 1];
		AdminItem  *it = sorted[i];

		if (it->resource_type != prev->resource_type || it->name_len != prev->name_len ||
			memcmp(it->name, prev->name, it->name_len) != 0)
			continue;
		item_fail(prev, KERR_INVALID_REQUEST, "The request names this more than once.");
		item_fail(it, KERR_INVALID_REQUEST, NULL);
		it->repeated = true;
	}
	free(sorted);
	return true;
}

/* ------------------------------------------------------------- errors */

/*
 * The errors every admin statement shares: a lost connection, a standby or
 * a server shutting down make Kafka's clients look for the controller
 * again (and follow a failover); the others are errors.c's.
 */
static int16_t
admin_error(const char *sqlstate)
{
	int16_t		error = kafka_error_for_sqlstate(sqlstate);

	return error == KERR_NOT_LEADER_OR_FOLLOWER ? KERR_NOT_CONTROLLER : error;
}

/* pgq_create_topic: the name and count are checked before, so 22xxx is the config */
static int16_t
create_error(const char *sqlstate)
{
	if (strcmp(sqlstate, "42710") == 0)
		return KERR_TOPIC_ALREADY_EXISTS;
	if (strcmp(sqlstate, "54000") == 0)
		return KERR_INVALID_PARTITIONS; /* above pgqueue.max_partitions */
	if (strncmp(sqlstate, "22", 2) == 0 || strcmp(sqlstate, "0A000") == 0)
		return KERR_INVALID_CONFIG;
	return admin_error(sqlstate);
}

static int16_t
partitions_error(const char *sqlstate)
{
	if (strncmp(sqlstate, "22", 2) == 0 || strcmp(sqlstate, "54000") == 0)
		return KERR_INVALID_PARTITIONS;
	return admin_error(sqlstate);
}

static int16_t
alter_error(const char *sqlstate)
{
	if (strncmp(sqlstate, "22", 2) == 0 || strcmp(sqlstate, "0A000") == 0)
		return KERR_INVALID_CONFIG;
	return admin_error(sqlstate);
}

/* Is this the validate_only statement's planned failure? */
static bool
validated(const PGresult *res, const char *sqlstate)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	return strcmp(sqlstate, "22P02") == 0 && msg != NULL && strstr(msg, VALIDATE_MARKER) != NULL;
}

/* ------------------------------------------- one statement per item */

static void admin_run(Request *req);

static void
admin_item_done(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	AdminState *st = req->state;
	AdminItem  *it = &st->items[st->next];

	if (res == NULL)
		item_fail(it, KERR_NOT_CONTROLLER, "no connection to the database");
	else if (sqlstate != NULL && !(st->validate_only && validated(res, sqlstate)))
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		item_fail_copy(it, st->api->error_for(sqlstate), msg);
		if (it->error == KERR_UNKNOWN_SERVER_ERROR)
			gw_log("%s \"%.*s\" failed: %s", st->api->done, (int) it->name_len, it->name,
				   msg ? msg : sqlstate);
	}
	else if (!st->validate_only)
		gw_log("%s \"%.*s\" (client id \"%s\")", st->api->done, (int) it->name_len, it->name,
			   req->client_id ? req->client_id : "");
	st->next++;
	admin_run(req);
}

/*
 * Runs the next item's statement, or answers once every item has its
 * answer.  pg_submit never calls back before it returns, so this does not
 * recurse.
 */
static void
admin_run(Request *req)
{
	AdminState *st = req->state;
	KWriter		w;

	while (st->next < st->nitems)
	{
		AdminItem  *it = &st->items[st->next];

		if (!it->decided)
		{
			if (st->api->submit(req, st, it))
				return;
			item_fail(it, KERR_UNKNOWN_SERVER_ERROR, "out of memory");
		}
		st->next++;
	}
	kw_init(&w);
	st->api->respond(req, st, &w);
	admin_state_free(st);
	req->state = NULL;
	request_respond(req, &w);
	kw_free(&w);
}

/* Answers the entries the request itself shows to be wrong, then runs the rest. */
static void
admin_start(Request *req)
{
	if (!mark_duplicates(req->state))
	{
		admin_close(req, "out of memory");
		return;
	}
	admin_run(req);
}

/* The number of entries answered (the repeated ones are not). */
static int32_t
answered(const AdminState *st)
{
	int32_t		n = 0;
	int			i;

	for (i = 0; i < st->nitems; i++)
		if (!st->items[i].repeated)
			n++;
	return n;
}

/* ------------------------------------------------------------ helpers */

/* Reads a non-null string; false if it is null or does not parse. */
static bool
read_name(KReader *r, const char **s, int32_t *len)
{
	return kr_string(r, s, len) && *s != NULL;
}

static bool
name_is(const char *s, int32_t len, const char *name)
{
	return (size_t) len == strlen(name) && memcmp(s, name, len) == 0;
}

/*
 * Walks a config array (the reader is at it; the request was checked when
 * it was parsed): adds each entry's key and value to the arrays being
 * built (either may be NULL), and returns how many entries it took.
 * Incremental entries have an operation, and DELETE's value is NULL;
 * skip_nulls leaves out the entries whose value is null.
 */
static int32_t
config_walk(KReader r, bool incremental, bool skip_nulls, KWriter *keys, KWriter *values)
{
	int32_t		n = kr_array_len(&r, 0);
	int32_t		taken = 0;
	int32_t		i;

	for (i = 0; i < n; i++)
	{
		const char *k;
		int32_t		klen;
		const char *v;
		int32_t		vlen;

		read_name(&r, &k, &klen);
		if (incremental && kr_i8(&r) == OP_DELETE)
		{
			kr_string(&r, &v, &vlen);
			v = NULL;
		}
		else
			kr_string(&r, &v, &vlen);
		if (skip_nulls && v == NULL)
			continue;
		taken++;
		if (keys)
			pga_bytes(keys, k, klen);
		if (values)
			pga_bytes(values, v, vlen);
	}
	return taken;
}

/* Adds a config array's keys and values as two text[] parameters. */
static void
config_params(PgParams *p, KReader r, bool incremental, bool skip_nulls)
{
	int32_t		n = config_walk(r, incremental, skip_nulls, NULL, NULL);
	KWriter    *keys = pgp_array(p, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, n);
	KWriter    *values = pgp_array(p, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, n);

	if (keys != NULL && values != NULL)
		(void) config_walk(r, incremental, skip_nulls, keys, values);
}

/* ------------------------------------------------------- CreateTopics */

static bool
create_submit(Request *req, AdminState *st, AdminItem *it)
{
	PgParams	p;

	pgp_init(&p);
	pgp_text(&p, it->name, it->name_len);
	pgp_int4(&p, it->count);
	/* a null value is no override: the default */
	config_params(&p, item_entries(req, it), false, true);
	return pgp_submit(&p, POOL_DEFAULT, st->validate_only ? VALIDATE(CREATE_CALL) : RUN(CREATE_CALL),
					  false, admin_item_done, req);
}

static void
create_respond(Request *req, AdminState *st, KWriter *w)
{
	int			i;

	if (req->api_version >= 2)
		kw_i32(w, 0);			/* throttle_time_ms */
	kw_i32(w, answered(st));
	for (i = 0; i < st->nitems; i++)
	{
		AdminItem  *it = &st->items[i];

		if (it->repeated)
			continue;

		kw_string(w, it->name, it->name_len);
		kw_i16(w, it->error);
		if (req->api_version >= 1)
			kw_string(w, it->message, -1);
	}
}

static const AdminApi create_api = {"created topic", create_submit, create_error, create_respond};

/*
 * One topic of a CreateTopics request (v0-4): name, num_partitions,
 * replication_factor, assignments, configs.  What the request itself shows
 * to be wrong is decided here; false if it does not parse.
 */
static bool
create_parse_topic(KReader *r, AdminItem *it)
{
	int32_t		partitions;
	int16_t		factor;
	int32_t		nassign;
	int32_t		nconfigs;
	int32_t		i;
	const char *s;
	int32_t		len;

	if (!read_name(r, &it->name, &it->name_len))
		return false;
	partitions = kr_i32(r);
	factor = kr_i16(r);
	nassign = kr_array_len(r, MIN_ASSIGNMENT_SIZE);
	for (i = 0; i < nassign && !r->err; i++)
	{
		int32_t		brokers;

		(void) kr_i32(r);		/* partition_index */
		brokers = kr_array_len(r, 4);
		if (brokers > 0)
			(void) kr_take(r, (size_t) brokers * 4);
	}
	it->entries = (uint32_t) r->pos;
	nconfigs = kr_array_len(r, MIN_CONFIG_SIZE);
	for (i = 0; i < nconfigs && !r->err; i++)
	{
		if (!read_name(r, &s, &len))
			return false;
		(void) kr_string(r, &s, &len);
	}
	if (r->err)
		return false;

	/* kafkajs sends -1 (the broker's default) at every version */
	it->count = partitions == -1 ? gw_config.default_partitions : partitions;
	if (!topic_name_legal(it->name, it->name_len))
		item_fail(it, KERR_INVALID_TOPIC_EXCEPTION,
				  "Topic names are 1 to 249 characters of [A-Za-z0-9._-], not \".\" or \"..\".");
	else if (nassign > 0)
		item_fail(it, KERR_INVALID_REPLICA_ASSIGNMENT,
				  "pgqueue places the partitions: give num_partitions, not replica assignments.");
	else if (it->count < 1)
		item_fail(it, KERR_INVALID_PARTITIONS, "Number of partitions must be larger than 0.");
	else if (factor < 1 && factor != -1)
		item_fail(it, KERR_INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0.");
	return true;
}

void
api_create_topics(Request *req)
{
	KReader    *r = &req->body;
	int32_t		n = kr_array_len(r, MIN_CREATE_TOPIC_SIZE);
	AdminState *st;
	int32_t		i;

	if (r->err || (st = admin_state_new(req, n)) == NULL)
	{
		request_close(req, "malformed CreateTopics request");
		return;
	}
	st->api = &create_api;
	for (i = 0; i < n; i++)
	{
		if (!create_parse_topic(r, &st->items[i]))
			break;
		st->nitems++;
	}
	(void) kr_i32(r);			/* timeout_ms: the statement is done when we answer */
	if (req->api_version >= 1)
		st->validate_only = kr_i8(r) != 0;
	if (r->err || st->nitems < n)
	{
		admin_close(req, "malformed CreateTopics request");
		return;
	}
	admin_start(req);
}

/* ------------------------------------------------------- DeleteTopics */

static bool
delete_submit(Request *req, AdminState *st, AdminItem *it)
{
	PgParams	p;

	pgp_init(&p);
	pgp_text(&p, it->name, it->name_len);
	return pgp_submit(&p, POOL_DEFAULT, delete_sql, false, admin_item_done, req);
}

static void
delete_respond(Request *req, AdminState *st, KWriter *w)
{
	int			i;

	if (req->api_version >= 1)
		kw_i32(w, 0);			/* throttle_time_ms */
	kw_i32(w, answered(st));
	for (i = 0; i < st->nitems; i++)
	{
		if (st->items[i].repeated)
			continue;
		kw_string(w, st->items[i].name, st->items[i].name_len);
		kw_i16(w, st->items[i].error);
	}
}

static const AdminApi delete_api = {"dropped topic", delete_submit, admin_error, delete_respond};

/* DeleteTopics v0-3: topic_names, timeout_ms */
void
api_delete_topics(Request *req)
{
	KReader    *r = &req->body;
	int32_t		n = kr_array_len(r, MIN_STRING_SIZE);
	AdminState *st;
	int32_t		i;

	if (r->err || (st = admin_state_new(req, n)) == NULL)
	{
		request_close(req, "malformed DeleteTopics request");
		return;
	}
	st->api = &delete_api;
	for (i = 0; i < n; i++)
	{
		AdminItem  *it = &st->items[i];

		if (!read_name(r, &it->name, &it->name_len))
			break;
		st->nitems++;
		if (!topic_name_legal(it->name, it->name_len))
			item_fail(it, KERR_UNKNOWN_TOPIC_OR_PARTITION, NULL);
	}
	(void) kr_i32(r);			/* timeout_ms */
	if (r->err || st->nitems < n)
	{
		admin_close(req, "malformed DeleteTopics request");
		return;
	}
	admin_start(req);
}

/* --------------------------------------------------- CreatePartitions */

static bool
partitions_submit(Request *req, AdminState *st, AdminItem *it)
{
	PgParams	p;

	pgp_init(&p);
	pgp_text(&p, it->name, it->name_len);
	pgp_int4(&p, it->count);
	return pgp_submit(&p, POOL_DEFAULT,
					  st->validate_only ? VALIDATE(PARTITIONS_CALL) : RUN(PARTITIONS_CALL),
					  false, admin_item_done, req);
}

static void
partitions_respond(Request *req, AdminState *st, KWriter *w)
{
	int			i;

	kw_i32(w, 0);				/* throttle_time_ms */
	kw_i32(w, answered(st));
	for (i = 0; i < st->nitems; i++)
	{
		AdminItem  *it = &st->items[i];

		if (it->repeated)
			continue;

		kw_string(w, it->name, it->name_len);
		kw_i16(w, it->error);
		kw_string(w, it->message, -1);
	}
}

static const AdminApi partitions_api = {"added partitions to topic", partitions_submit,
	partitions_error, partitions_respond};

/* CreatePartitions v0-1: topics (name, count, assignments), timeout_ms, validate_only */
void
api_create_partitions(Request *req)
{
	KReader    *r = &req->body;
	int32_t		n = kr_array_len(r, MIN_PARTITIONS_SIZE);
	AdminState *st;
	int32_t		i;

	if (r->err || (st = admin_state_new(req, n)) == NULL)
	{
		request_close(req, "malformed CreatePartitions request");
		return;
	}
	st->api = &partitions_api;
	for (i = 0; i < n; i++)
	{
		AdminItem  *it = &st->items[i];
		int32_t		nassign;
		int32_t		j;

		if (!read_name(r, &it->name, &it->name_len))
			break;
		it->count = kr_i32(r);
		/* null, or one array of broker ids per new partition */
		nassign = kr_array_len(r, 4);
		for (j = 0; j < nassign && !r->err; j++)
		{
			int32_t		brokers = kr_array_len(r, 4);

			if (brokers > 0)
				(void) kr_take(r, (size_t) brokers * 4);
		}
		if (r->err)
			break;
		st->nitems++;
		if (!topic_name_legal(it->name, it->name_len))
			item_fail(it, KERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic does not exist.");
		else if (nassign > 0)
			item_fail(it, KERR_INVALID_REPLICA_ASSIGNMENT,
					  "pgqueue places the partitions: give the count without assignments.");
	}
	(void) kr_i32(r);			/* timeout_ms */
	st->validate_only = kr_i8(r) != 0;
	if (r->err || st->nitems < n)
	{
		admin_close(req, "malformed CreatePartitions request");
		return;
	}
	admin_start(req);
}

/* ------------------------------------- AlterConfigs, IncrementalAlter */

static bool
alter_submit(Request *req, AdminState *st, AdminItem *it)
{
	PgParams	p;
	const char *sql;

	pgp_init(&p);
	pgp_text(&p, it->name, it->name_len);
	config_params(&p, item_entries(req, it), st->incremental, !st->incremental);
	if (st->incremental)
		sql = st->validate_only ? VALIDATE(INCREMENTAL_CALL) : RUN(INCREMENTAL_CALL);
	else
		sql = st->validate_only ? VALIDATE(ALTER_CALL) : RUN(ALTER_CALL);
	return pgp_submit(&p, POOL_DEFAULT, sql, false, admin_item_done, req);
}

static void
alter_respond(Request *req, AdminState *st, KWriter *w)
{
	int			i;

	kw_i32(w, 0);				/* throttle_time_ms */
	kw_i32(w, answered(st));
	for (i = 0; i < st->nitems; i++)
	{
		AdminItem  *it = &st->items[i];

		if (it->repeated)
			continue;

		kw_i16(w, it->error);
		kw_string(w, it->message, -1);
		kw_i8(w, it->resource_type);
		kw_string(w, it->name, it->name_len);
	}
}

static const AdminApi alter_api = {"altered the config of topic", alter_submit, alter_error,
	alter_respond};

/*
 * One resource of an AlterConfigs (v0-1) or IncrementalAlterConfigs (v0)
 * request: type, name, configs (name, [operation,] value); false if it
 * does not parse.
 */
static bool
alter_parse_resource(KReader *r, AdminItem *it, bool incremental)
{
	int32_t		n;
	int32_t		i;
	const char *bad_op = NULL;
	int16_t		bad_op_error = KERR_NONE;

	it->resource_type = kr_i8(r);
	if (!read_name(r, &it->name, &it->name_len))
		return false;
	it->entries = (uint32_t) r->pos;
	n = kr_array_len(r, incremental ? MIN_INCR_CONFIG_SIZE : MIN_CONFIG_SIZE);
	for (i = 0; i < n && !r->err; i++)
	{
		const char *s;
		int32_t		len;
		int8_t		op = OP_SET;

		if (!read_name(r, &s, &len))
			return false;
		if (incremental)
			op = kr_i8(r);
		(void) kr_string(r, &s, &len);
		if (bad_op != NULL)
			continue;
		if (op == OP_APPEND || op == OP_SUBTRACT)
		{
			bad_op = "APPEND and SUBTRACT are for list configs: pgqueue's have one value (use SET).";
			bad_op_error = KERR_INVALID_CONFIG;
		}
		else if (op != OP_SET && op != OP_DELETE)
		{
			bad_op = "Unknown config operation.";
			bad_op_error = KERR_INVALID_REQUEST;
		}
		else if (incremental && op == OP_SET && s == NULL)
		{
			bad_op = "SET needs a value (DELETE puts a key back to its default).";
			bad_op_error = KERR_INVALID_CONFIG;
		}
	}
	if (r->err)
		return false;

	if (it->resource_type == RESOURCE_BROKER)
		item_fail(it, KERR_INVALID_REQUEST,
				  "The broker configs are pgqueue-kafka's command-line options: they cannot be altered.");
	else if (it->resource_type != RESOURCE_TOPIC)
		item_fail(it, KERR_INVALID_REQUEST, "Only topic and broker configs are supported.");
	else if (!topic_name_legal(it->name, it->name_len))
		item_fail(it, KERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic does not exist.");
	else if (bad_op != NULL)
		item_fail(it, bad_op_error, bad_op);
	return true;
}

static void
alter_configs(Request *req, bool incremental)
{
	KReader    *r = &req->body;
	int32_t		n = kr_array_len(r, MIN_RESOURCE_SIZE);
	AdminState *st;
	int32_t		i;

	if (r->err || (st = admin_state_new(req, n)) == NULL)
	{
		request_close(req, "malformed AlterConfigs request");
		return;
	}
	st->api = &alter_api;
	st->incremental = incremental;
	for (i = 0; i < n; i++)
	{
		if (!alter_parse_resource(r, &st->items[i], incremental))
			break;
		st->nitems++;
	}
	st->validate_only = kr_i8(r) != 0;
	if (r->err || st->nitems < n)
	{
		admin_close(req, "malformed AlterConfigs request");
		return;
	}
	admin_start(req);
}

void
api_alter_configs(Request *req)
{
	alter_configs(req, false);
}

void
api_incremental_alter_configs(Request *req)
{
	alter_configs(req, true);
}

/* ---------------------------------------------------- DescribeConfigs */

/* Does the resource ask for this key?  Its keys array null: every key. */
static bool
key_wanted(const Request *req, const AdminItem *it, const char *key)
{
	KReader		r = item_entries(req, it);
	int32_t		n = kr_array_len(&r, 0);
	int32_t		i;

	if (n < 0)
		return true;
	for (i = 0; i < n; i++)
	{
		const char *s;
		int32_t		len;

		if (read_name(&r, &s, &len) && name_is(s, len, key))
			return true;
	}
	return false;
}

static const TopicConfigKey *
topic_config_key(const char *name)
{
	int			i;

	for (i = 0; i < TOPIC_CONFIG_KEYS; i++)
		if (strcmp(topic_config_keys[i].name, name) == 0)
			return &topic_config_keys[i];
	return NULL;
}

/* A config synonym (v1+): name, value, source. */
static void
write_synonym(KWriter *w, const char *name, const char *value, int8_t source)
{
	kw_string(w, name, -1);
	kw_string(w, value, -1);
	kw_i8(w, source);
}

/*
 * One config entry of a DescribeConfigs response.  Synonyms (v1+, when
 * asked for) are the value itself and, below it, the default it overrides,
 * in Kafka's order of precedence.
 */
static void
write_config(KWriter *w, Request *req, AdminState *st, const char *name, const char *value,
			 int8_t source, const char *default_value, int8_t type, const char *doc)
{
	int16_t		version = req->api_version;

	kw_string(w, name, -1);
	kw_string(w, value, -1);
	kw_i8(w, source == SOURCE_STATIC_BROKER);	/* read_only */
	if (version == 0)
		kw_i8(w, source == SOURCE_DEFAULT_CONFIG);	/* is_default */
	else
		kw_i8(w, source);
	kw_i8(w, 0);				/* is_sensitive */
	if (version >= 1)
	{
		if (!st->include_synonyms)
			kw_i32(w, 0);
		else if (source == SOURCE_TOPIC_CONFIG && default_value != NULL)
		{
			kw_i32(w, 2);
			write_synonym(w, name, value, source);
			write_synonym(w, name, default_value, SOURCE_DEFAULT_CONFIG);
		}
		else
		{
			kw_i32(w, 1);
			write_synonym(w, name, value, source);
		}
	}
	if (version >= 3)
	{
		kw_i8(w, type);
		kw_string(w, st->include_documentation ? doc : NULL, -1);
	}
}

/*
 * A topic's configs: the rows of describe_sql for it, from *row on (the
 * rows are in the resources' order).
 */
static void
write_topic_configs(KWriter *w, Request *req, AdminState *st, const AdminItem *it,
					const PGresult *res, int *row, int ord)
{
	size_t		count_at = kw_reserve_i32(w);
	int32_t		count = 0;
	int			nrows = res ? PQntuples(res) : 0;

	for (; *row < nrows && atoi(PQgetvalue(res, *row, 0)) == ord; (*row)++)
	{
		const char *key = PQgetvalue(res, *row, 1);
		const char *value = PQgetisnull(res, *row, 2) ? NULL : PQgetvalue(res, *row, 2);
		const TopicConfigKey *k = topic_config_key(key);
		int8_t		source;

		if (!key_wanted(req, it, key))
			continue;
		if (k == NULL)
			source = SOURCE_UNKNOWN;	/* a key newer than this gateway */
		else if (value != NULL && strcmp(value, k->default_value) == 0)
			source = SOURCE_DEFAULT_CONFIG;
		else
			source = SOURCE_TOPIC_CONFIG;
		write_config(w, req, st, key, value, source, k ? k->default_value : NULL,
					 k ? k->type : 0, k ? k->doc : NULL);
		count++;
	}
	kw_patch_i32(w, count_at, count);
}

/*
 * The broker's configs: the gateway's command-line options that have a
 * Kafka broker config's meaning, read-only.  The name "" (the cluster's
 * dynamic defaults) has none.
 */
static void
write_broker_configs(KWriter *w, Request *req, AdminState *st, const AdminItem *it)
{
	char		listeners[300];
	char		node_id[16];
	char		partitions[16];
	char		max_request[16];
	size_t		count_at = kw_reserve_i32(w);
	int32_t		count = 0;
	int			i;
	struct
	{
		const char *name;
		const char *value;
		int8_t		type;
		const char *doc;
	}			configs[] = {
		{"advertised.listeners", listeners, CONFIG_TYPE_LIST, "--advertise (or --listen)"},
		{"auto.create.topics.enable", gw_config.auto_create_topics ? "true" : "false",
		CONFIG_TYPE_BOOLEAN, "--auto-create-topics"},
		{"broker.id", node_id, CONFIG_TYPE_INT, "--node-id"},
		{"num.partitions", partitions, CONFIG_TYPE_INT, "--default-partitions"},
		{"socket.request.max.bytes", max_request, CONFIG_TYPE_INT, "--max-request-size"},
	};

	snprintf(listeners, sizeof(listeners), "PLAINTEXT://%s:%d",
			 gw_config.advertised_host, gw_config.advertised_port);
	snprintf(node_id, sizeof(node_id), "%d", gw_config.node_id);
	snprintf(partitions, sizeof(partitions), "%d", gw_config.default_partitions);
	snprintf(max_request, sizeof(max_request), "%d", gw_config.max_request_size);
	for (i = 0; it->name_len > 0 && i < (int) (sizeof(configs) / sizeof(configs[0])); i++)
	{
		if (!key_wanted(req, it, configs[i].name))
			continue;
		write_config(w, req, st, configs[i].name, configs[i].value, SOURCE_STATIC_BROKER,
					 NULL, configs[i].type, configs[i].doc);
		count++;
	}
	kw_patch_i32(w, count_at, count);
}

static void
describe_respond(Request *req, AdminState *st, const PGresult *res)
{
	KWriter		w;
	int			row = 0;
	int			i;

	kw_init(&w);
	kw_i32(&w, 0);				/* throttle_time_ms */
	kw_i32(&w, st->nitems);
	for (i = 0; i < st->nitems; i++)
	{
		AdminItem  *it = &st->items[i];

		if (!it->decided && it->resource_type == RESOURCE_TOPIC && !it->found)
			item_fail(it, KERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic does not exist.");
		kw_i16(&w, it->error);
		kw_string(&w, it->message, -1);
		kw_i8(&w, it->resource_type);
		kw_string(&w, it->name, it->name_len);
		if (it->error != KERR_NONE)
			kw_i32(&w, 0);
		else if (it->resource_type == RESOURCE_TOPIC)
			write_topic_configs(&w, req, st, it, res, &row, i + 1);
		else
			write_broker_configs(&w, req, st, it);
	}
	admin_state_free(st);
	req->state = NULL;
	request_respond(req, &w);
	kw_free(&w);
}

static void
describe_done(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	AdminState *st = req->state;
	int			nrows;
	int			row;
	int			i;

	if (res == NULL || sqlstate != NULL)
	{
		int16_t		error = kafka_error_for_sqlstate(sqlstate);
		const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
			: "no connection to the database";

		gw_log("DescribeConfigs failed: %s", msg ? msg : sqlstate);
		for (i = 0; i < st->nitems; i++)
			if (!st->items[i].decided && st->items[i].resource_type == RESOURCE_TOPIC)
				item_fail_copy(&st->items[i], error, msg);
		describe_respond(req, st, NULL);
		return;
	}
	nrows = PQntuples(res);
	for (row = 0; row < nrows; row++)
	{
		int			ord = atoi(PQgetvalue(res, row, 0));

		if (ord >= 1 && ord <= st->nitems)
			st->items[ord - 1].found = true;
	}
	describe_respond(req, st, res);
}

/* Is a broker resource's name this gateway's node id (or "")? */
static bool
broker_name_ours(const char *s, int32_t len)
{
	char		node_id[16];

	snprintf(node_id, sizeof(node_id), "%d", gw_config.node_id);
	return len == 0 || name_is(s, len, node_id);
}

/*
 * DescribeConfigs v0-3: resources (type, name, keys), include_synonyms
 * (v1+), include_documentation (v3+).  One statement reads every topic
 * asked for.
 */
void
api_describe_configs(Request *req)
{
	KReader    *r = &req->body;
	int32_t		n = kr_array_len(r, MIN_RESOURCE_SIZE);
	AdminState *st;
	int32_t		i;
	int32_t		ntopics = 0;
	PgParams	p;
	KWriter    *names;

	if (r->err || (st = admin_state_new(req, n)) == NULL)
	{
		request_close(req, "malformed DescribeConfigs request");
		return;
	}
	for (i = 0; i < n; i++)
	{
		AdminItem  *it = &st->items[i];
		int32_t		nkeys;
		int32_t		j;
		const char *s;
		int32_t		len;

		it->resource_type = kr_i8(r);
		if (!read_name(r, &it->name, &it->name_len))
			break;
		it->entries = (uint32_t) r->pos;
		nkeys = kr_array_len(r, MIN_STRING_SIZE);
		for (j = 0; j < nkeys && !r->err; j++)
			if (!read_name(r, &s, &len))
				break;
		if (r->err || j < nkeys)
			break;
		st->nitems++;
		if (it->resource_type == RESOURCE_TOPIC)
		{
			if (topic_name_legal(it->name, it->name_len))
				ntopics++;
			else
				item_fail(it, KERR_INVALID_TOPIC_EXCEPTION, "The topic name is illegal.");
		}
		else if (it->resource_type == RESOURCE_BROKER)
		{
			if (!broker_name_ours(it->name, it->name_len))
				item_fail(it, KERR_INVALID_REQUEST, "This gateway is the only broker: ask for its node id.");
		}
		else
			item_fail(it, KERR_INVALID_REQUEST, "Only topic and broker configs are supported.");
	}
	if (req->api_version >= 1)
		st->include_synonyms = kr_i8(r) != 0;
	if (req->api_version >= 3)
		st->include_documentation = kr_i8(r) != 0;
	if (r->err || st->nitems < n)
	{
		admin_close(req, "malformed DescribeConfigs request");
		return;
	}
	if (ntopics == 0)
	{
		describe_respond(req, st, NULL);
		return;
	}
	/* one name per resource, NULL for those that are no topic to read */
	pgp_init(&p);
	names = pgp_array(&p, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, st->nitems);
	for (i = 0; names != NULL && i < st->nitems; i++)
	{
		AdminItem  *it = &st->items[i];

		if (it->resource_type == RESOURCE_TOPIC && !it->decided)
			pga_bytes(names, it->name, it->name_len);
		else
			pga_null(names);
	}
	if (!pgp_submit(&p, POOL_DEFAULT, describe_sql, false, describe_done, req))
		admin_close(req, "out of memory");
}
