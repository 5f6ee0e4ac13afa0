/*-------------------------------------------------------------------------
 *
 * config.c
 *	  Topic and group config: Kafka's key names, types, ranges and defaults.
 *
 * A config is a JSON object.  The catalog stores only the keys set
 * explicitly (pgq_create_topic, pgq_alter_topic, pgq_alter_group); the
 * effective config is the defaults overlaid with them.  An unknown key or a
 * value of the wrong type or out of range is an error.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "config.h"

PG_FUNCTION_INFO_V1(pgq_effective_config);
PG_FUNCTION_INFO_V1(pgq_group_effective_config);

static const PgqConfigKey topic_keys[] = {
	{"cleanup.policy", PGQ_CONFIG_STRING, 0, "\"delete\"", "delete"},
	{"max.message.bytes", PGQ_CONFIG_INT, 1, "1048588", NULL},
	{"retention.bytes", PGQ_CONFIG_INT, -1, "-1", NULL},
	{"retention.ms", PGQ_CONFIG_INT, -1, "604800000", NULL},
	{"segment.bytes", PGQ_CONFIG_INT, 1, "1073741824", NULL},
	{"segment.ms", PGQ_CONFIG_INT, 1, "604800000", NULL},
};

static const PgqConfigKey group_keys[] = {
	{"auto.offset.reset", PGQ_CONFIG_STRING, 0, "\"earliest\"", "earliest latest"},
	{"enable.auto.commit", PGQ_CONFIG_BOOL, 0, "true", NULL},
	{"session.timeout.ms", PGQ_CONFIG_INT, PGQ_MIN_SESSION_TIMEOUT_MS, "45000", NULL},
};

const PgqConfigKeys pgq_topic_config = {topic_keys, lengthof(topic_keys)};
const PgqConfigKeys pgq_group_config = {group_keys, lengthof(group_keys)};

static const PgqConfigKey *
config_key_find(const PgqConfigKeys *keys, const char *name, int len)
{
	int			i;

	for (i = 0; i < keys->nkeys; i++)
		if (strlen(keys->keys[i].name) == (size_t) len &&
			strncmp(keys->keys[i].name, name, len) == 0)
			return &keys->keys[i];
	return NULL;
}

static int64
config_int_value(const PgqConfigKey *key, JsonbValue *v)
{
	char	   *str;
	char	   *end;
	int64		result;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be an integer", key->name)));
	str = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	result = strtoi64(str, &end, 10);
	if (errno != 0 || *end != '\0' || end == str)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" must be an integer, not %s", key->name, str)));
	if (result < key->min)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config key \"%s\" is out of range: %s", key->name, str),
				 key->min == -1 ?
				 errdetail("The value must be -1 (no limit) or greater.") :
				 errdetail("The value must be at least %lld.", (long long) key->min)));
	return result;
}

/* Is the string one of the space-separated words of key->choices? */
static bool
config_string_allowed(const PgqConfigKey *key, const char *str, int len)
{
	const char *w = key->choices;

	while (*w)
	{
		int			wlen = strcspn(w, " ");

		if (wlen == len && strncmp(w, str, len) == 0)
			return true;
		w += wlen;
		while (*w == ' ')
			w++;
	}
	return false;
}

static void
config_check_value(const PgqConfigKey *key, JsonbValue *v)
{
	switch (key->type)
	{
		case PGQ_CONFIG_INT:
			(void) config_int_value(key, v);
			break;
		case PGQ_CONFIG_BOOL:
			if (v->type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("config key \"%s\" must be true or false", key->name)));
			break;
		case PGQ_CONFIG_STRING:
			if (v->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("config key \"%s\" must be a string", key->name)));
			if (strcmp(key->name, "cleanup.policy") == 0 &&
				v->val.string.len == 7 && strncmp(v->val.string.val, "compact", 7) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cleanup.policy \"compact\" is not supported yet")));
			if (!config_string_allowed(key, v->val.string.val, v->val.string.len))
			{
				StringInfoData valid;
				const char *w = key->choices;

				/* the words of choices, quoted and separated by commas */
				initStringInfo(&valid);
				while (*w != '\0')
				{
					int			len = strcspn(w, " ");

					appendStringInfo(&valid, "%s\"%.*s\"", valid.len > 0 ? ", " : "", len, w);
					w += len;
					w += strspn(w, " ");
				}
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for config key \"%s\": \"%.*s\"",
								key->name, v->val.string.len, v->val.string.val),
						 errhint("Valid values are %s.", valid.data)));
			}
			break;
	}
}

/*
 * Checks a config object: known keys, values of the right type and range.
 * With allow_null, a JSON null value is accepted (it removes the key).
 */
void
config_validate(const PgqConfigKeys *keys, Jsonb *config, bool allow_null)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	const PgqConfigKey *key = NULL;

	if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
	{
		if (keys == &pgq_topic_config)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("topic config must be a JSON object")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group config must be a JSON object")));
	}

	it = JsonbIteratorInit(&config->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = config_key_find(keys, v.val.string.val, v.val.string.len);
			if (key == NULL)
			{
				StringInfoData valid;
				int			i;

				initStringInfo(&valid);
				for (i = 0; i < keys->nkeys; i++)
					appendStringInfo(&valid, "%s%s", i > 0 ? ", " : "", keys->keys[i].name);
				if (keys == &pgq_topic_config)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown topic config key \"%.*s\"",
									v.val.string.len, v.val.string.val),
							 errhint("Valid keys are %s.", valid.data)));
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown group config key \"%.*s\"",
								v.val.string.len, v.val.string.val),
						 errhint("Valid keys are %s.", valid.data)));
			}
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type == jbvNull)
			{
				if (!allow_null)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("config key \"%s\" must not be null", key->name)));
			}
			else
				config_check_value(key, &v);
		}
	}
}

/* The stored value of a key, or NULL if it is not set. */
static JsonbValue *
config_lookup(const PgqConfigKeys *keys, Jsonb *config, const char *name,
			  const PgqConfigKey **key)
{
	JsonbValue *v;

	*key = config_key_find(keys, name, strlen(name));
	if (*key == NULL)
		elog(ERROR, "unknown config key \"%s\"", name);
	v = getKeyJsonValueFromContainer(&config->root, name, strlen(name), NULL);
	return (v != NULL && v->type != jbvNull) ? v : NULL;
}

/* An integer config value from the stored overrides, or its default. */
int64
config_get_int(const PgqConfigKeys *keys, Jsonb *config, const char *name)
{
	const PgqConfigKey *key;
	JsonbValue *v = config_lookup(keys, config, name, &key);

	return v != NULL ? config_int_value(key, v) : strtoi64(key->default_value, NULL, 10);
}

bool
config_get_bool(const PgqConfigKeys *keys, Jsonb *config, const char *name)
{
	const PgqConfigKey *key;
	JsonbValue *v = config_lookup(keys, config, name, &key);

	return v != NULL ? v->val.boolean : strcmp(key->default_value, "true") == 0;
}

/* A string config value (palloc'd), or its default. */
char *
config_get_string(const PgqConfigKeys *keys, Jsonb *config, const char *name)
{
	const PgqConfigKey *key;
	JsonbValue *v = config_lookup(keys, config, name, &key);

	if (v != NULL)
		return pnstrdup(v->val.string.val, v->val.string.len);
	/* the default is a JSON string: strip the quotes */
	return pnstrdup(key->default_value + 1, strlen(key->default_value) - 2);
}

static Datum
effective_config(const PgqConfigKeys *keys, Jsonb *config)
{
	StringInfoData buf;
	int			i;
	Datum		defaults;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < keys->nkeys; i++)
		appendStringInfo(&buf, "%s\"%s\": %s", i > 0 ? ", " : "",
						 keys->keys[i].name, keys->keys[i].default_value);
	appendStringInfoChar(&buf, '}');
	defaults = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));

	return DirectFunctionCall2(jsonb_concat, defaults, JsonbPGetDatum(config));
}

/* SQL: a topic's effective config, defaults overlaid with the stored overrides. */
Datum
pgq_effective_config(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(effective_config(&pgq_topic_config, PG_GETARG_JSONB_P(0)));
}

/* SQL: a group's effective config. */
Datum
pgq_group_effective_config(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(effective_config(&pgq_group_config, PG_GETARG_JSONB_P(0)));
}
