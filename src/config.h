/*-------------------------------------------------------------------------
 *
 * config.h
 *	  Topic and group configuration keys (config.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_CONFIG_H
#define PGQ_CONFIG_H

#include "utils/jsonb.h"

typedef enum PgqConfigType
{
	PGQ_CONFIG_INT,
	PGQ_CONFIG_BOOL,
	PGQ_CONFIG_STRING
} PgqConfigType;

typedef struct PgqConfigKey
{
	const char *name;			/* Kafka's name */
	PgqConfigType type;
	int64		min;			/* PGQ_CONFIG_INT: smallest value allowed */
	const char *default_value;	/* as JSON */
	const char *choices;		/* PGQ_CONFIG_STRING: allowed words */
} PgqConfigKey;

typedef struct PgqConfigKeys
{
	const PgqConfigKey *keys;
	int			nkeys;
} PgqConfigKeys;

/* the smallest session timeout, of a group (session.timeout.ms) or a member */
#define PGQ_MIN_SESSION_TIMEOUT_MS	100

extern const PgqConfigKeys pgq_topic_config;
extern const PgqConfigKeys pgq_group_config;
extern void config_validate(const PgqConfigKeys *keys, Jsonb *config, bool allow_null);
extern int64 config_get_int(const PgqConfigKeys *keys, Jsonb *config, const char *name);
extern bool config_get_bool(const PgqConfigKeys *keys, Jsonb *config, const char *name);
extern char *config_get_string(const PgqConfigKeys *keys, Jsonb *config, const char *name);

#endif							/* PGQ_CONFIG_H */
