/*-------------------------------------------------------------------------
 *
 * api_group.c
 *	  The consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup,
 *	  Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups and
 *	  ListGroups, mapped onto pgqueue's server-side assignment.
 *
 * Kafka's classic protocol lets one client (the leader) assign partitions;
 * here pgqueue assigns them, as it does for its SQL members, so Kafka and
 * SQL members can share a group and the gateway keeps no state:
 *
 *	JoinGroup	pgq_sync_member for each subscribed topic (owned: none for an
 *				eager client, which revoked everything before it rejoined;
 *				the subscription's owned partitions for a cooperative one).
 *				The answer names a leader that is no member ("": pgqueue
 *				refuses empty member ids), so no client runs an assignor, and
 *				the member's first eager protocol.
 *	SyncGroup	the member's target assignment (pgq_sync_member without
 *				owned) as a ConsumerProtocolAssignment.
 *	Heartbeat	the same call, which renews the lease; REBALANCE_IN_PROGRESS
 *				when the target is not what the member was given.
 *	LeaveGroup	pgq_leave.
 *	OffsetCommit pgq_commit of each offset, with its metadata; pgqueue's
 *				ownership check is the fencing (55000).
 *	OffsetFetch	pgq_committed_offsets.
 *	DescribeGroups, ListGroups: pgq_groups and pgq_members.
 *
 * The generation.  A member's generation is a hash of its target
 * assignment (each topic, sorted by name, with its partitions), not a
 * group-wide counter: a member is told to rebalance exactly when its own
 * partitions must change, so a member that joins does not make every
 * other member revoke and rejoin, and the group converges one heartbeat
 * per step.  The member's topics are those pgq_members shows for it.  A
 * member that subscribed to no existing topic has generation 0 and no
 * membership in pgqueue.  A SyncGroup whose target changed since its
 * JoinGroup answers ILLEGAL_GENERATION (the client rejoins at once); a
 * JoinGroup that drops a topic from the subscription leaves the group
 * first, or heartbeats would keep renewing the member there.
 * OffsetCommit does not compare generations:
 * pgqueue fences by ownership, and an eager client commits with its old
 * generation while it revokes, which Kafka accepts too.
 *
 * Each API ends its request from the callback of its statement (or
 * statements: a commit that fails is retried partition by partition, so
 * that each partition gets its own error).
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api_group.h"
#include "pgbin.h"

/* Kafka's error codes used only here */
#define KERR_OFFSET_METADATA_TOO_LARGE	12

#define CONSUMER_PROTOCOL_TYPE	"consumer"
/* no member can have it: pgqueue's member ids are 1 to 127 bytes */
#define SERVER_LEADER_ID		""
/* DescribeGroups' protocol of a group with members: the assignment's maker */
#define SERVER_PROTOCOL_NAME	"pgqueue"

/* pgqueue's limits on group and member ids (PGQ_GROUP_ID_MAX) */
#define GROUP_ID_MAX			127
/* pgqueue's lower limit on a lease; Kafka's default group.max.session.timeout.ms */
#define MIN_SESSION_TIMEOUT_MS	100
#define MAX_SESSION_TIMEOUT_MS	1800000

/* bytes of the smallest element of the arrays read here */
#define MIN_STRING_SIZE			2
#define MIN_ARRAY_SIZE			4

/* ------------------------------------------------------------ helpers */

/*
 * An array parameter's elements, collected before their count is known
 * (pgp_array wants it first).
 */
typedef struct Elems
{
	Oid			array_type;
	Oid			elem_type;
	int32_t		n;
	KWriter		w;
} Elems;

static void
elems_init(Elems *e, Oid array_type, Oid elem_type)
{
	e->array_type = array_type;
	e->elem_type = elem_type;
	e->n = 0;
	kw_init(&e->w);
}

/* s NULL: a NULL element */
static void
elems_text(Elems *e, const char *s, int32_t len)
{
	pga_bytes(&e->w, s, len);
	e->n++;
}

static void
elems_int4(Elems *e, int32_t v)
{
	pga_int4(&e->w, v);
	e->n++;
}

static void
elems_int8(Elems *e, int64_t v)
{
	pga_int8(&e->w, v);
	e->n++;
}

static void
elems_free(Elems *e)
{
	kw_free(&e->w);
}

/* what JoinGroup reads from a subscription */
typedef struct Subscription
{
	Elems		topics;
	Elems		owned_topics;	/* with owned_parts: the owned partitions */
	Elems		owned_parts;
} Subscription;

static void
subscription_init(Subscription *sub)
{
	elems_init(&sub->topics, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID);
	elems_init(&sub->owned_topics, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID);
	elems_init(&sub->owned_parts, PGB_INT4_ARRAY_OID, PGB_INT4_OID);
}

static void
subscription_free(Subscription *sub)
{
	elems_free(&sub->topics);
	elems_free(&sub->owned_topics);
	elems_free(&sub->owned_parts);
}

/* adds the elements as the next parameter (they stay e's) */
static void
pgp_elems(PgParams *p, const Elems *e)
{
	KWriter    *w = pgp_array(p, e->array_type, e->elem_type, e->n);

	if (w == NULL)
		return;
	if (e->w.len > 0)
		kw_raw(w, e->w.data, e->w.len);
	if (e->w.err)
		w->err = true;
}

#define TEXT_ELEMS(e)	elems_init((e), PGB_TEXT_ARRAY_OID, PGB_TEXT_OID)
#define INT4_ELEMS(e)	elems_init((e), PGB_INT4_ARRAY_OID, PGB_INT4_OID)
#define INT8_ELEMS(e)	elems_init((e), PGB_INT8_ARRAY_OID, PGB_INT8_OID)

/*
 * Runs a statement of the group APIs (text results); when its parameters
 * could not be built (out of memory), its callback runs at once without
 * a result, as for a lost connection.  Frees p.
 */
static void
group_submit(PgParams *p, const char *sql, PgCallback cb, void *arg)
{
	if (!pgp_submit(p, POOL_DEFAULT, sql, false, cb, arg))
		cb(NULL, NULL, arg);
}

/*
 * Is this a group or member id pgqueue takes: 1 to 127 bytes, no control
 * characters?  Checked before any statement, so that a bad id gets its
 * Kafka error rather than failing a statement that serves others.
 */
static bool
id_valid(const char *s, int32_t len)
{
	int32_t		i;

	if (s == NULL || len < 1 || len > GROUP_ID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] < 32 || s[i] == 127)
			return false;
	return true;
}

static char *
str_dup_len(const char *s, int32_t len)
{
	char	   *d = malloc((size_t) len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

/* the throttle time, in the versions that have it */
static void
write_throttle(KWriter *w, Request *req, int16_t from_version)
{
	if (req->api_version >= from_version)
		kw_i32(w, 0);
}

static void
respond_and_free(Request *req, KWriter *w)
{
	request_respond(req, w);
	kw_free(w);
}

int16_t
group_error_for_sqlstate(const char *sqlstate)
{
	if (sqlstate == NULL)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	/* a standby: look for the coordinator again (after a failover) */
	if (strcmp(sqlstate, "25006") == 0)
		return KERR_NOT_COORDINATOR;
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (strcmp(sqlstate, "42602") == 0)
		return KERR_INVALID_GROUP_ID;
	if (strcmp(sqlstate, "42501") == 0)
		return KERR_GROUP_AUTHORIZATION_FAILED;
	return kafka_error_for_sqlstate(sqlstate);
}

/*
 * Logs a failed statement on one line, unless it is a fenced commit: that
 * is the client's ordinary news, not the gateway's trouble.
 */
static void
log_sql_error(const char *api, PGresult *res, const char *sqlstate)
{
	const char *msg;

	if (sqlstate == NULL)
	{
		gw_log("%s: no connection to Postgres", api);
		return;
	}
	if (strcmp(sqlstate, "55000") == 0)
		return;
	msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	gw_log("%s: SQLSTATE %s: %s", api, sqlstate, msg ? msg : "(no message)");
}

/*
 * Writes an int4[] in Postgres's text output ("{0,1,2}") as Kafka's
 * [int32].
 */
static void
write_partitions_text(KWriter *w, const char *text)
{
	size_t		at = kw_reserve_i32(w);
	int32_t		n = 0;
	const char *s = text;

	if (*s == '{')
		s++;
	while (*s != '\0' && *s != '}')
	{
		char	   *end;
		long		v = strtol(s, &end, 10);

		if (end == s)
			break;
		kw_i32(w, (int32_t) v);
		n++;
		s = end;
		if (*s == ',')
			s++;
	}
	kw_patch_i32(w, at, n);
}

/*
 * The generation of a member: FNV-1a over its (topic, partitions) rows, in
 * the order the statements give them (by topic, byte order), 0 for none.
 * Kafka's generations are non-negative (-1 means none), hence the mask.
 */
static int32_t
generation_of(PGresult *res, int first_row, int topic_col, int parts_col)
{
	uint32_t	h = 2166136261u;
	int			nrows = PQntuples(res);
	int			row;
	int32_t		g;

	if (nrows <= first_row)
		return 0;
	for (row = first_row; row < nrows; row++)
	{
		int			c;

		for (c = 0; c < 2; c++)
		{
			int			col = c == 0 ? topic_col : parts_col;
			const char *s = PQgetvalue(res, row, col);
			int			len = PQgetlength(res, row, col);
			int			i;

			for (i = 0; i <= len; i++)	/* the NUL separates the fields */
			{
				h ^= (uint8_t) s[i];
				h *= 16777619u;
			}
		}
	}
	g = (int32_t) (h & 0x7fffffff);
	return g != 0 ? g : 1;
}

/*
 * ConsumerProtocolAssignment v0 from (topic, partitions) rows: the bytes
 * a SyncGroup answer and DescribeGroups carry.
 */
static void
write_assignment(KWriter *w, PGresult *res, int first_row, int end_row,
				 int topic_col, int parts_col)
{
	KWriter		a;
	int			row;

	kw_init(&a);
	kw_i16(&a, 0);
	kw_i32(&a, end_row - first_row);
	for (row = first_row; row < end_row; row++)
	{
		kw_string(&a, PQgetvalue(res, row, topic_col), PQgetlength(res, row, topic_col));
		write_partitions_text(&a, PQgetvalue(res, row, parts_col));
	}
	kw_bytes(&a, NULL, -1);		/* user data */
	if (a.err)
		w->err = true;
	kw_bytes(w, a.data ? a.data : (const uint8_t *) "", (int32_t) a.len);
	kw_free(&a);
}

/* ConsumerProtocolSubscription v0 of the topics of rows, for DescribeGroups */
static void
write_subscription(KWriter *w, PGresult *res, int first_row, int end_row, int topic_col)
{
	KWriter		s;
	int			row;

	kw_init(&s);
	kw_i16(&s, 0);
	kw_i32(&s, end_row - first_row);
	for (row = first_row; row < end_row; row++)
		kw_string(&s, PQgetvalue(res, row, topic_col), PQgetlength(res, row, topic_col));
	kw_bytes(&s, NULL, -1);		/* user data */
	if (s.err)
		w->err = true;
	kw_bytes(w, s.data ? s.data : (const uint8_t *) "", (int32_t) s.len);
	kw_free(&s);
}

/* ----------------------------------------------------- FindCoordinator */

/*
 * Every gateway coordinates every group: the state is in pgqueue, so the
 * answer is this gateway, whatever the key (a group or a transactional
 * id).
 */
void
api_find_coordinator(Request *req)
{
	KReader    *r = &req->body;
	const char *key;
	int32_t		key_len;
	const char *host;
	int			port;
	KWriter		w;

	kr_string(r, &key, &key_len);
	if (req->api_version >= 1)
		(void) kr_i8(r);		/* key type */
	if (r->err)
	{
		request_close(req, "malformed FindCoordinator request");
		return;
	}

	host = gw_config.advertised_host ? gw_config.advertised_host : gw_config.listen_host;
	port = gw_config.advertised_port > 0 ? gw_config.advertised_port : gw_config.listen_port;

	kw_init(&w);
	write_throttle(&w, req, 1);
	kw_i16(&w, KERR_NONE);
	if (req->api_version >= 1)
		kw_string(&w, NULL, -1);	/* error message */
	kw_i32(&w, gw_config.node_id);
	kw_string(&w, host ? host : "", -1);
	kw_i32(&w, port);
	respond_and_free(req, &w);
}

/* ----------------------------------------------------------- JoinGroup */

typedef struct JoinState
{
	Request    *req;
	const char *group_id;		/* into the request */
	int32_t		group_id_len;
	char	   *member_id;
	const char *protocol;		/* into the request */
	int32_t		protocol_len;
	Subscription sub;			/* kept for a second run of JOIN_SQL */
	bool		cooperative;
	int32_t		session_timeout;
	bool		left;			/* it left its stale topics once */
} JoinState;

/*
 * The first row counts the topics the member still consumes in the group
 * but no longer subscribes to (the Append runs it before the syncs); the
 * others are the subscribed topics that exist, with the member's target
 * assignment in each.  $4: cooperative, so $5/$6 (topic, partition) are
 * the partitions it still owns; an eager member owns none.
 */
static const char *const JOIN_SQL =
"SELECT NULL::text AS topic, NULL::text AS partitions,\n"
"       (SELECT count(*) FROM pgq_members m\n"
"         WHERE m.group_id = $1 AND m.member_id = $3\n"
"           AND m.topic <> ALL ($2::text[])) AS stale\n"
"UNION ALL\n"
"(SELECT t.topic, s.partitions::text, NULL\n"
"   FROM (SELECT DISTINCT x.topic, x.partitions FROM pgq_topics x\n"
"          WHERE x.topic = ANY ($2::text[])) AS t\n"
"  CROSS JOIN LATERAL pgq_sync_member($1, t.topic, $3,\n"
"        CASE WHEN $4 <> 0 THEN ARRAY(SELECT DISTINCT o.p\n"
"                                  FROM unnest($5::text[], $6::int[]) AS o(topic, p)\n"
"                                 WHERE o.topic = t.topic AND o.p >= 0\n"
"                                   AND o.p < t.partitions)\n"
"             ELSE '{}'::int[] END, $7) AS s\n"
"  ORDER BY t.topic COLLATE \"C\")";

static const char *const LEAVE_SQL = "SELECT count(*) FROM pgq_leave($1, $2)";

static void
join_respond(Request *req, int16_t error, int32_t generation,
			 const char *protocol, int32_t protocol_len, const char *member_id)
{
	KWriter		w;

	kw_init(&w);
	write_throttle(&w, req, 2);
	kw_i16(&w, error);
	kw_i32(&w, generation);
	kw_string(&w, protocol ? protocol : "", protocol ? protocol_len : 0);
	kw_string(&w, SERVER_LEADER_ID, -1);
	kw_string(&w, member_id ? member_id : "", -1);
	kw_i32(&w, 0);				/* members: only a leader gets them */
	respond_and_free(req, &w);
}

static void
join_error(Request *req, int16_t error, const char *member_id)
{
	join_respond(req, error, -1, NULL, 0, member_id);
}

static void
join_state_free(JoinState *st)
{
	subscription_free(&st->sub);
	free(st->member_id);
	free(st);
}

static void join_synced(PGresult *res, const char *sqlstate, void *arg);

static void
join_submit(JoinState *st)
{
	PgParams	p;

	pgp_init(&p);
	pgp_text(&p, st->group_id, st->group_id_len);
	pgp_elems(&p, &st->sub.topics);
	pgp_text(&p, st->member_id, -1);
	pgp_int4(&p, st->cooperative ? 1 : 0);
	pgp_elems(&p, &st->sub.owned_topics);
	pgp_elems(&p, &st->sub.owned_parts);
	pgp_int4(&p, st->session_timeout);
	group_submit(&p, JOIN_SQL, join_synced, st);
}

static void
join_left(PGresult *res, const char *sqlstate, void *arg)
{
	JoinState  *st = arg;

	if (res == NULL || sqlstate != NULL)
	{
		log_sql_error("JoinGroup", res, sqlstate);
		join_error(st->req, group_error_for_sqlstate(sqlstate), st->member_id);
		join_state_free(st);
		return;
	}
	join_submit(st);
}

static void
join_synced(PGresult *res, const char *sqlstate, void *arg)
{
	JoinState  *st = arg;

	if (res == NULL || sqlstate != NULL || PQntuples(res) < 1)
	{
		log_sql_error("JoinGroup", res, sqlstate);
		join_error(st->req, group_error_for_sqlstate(sqlstate), st->member_id);
		join_state_free(st);
		return;
	}

	/*
	 * A member that dropped a topic from its subscription leaves the group
	 * (pgq_leave leaves every topic, at commit: so in a statement of its
	 * own) and joins its topics again, or its heartbeats would keep
	 * renewing the dropped topic, whose share it would hold.
	 */
	if (strtoll(PQgetvalue(res, 0, 2), NULL, 10) > 0 && !st->left)
	{
		PgParams	p;

		st->left = true;
		pgp_init(&p);
		pgp_text(&p, st->group_id, st->group_id_len);
		pgp_text(&p, st->member_id, -1);
		group_submit(&p, LEAVE_SQL, join_left, st);
		pgp_free(&p);
		return;
	}

	join_respond(st->req, KERR_NONE, generation_of(res, 1, 0, 1),
				 st->protocol, st->protocol_len, st->member_id);
	join_state_free(st);
}

/* librdkafka's and Java's cooperative protocol ("cooperative-sticky") */
static bool
protocol_is_cooperative(const char *name, int32_t len)
{
	return len >= 11 && memcmp(name, "cooperative", 11) == 0;
}

/*
 * Reads a ConsumerProtocolSubscription (any version: v1 added the owned
 * partitions, later versions fields after them) into *sub.
 */
static bool
parse_subscription(const uint8_t *data, int32_t len, Subscription *sub)
{
	KReader		r;
	int16_t		version;
	int32_t		n;
	int32_t		i;
	const uint8_t *user_data;
	int32_t		user_data_len;

	if (data == NULL)
		return false;
	kr_init(&r, data, len);
	version = kr_i16(&r);
	n = kr_array_len(&r, MIN_STRING_SIZE);
	for (i = 0; i < n && !r.err; i++)
	{
		const char *t;
		int32_t		tlen;

		if (kr_string(&r, &t, &tlen) && t != NULL)
			elems_text(&sub->topics, t, tlen);
	}
	kr_bytes(&r, &user_data, &user_data_len);
	/* an old client may end a v1 subscription here */
	if (version >= 1 && kr_remaining(&r) > 0)
	{
		n = kr_array_len(&r, MIN_STRING_SIZE + MIN_ARRAY_SIZE);
		for (i = 0; i < n && !r.err; i++)
		{
			const char *t;
			int32_t		tlen;
			int32_t		m;
			int32_t		j;

			kr_string(&r, &t, &tlen);
			m = kr_array_len(&r, 4);
			for (j = 0; j < m && !r.err; j++)
			{
				int32_t		p = kr_i32(&r);

				if (t != NULL && !r.err)
				{
					elems_text(&sub->owned_topics, t, tlen);
					elems_int4(&sub->owned_parts, p);
				}
			}
		}
	}
	return !r.err && version >= 0;
}

/*
 * A member id for a client that has none: its client id (printable ASCII,
 * shortened) and 128 random bits, as Kafka makes them.
 */
static char *
member_id_generate(const char *client_id)
{
	uint8_t		rnd[16];
	char		buf[GROUP_ID_MAX + 1];
	const char *c = (client_id != NULL && client_id[0] != '\0') ? client_id : "consumer";
	size_t		n = 0;
	int			i;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
	{
		/* unlikely (the pool is seeded long after boot): still unique enough */
		static uint32_t counter;
		uint64_t	t = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);

		for (i = 0; i < 16; i++)
			rnd[i] = (uint8_t) ((t >> ((i % 8) * 8)) ^ (counter >> ((i % 4) * 8)) ^ (i * 37));
		counter++;
	}
	for (; *c != '\0' && n < 80; c++)
		buf[n++] = (*c > 32 && *c < 127) ? *c : '_';
	buf[n++] = '-';
	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[n++] = '-';
		snprintf(buf + n, sizeof(buf) - n, "%02x", rnd[i]);
		n += 2;
	}
	buf[n] = '\0';
	return strdup(buf);
}

void
api_join_group(Request *req)
{
	KReader    *r = &req->body;
	int16_t		version = req->api_version;
	const char *group_id;
	int32_t		group_id_len;
	int32_t		session_timeout;
	const char *member;
	int32_t		member_len;
	const char *instance = NULL;
	int32_t		instance_len = -1;
	const char *ptype;
	int32_t		ptype_len;
	int32_t		nprotocols;
	int32_t		i;
	const char *chosen = NULL;
	int32_t		chosen_len = 0;
	const uint8_t *chosen_md = NULL;
	int32_t		chosen_md_len = -1;
	bool		chosen_eager = false;
	Subscription sub;
	JoinState  *st;
	char	   *member_id;

	kr_string(r, &group_id, &group_id_len);
	session_timeout = kr_i32(r);
	if (version >= 1)
		(void) kr_i32(r);		/* rebalance timeout: no join barrier here */
	kr_string(r, &member, &member_len);
	if (version >= 5)
		kr_string(r, &instance, &instance_len);
	kr_string(r, &ptype, &ptype_len);
	nprotocols = kr_array_len(r, MIN_STRING_SIZE + 4);
	for (i = 0; i < nprotocols && !r->err; i++)
	{
		const char *name;
		int32_t		name_len;
		const uint8_t *md;
		int32_t		md_len;
		bool		eager;

		kr_string(r, &name, &name_len);
		kr_bytes(r, &md, &md_len);
		if (r->err || name == NULL)
			continue;
		/* the first eager protocol, else the first: kcat can only do eager */
		eager = !protocol_is_cooperative(name, name_len);
		if (chosen == NULL || (eager && !chosen_eager))
		{
			chosen = name;
			chosen_len = name_len;
			chosen_md = md;
			chosen_md_len = md_len;
			chosen_eager = eager;
		}
	}
	if (r->err)
	{
		request_close(req, "malformed JoinGroup request");
		return;
	}

	if (!id_valid(group_id, group_id_len))
	{
		join_error(req, KERR_INVALID_GROUP_ID, NULL);
		return;
	}
	if (member != NULL && member_len > 0 && !id_valid(member, member_len))
	{
		join_error(req, KERR_UNKNOWN_MEMBER_ID, "");
		return;
	}
	if (session_timeout < MIN_SESSION_TIMEOUT_MS || session_timeout > MAX_SESSION_TIMEOUT_MS)
	{
		join_error(req, KERR_INVALID_SESSION_TIMEOUT, NULL);
		return;
	}

	subscription_init(&sub);
	if (ptype == NULL || ptype_len != (int32_t) strlen(CONSUMER_PROTOCOL_TYPE) ||
		memcmp(ptype, CONSUMER_PROTOCOL_TYPE, ptype_len) != 0 || chosen == NULL ||
		!parse_subscription(chosen_md, chosen_md_len, &sub))
	{
		subscription_free(&sub);
		join_error(req, KERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
		return;
	}

	/*
	 * The member: the one named, else the static member (KIP-345), else a
	 * new one; from v4 the client must come back with the new id first
	 * (KIP-394), so that a client that never does leaves no member behind.
	 */
	if (member != NULL && member_len > 0)
		member_id = str_dup_len(member, member_len);
	else if (id_valid(instance, instance_len))
		member_id = str_dup_len(instance, instance_len);
	else
	{
		member_id = member_id_generate(req->client_id);
		if (member_id != NULL && version >= 4)
		{
			subscription_free(&sub);
			join_error(req, KERR_MEMBER_ID_REQUIRED, member_id);
			free(member_id);
			return;
		}
	}

	st = calloc(1, sizeof(JoinState));
	if (st == NULL || member_id == NULL)
	{
		subscription_free(&sub);
		free(st);
		free(member_id);
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
		return;
	}
	st->req = req;
	st->group_id = group_id;
	st->group_id_len = group_id_len;
	st->member_id = member_id;
	st->protocol = chosen;
	st->protocol_len = chosen_len;
	req->state = st;

	st->sub = sub;
	st->cooperative = !chosen_eager;
	st->session_timeout = session_timeout;
	join_submit(st);
}

/* -------------------------------------------- SyncGroup and Heartbeat */

/*
 * Renews the member in each topic it consumes in the group, and returns
 * its target assignment there (the partitions beyond its share, which it
 * still owns until it gives them up, are not in it).
 */
static const char *const MEMBER_SYNC_SQL =
"SELECT m.topic, s.partitions::text\n"
"  FROM pgq_members m\n"
" CROSS JOIN LATERAL pgq_sync_member(m.group_id, m.topic, m.member_id,\n"
"                                    NULL::int[], NULL::int) AS s\n"
" WHERE m.group_id = $1 AND m.member_id = $2\n"
" ORDER BY m.topic COLLATE \"C\"";

typedef struct MemberSyncState
{
	Request    *req;
	int32_t		generation;		/* the request's */
} MemberSyncState;

static void
sync_respond(Request *req, int16_t error, PGresult *res)
{
	KWriter		w;

	kw_init(&w);
	write_throttle(&w, req, 1);
	kw_i16(&w, error);
	if (error == KERR_NONE && res != NULL)
		write_assignment(&w, res, 0, PQntuples(res), 0, 1);
	else
		kw_bytes(&w, "", 0);
	respond_and_free(req, &w);
}

static void
heartbeat_respond(Request *req, int16_t error)
{
	KWriter		w;

	kw_init(&w);
	write_throttle(&w, req, 1);
	kw_i16(&w, error);
	respond_and_free(req, &w);
}

/*
 * The outcome of a sync or heartbeat: an unknown member (it left, or its
 * lease ran out), a target that is not what the member was given, or
 * none.
 */
static int16_t
member_sync_error(PGresult *res, const char *sqlstate, int32_t generation, int16_t changed)
{
	if (res == NULL || sqlstate != NULL)
		return group_error_for_sqlstate(sqlstate);
	if (PQntuples(res) == 0)
		return generation == 0 ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
	if (generation_of(res, 0, 0, 1) != generation)
		return changed;
	return KERR_NONE;
}

static void
sync_done(PGresult *res, const char *sqlstate, void *arg)
{
	MemberSyncState *st = arg;
	int16_t		error;

	if (res == NULL || sqlstate != NULL)
		log_sql_error("SyncGroup", res, sqlstate);
	error = member_sync_error(res, sqlstate, st->generation, KERR_ILLEGAL_GENERATION);
	sync_respond(st->req, error, res);
	free(st);
}

static void
heartbeat_done(PGresult *res, const char *sqlstate, void *arg)
{
	MemberSyncState *st = arg;

	if (res == NULL || sqlstate != NULL)
		log_sql_error("Heartbeat", res, sqlstate);
	heartbeat_respond(st->req,
					  member_sync_error(res, sqlstate, st->generation, KERR_REBALANCE_IN_PROGRESS));
	free(st);
}

/* submits MEMBER_SYNC_SQL, or answers at once the error that needs no SQL */
static void
member_sync_submit(Request *req, const char *group_id, int32_t group_id_len,
				   const char *member, int32_t member_len, int32_t generation,
				   PgCallback done)
{
	MemberSyncState *st;
	PgParams	p;
	int16_t		error = KERR_NONE;

	if (!id_valid(group_id, group_id_len))
		error = KERR_INVALID_GROUP_ID;
	else if (!id_valid(member, member_len))
		error = KERR_UNKNOWN_MEMBER_ID;
	else if ((st = malloc(sizeof(MemberSyncState))) == NULL)
		error = KERR_COORDINATOR_NOT_AVAILABLE;
	if (error != KERR_NONE)
	{
		if (done == sync_done)
			sync_respond(req, error, NULL);
		else
			heartbeat_respond(req, error);
		return;
	}
	st->req = req;
	st->generation = generation;
	req->state = st;

	pgp_init(&p);
	pgp_text(&p, group_id, group_id_len);
	pgp_text(&p, member, member_len);
	group_submit(&p, MEMBER_SYNC_SQL, done, st);
	pgp_free(&p);
}

/*
 * SyncGroup: the assignments a leader sends are ignored (no member leads);
 * every member gets its own from pgqueue.
 */
void
api_sync_group(Request *req)
{
	KReader    *r = &req->body;
	const char *group_id;
	int32_t		group_id_len;
	int32_t		generation;
	const char *member;
	int32_t		member_len;
	const char *instance;
	int32_t		instance_len;

	kr_string(r, &group_id, &group_id_len);
	generation = kr_i32(r);
	kr_string(r, &member, &member_len);
	if (req->api_version >= 3)
		kr_string(r, &instance, &instance_len);
	(void) kr_array_len(r, MIN_STRING_SIZE + 4);
	if (r->err)
	{
		request_close(req, "malformed SyncGroup request");
		return;
	}
	member_sync_submit(req, group_id, group_id_len, member, member_len, generation, sync_done);
}

void
api_heartbeat(Request *req)
{
	KReader    *r = &req->body;
	const char *group_id;
	int32_t		group_id_len;
	int32_t		generation;
	const char *member;
	int32_t		member_len;
	const char *instance;
	int32_t		instance_len;

	kr_string(r, &group_id, &group_id_len);
	generation = kr_i32(r);
	kr_string(r, &member, &member_len);
	if (req->api_version >= 3)
		kr_string(r, &instance, &instance_len);
	if (r->err)
	{
		request_close(req, "malformed Heartbeat request");
		return;
	}
	member_sync_submit(req, group_id, group_id_len, member, member_len, generation,
					   heartbeat_done);
}

/* ---------------------------------------------------------- LeaveGroup */

/*
 * Whether each member was in the group (asked before it leaves, in the
 * same snapshot: pgq_leave takes effect at commit), and its leave.
 */
static const char *const LEAVE_MEMBERS_SQL =
"SELECT l.n,\n"
"       EXISTS (SELECT 1 FROM pgq_members m\n"
"                WHERE m.group_id = $1 AND m.member_id = l.id),\n"
"       (SELECT count(*) FROM pgq_leave($1, l.id))\n"
"  FROM unnest($2::text[]) WITH ORDINALITY AS l(id, n)\n"
" WHERE l.id IS NOT NULL\n"
" ORDER BY l.n";

typedef struct LeavingMember
{
	const char *member_id;		/* into the request */
	int32_t		member_id_len;
	const char *instance_id;
	int32_t		instance_id_len;
	int16_t		error;
} LeavingMember;

typedef struct LeaveState
{
	Request    *req;
	int32_t		n;
	LeavingMember *members;
} LeaveState;

static void
leave_respond(LeaveState *st, int16_t error)
{
	Request    *req = st->req;
	KWriter		w;
	int32_t		i;

	kw_init(&w);
	write_throttle(&w, req, 1);
	if (req->api_version < 3)
		kw_i16(&w, st->n > 0 ? st->members[0].error : error);
	else
	{
		kw_i16(&w, error);
		kw_i32(&w, st->n);
		for (i = 0; i < st->n; i++)
		{
			kw_string(&w, st->members[i].member_id, st->members[i].member_id_len);
			kw_string(&w, st->members[i].instance_id, st->members[i].instance_id_len);
			kw_i16(&w, st->members[i].error);
		}
	}
	respond_and_free(req, &w);
	free(st->members);
	free(st);
}

static void
leave_done(PGresult *res, const char *sqlstate, void *arg)
{
	LeaveState *st = arg;
	int32_t		i;
	int			row;

	if (res == NULL || sqlstate != NULL)
	{
		int16_t		error = group_error_for_sqlstate(sqlstate);

		log_sql_error("LeaveGroup", res, sqlstate);
		for (i = 0; i < st->n; i++)
			if (st->members[i].error == KERR_NONE)
				st->members[i].error = error;
		leave_respond(st, error);
		return;
	}
	for (row = 0; row < PQntuples(res); row++)
	{
		long		n = strtol(PQgetvalue(res, row, 0), NULL, 10);

		if (n >= 1 && n <= st->n && PQgetvalue(res, row, 1)[0] != 't')
			st->members[n - 1].error = KERR_UNKNOWN_MEMBER_ID;
	}
	leave_respond(st, KERR_NONE);
}

void
api_leave_group(Request *req)
{
	KReader    *r = &req->body;
	const char *group_id;
	int32_t		group_id_len;
	int32_t		n = 1;
	int32_t		i;
	LeaveState *st;
	Elems		ids;
	PgParams	p;

	kr_string(r, &group_id, &group_id_len);
	if (req->api_version >= 3)
		n = kr_array_len(r, 2 * MIN_STRING_SIZE);
	if (r->err || n < 0)
	{
		request_close(req, "malformed LeaveGroup request");
		return;
	}
	st = calloc(1, sizeof(LeaveState));
	if (st == NULL || (n > 0 && (st->members = calloc(n, sizeof(LeavingMember))) == NULL))
	{
		free(st);
		heartbeat_respond(req, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	st->req = req;
	st->n = n;
	for (i = 0; i < n; i++)
	{
		LeavingMember *m = &st->members[i];

		kr_string(r, &m->member_id, &m->member_id_len);
		m->instance_id = NULL;
		m->instance_id_len = -1;
		if (req->api_version >= 3)
			kr_string(r, &m->instance_id, &m->instance_id_len);
	}
	if (r->err)
	{
		free(st->members);
		free(st);
		request_close(req, "malformed LeaveGroup request");
		return;
	}
	req->state = st;

	/* a static member that does not know its member id leaves by its instance id */
	TEXT_ELEMS(&ids);
	for (i = 0; i < n; i++)
	{
		LeavingMember *m = &st->members[i];
		const char *id = m->member_id;
		int32_t		len = m->member_id_len;

		if ((id == NULL || len == 0) && m->instance_id != NULL)
		{
			id = m->instance_id;
			len = m->instance_id_len;
		}
		if (!id_valid(group_id, group_id_len))
			m->error = KERR_INVALID_GROUP_ID;
		else if (!id_valid(id, len))
			m->error = KERR_UNKNOWN_MEMBER_ID;
		elems_text(&ids, m->error == KERR_NONE ? id : NULL, len);
	}
	if (!id_valid(group_id, group_id_len))
	{
		elems_free(&ids);
		leave_respond(st, KERR_INVALID_GROUP_ID);
		return;
	}
	pgp_init(&p);
	pgp_text(&p, group_id, group_id_len);
	pgp_elems(&p, &ids);
	elems_free(&ids);
	group_submit(&p, LEAVE_MEMBERS_SQL, leave_done, st);
	pgp_free(&p);
}

/* -------------------------------------------------------- OffsetCommit */

/* every offset in one transaction: the common case, one round trip */
static const char *const COMMIT_ALL_SQL =
"SELECT count(*)\n"
"  FROM unnest($2::text[], $3::int[], $4::bigint[], $5::text[])\n"
"       AS o(topic, partition, msg_offset, metadata)\n"
" CROSS JOIN LATERAL pgq_commit($1, o.topic, o.partition, o.msg_offset, $6, o.metadata)";

/*
 * After that failed: each offset on its own, for its own error; -1 for a
 * partition that does not exist (pgq_commit's 22023 would say the offset
 * is out of range).
 */
static const char *const COMMIT_ONE_SQL =
"SELECT CASE WHEN EXISTS (SELECT 1 FROM pgq_topics t\n"
"                          WHERE t.topic = $2 AND $3 >= 0 AND $3 < t.partitions)\n"
"            THEN (SELECT count(*) FROM pgq_commit($1, $2, $3, $4, $5, $6))\n"
"            ELSE -1 END";

static const char *const IS_MEMBER_SQL =
"SELECT EXISTS (SELECT 1 FROM pgq_members WHERE group_id = $1 AND member_id = $2)";

typedef struct OffsetEntry
{
	int32_t		topic;			/* its TopicEntries */
	int32_t		partition;
	int64_t		offset;
	const char *metadata;		/* into the request; NULL: none */
	int32_t		metadata_len;
	int16_t		error;
} OffsetEntry;

typedef struct TopicEntries
{
	const char *name;			/* into the request */
	int32_t		name_len;
	int32_t		first;			/* its entries */
	int32_t		count;
} TopicEntries;

typedef struct CommitState CommitState;

typedef struct CommitJob
{
	CommitState *st;
	int32_t		entry;			/* -1: the membership query */
} CommitJob;

struct CommitState
{
	Request    *req;
	const char *group_id;
	int32_t		group_id_len;
	const char *member_id;		/* NULL: a commit by a non-member */
	int32_t		member_id_len;
	int32_t		ntopics;
	int32_t		nentries;
	TopicEntries *topics;
	OffsetEntry *entries;
	CommitJob  *jobs;
	int32_t		pending;
	bool		is_member;
};

static void
commit_respond(CommitState *st)
{
	Request    *req = st->req;
	KWriter		w;
	int32_t		t;
	int32_t		i;

	kw_init(&w);
	write_throttle(&w, req, 3);
	kw_i32(&w, st->ntopics);
	for (t = 0; t < st->ntopics; t++)
	{
		TopicEntries *te = &st->topics[t];

		kw_string(&w, te->name ? te->name : "", te->name ? te->name_len : 0);
		kw_i32(&w, te->count);
		for (i = te->first; i < te->first + te->count; i++)
		{
			kw_i32(&w, st->entries[i].partition);
			kw_i16(&w, st->entries[i].error);
		}
	}
	respond_and_free(req, &w);
	free(st->topics);
	free(st->entries);
	free(st->jobs);
	free(st);
}

static void
commit_set_all(CommitState *st, int16_t error)
{
	int32_t		i;

	for (i = 0; i < st->nentries; i++)
		st->entries[i].error = error;
}

/*
 * A partition's error.  55000: the member does not own the partition (it
 * lost it in a rebalance: ILLEGAL_GENERATION, so the client rejoins), or
 * it is no member at all (it left or expired, or a non-member committed
 * while the group has members: UNKNOWN_MEMBER_ID, as Kafka answers a
 * commit of a member it does not know); which one, pgq_members tells.
 */
static int16_t
commit_error(const char *sqlstate, bool is_member)
{
	if (sqlstate == NULL)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (strcmp(sqlstate, "55000") == 0)
		return is_member ? KERR_ILLEGAL_GENERATION : KERR_UNKNOWN_MEMBER_ID;
	if (strcmp(sqlstate, "54000") == 0)
		return KERR_OFFSET_METADATA_TOO_LARGE;
	if (strcmp(sqlstate, "42501") == 0)
		return KERR_TOPIC_AUTHORIZATION_FAILED;
	if (strcmp(sqlstate, "42704") == 0)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	return group_error_for_sqlstate(sqlstate);
}

/*
 * A partition's error while the statements run: fenced (55000), which
 * becomes ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID once the membership
 * query is in too.
 */
#define FENCED_MARK		(-32768)

static void
commit_one_done(PGresult *res, const char *sqlstate, void *arg)
{
	CommitJob  *job = arg;
	CommitState *st = job->st;

	if (job->entry < 0)
		st->is_member = res != NULL && sqlstate == NULL && PQntuples(res) == 1 &&
			PQgetvalue(res, 0, 0)[0] == 't';
	else if (res != NULL && sqlstate == NULL)
	{
		if (PQntuples(res) != 1 || strtol(PQgetvalue(res, 0, 0), NULL, 10) < 0)
			st->entries[job->entry].error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
	else
	{
		OffsetEntry *e = &st->entries[job->entry];

		log_sql_error("OffsetCommit", res, sqlstate);
		/* fenced: which error depends on the membership, maybe not in yet */
		if (sqlstate != NULL && strcmp(sqlstate, "55000") == 0)
			e->error = FENCED_MARK;
		else
			e->error = commit_error(sqlstate, false);
	}
	if (--st->pending > 0)
		return;

	{
		int32_t		i;

		for (i = 0; i < st->nentries; i++)
			if (st->entries[i].error == FENCED_MARK)
				st->entries[i].error = commit_error("55000", st->is_member);
	}
	commit_respond(st);
}

static void
commit_all_done(PGresult *res, const char *sqlstate, void *arg)
{
	CommitState *st = arg;
	int32_t		i;

	if (res != NULL && sqlstate == NULL)
	{
		commit_respond(st);
		return;
	}
	if (res == NULL)
	{
		/* no Postgres: each partition would fail alike */
		log_sql_error("OffsetCommit", res, sqlstate);
		commit_set_all(st, group_error_for_sqlstate(NULL));
		commit_respond(st);
		return;
	}

	st->jobs = calloc((size_t) st->nentries + 1, sizeof(CommitJob));
	if (st->jobs == NULL)
	{
		commit_set_all(st, commit_error(sqlstate, true));
		commit_respond(st);
		return;
	}

	/*
	 * Count the jobs before submitting any: a callback may come at once.
	 * The entries refused before the statement were not in it.
	 */
	st->pending = st->member_id != NULL ? 1 : 0;
	for (i = 0; i < st->nentries; i++)
		if (st->entries[i].error == KERR_NONE)
			st->pending++;
	if (st->member_id != NULL)
	{
		PgParams	p;

		st->jobs[st->nentries].st = st;
		st->jobs[st->nentries].entry = -1;
		pgp_init(&p);
		pgp_text(&p, st->group_id, st->group_id_len);
		pgp_text(&p, st->member_id, st->member_id_len);
		group_submit(&p, IS_MEMBER_SQL, commit_one_done, &st->jobs[st->nentries]);
		pgp_free(&p);
	}
	for (i = 0; i < st->nentries; i++)
	{
		OffsetEntry *e = &st->entries[i];
		TopicEntries *te = &st->topics[e->topic];
		PgParams	p;

		if (e->error != KERR_NONE)
			continue;
		st->jobs[i].st = st;
		st->jobs[i].entry = i;
		pgp_init(&p);
		pgp_text(&p, st->group_id, st->group_id_len);
		pgp_text(&p, te->name, te->name_len);
		pgp_int4(&p, e->partition);
		pgp_int8(&p, e->offset);
		pgp_text(&p, st->member_id, st->member_id_len);
		pgp_text(&p, e->metadata, e->metadata_len);
		group_submit(&p, COMMIT_ONE_SQL, commit_one_done, &st->jobs[i]);
		pgp_free(&p);
	}
}

/*
 * Reads OffsetCommit's topics twice: once to count and check them, then
 * into the arrays; returns false if the request is malformed.
 */
static bool
commit_parse_topics(KReader *r, int16_t version, CommitState *st)
{
	size_t		min_partition = 4 + 8 + (version >= 6 ? 4 : 0) + MIN_STRING_SIZE;
	KReader		pass = *r;
	int32_t		ntopics;
	int32_t		nentries = 0;
	int32_t		t;
	int32_t		i;

	ntopics = kr_array_len(&pass, MIN_STRING_SIZE + MIN_ARRAY_SIZE);
	for (t = 0; t < ntopics && !pass.err; t++)
	{
		const char *name;
		int32_t		name_len;
		int32_t		n;

		kr_string(&pass, &name, &name_len);
		n = kr_array_len(&pass, min_partition);
		for (i = 0; i < n && !pass.err; i++)
		{
			const char *md;
			int32_t		md_len;

			(void) kr_i32(&pass);
			(void) kr_i64(&pass);
			if (version >= 6)
				(void) kr_i32(&pass);
			kr_string(&pass, &md, &md_len);
		}
		if (n > 0)
			nentries += n;
	}
	if (pass.err || ntopics < 0)
		return false;

	st->ntopics = ntopics;
	st->nentries = nentries;
	st->topics = calloc(ntopics > 0 ? ntopics : 1, sizeof(TopicEntries));
	st->entries = calloc(nentries > 0 ? nentries : 1, sizeof(OffsetEntry));
	if (st->topics == NULL || st->entries == NULL)
		return false;

	(void) kr_array_len(r, MIN_STRING_SIZE + MIN_ARRAY_SIZE);
	nentries = 0;
	for (t = 0; t < ntopics; t++)
	{
		TopicEntries *te = &st->topics[t];
		int32_t		n;

		kr_string(r, &te->name, &te->name_len);
		n = kr_array_len(r, min_partition);
		te->first = nentries;
		te->count = n > 0 ? n : 0;
		for (i = 0; i < te->count; i++)
		{
			OffsetEntry *e = &st->entries[nentries++];

			e->topic = t;
			e->partition = kr_i32(r);
			e->offset = kr_i64(r);
			if (version >= 6)
				(void) kr_i32(r);	/* the leader epoch: one epoch here */
			kr_string(r, &e->metadata, &e->metadata_len);
			/* a null topic name is no topic */
			e->error = te->name == NULL ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_NONE;
		}
	}
	return !r->err;
}

void
api_offset_commit(Request *req)
{
	KReader    *r = &req->body;
	int16_t		version = req->api_version;
	CommitState *st;
	int32_t		generation;
	const char *member;
	int32_t		member_len;
	const char *instance;
	int32_t		instance_len;
	Elems		topics;
	Elems		partitions;
	Elems		offsets;
	Elems		metadata;
	PgParams	p;
	int32_t		t;
	int32_t		i;
	int32_t		nsubmitted = 0;

	st = calloc(1, sizeof(CommitState));
	if (st == NULL)
	{
		request_close(req, "out of memory");
		return;
	}
	st->req = req;
	kr_string(r, &st->group_id, &st->group_id_len);
	generation = kr_i32(r);
	kr_string(r, &member, &member_len);
	if (version >= 7)
		kr_string(r, &instance, &instance_len);
	if (version <= 4)
		(void) kr_i64(r);		/* retention time: offsets are kept while the topic is */
	if (r->err || !commit_parse_topics(r, version, st))
	{
		free(st->topics);
		free(st->entries);
		free(st);
		request_close(req, "malformed OffsetCommit request");
		return;
	}
	req->state = st;

	/*
	 * Generation -1 without a member id is a client that assigns its own
	 * partitions: pgqueue takes its commit while the group has no live
	 * member on the topic.  Any other commit names a member.
	 */
	if (!id_valid(st->group_id, st->group_id_len))
		commit_set_all(st, KERR_INVALID_GROUP_ID);
	else if (member != NULL && member_len > 0)
	{
		if (!id_valid(member, member_len))
			commit_set_all(st, KERR_UNKNOWN_MEMBER_ID);
		st->member_id = member;
		st->member_id_len = member_len;
	}
	else if (generation != -1)
		commit_set_all(st, KERR_UNKNOWN_MEMBER_ID);

	TEXT_ELEMS(&topics);
	INT4_ELEMS(&partitions);
	INT8_ELEMS(&offsets);
	TEXT_ELEMS(&metadata);
	for (t = 0; t < st->ntopics; t++)
	{
		TopicEntries *te = &st->topics[t];

		for (i = te->first; i < te->first + te->count; i++)
		{
			OffsetEntry *e = &st->entries[i];

			if (e->error != KERR_NONE)
				continue;
			elems_text(&topics, te->name, te->name_len);
			elems_int4(&partitions, e->partition);
			elems_int8(&offsets, e->offset);
			elems_text(&metadata, e->metadata, e->metadata_len);
			nsubmitted++;
		}
	}
	if (nsubmitted == 0)
	{
		elems_free(&topics);
		elems_free(&partitions);
		elems_free(&offsets);
		elems_free(&metadata);
		commit_respond(st);
		return;
	}

	pgp_init(&p);
	pgp_text(&p, st->group_id, st->group_id_len);
	pgp_elems(&p, &topics);
	elems_free(&topics);
	pgp_elems(&p, &partitions);
	elems_free(&partitions);
	pgp_elems(&p, &offsets);
	elems_free(&offsets);
	pgp_elems(&p, &metadata);
	elems_free(&metadata);
	pgp_text(&p, st->member_id, st->member_id_len);
	group_submit(&p, COMMIT_ALL_SQL, commit_all_done, st);
	pgp_free(&p);
}

/* --------------------------------------------------------- OffsetFetch */

/*
 * The committed offset of each (topic, partition) asked for, in the order
 * asked: -1 and no metadata where nothing is committed, or the topic or
 * partition does not exist (as Kafka's group coordinator, which does not
 * look at topics, answers).
 */
static const char *const FETCH_OFFSETS_SQL =
"WITH req AS (SELECT r.topic, r.partition, r.n\n"
"               FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS r(topic, partition, n)),\n"
"     known AS (SELECT t.topic, t.partitions FROM pgq_topics t\n"
"                WHERE t.topic IN (SELECT req.topic FROM req)),\n"
"     got AS (SELECT k.topic, c.partition, c.msg_offset, c.metadata\n"
"               FROM known k\n"
"              CROSS JOIN LATERAL pgq_committed_offsets($1, k.topic,\n"
"                    ARRAY(SELECT DISTINCT req.partition FROM req\n"
"                           WHERE req.topic = k.topic AND req.partition >= 0\n"
"                             AND req.partition < k.partitions)) AS c)\n"
"SELECT coalesce(g.msg_offset, -1), g.metadata\n"
"  FROM req LEFT JOIN got g ON g.topic = req.topic AND g.partition = req.partition\n"
" ORDER BY req.n";

/* every committed offset of the group (a request for all topics, v2+) */
static const char *const FETCH_ALL_OFFSETS_SQL =
"SELECT topic, partition, committed_offset, metadata\n"
"  FROM pgq_consumer_lag\n"
" WHERE group_id = $1 AND committed_offset IS NOT NULL\n"
" ORDER BY topic COLLATE \"C\", partition";

typedef struct FetchOffsetsState
{
	Request    *req;
	bool		all;			/* every topic of the group */
	int32_t		ntopics;
	int32_t		nentries;
	TopicEntries *topics;
	int32_t    *partitions;
} FetchOffsetsState;

static void
fetch_offsets_free(FetchOffsetsState *st)
{
	free(st->topics);
	free(st->partitions);
	free(st);
}

static void
write_offset_partition(KWriter *w, Request *req, int32_t partition, int64_t offset,
					   const char *metadata, int32_t metadata_len, int16_t error)
{
	kw_i32(w, partition);
	kw_i64(w, offset);
	if (req->api_version >= 5)
		kw_i32(w, -1);			/* leader epoch */
	kw_string(w, metadata, metadata_len);
	kw_i16(w, error);
}

/* the answer to the topics asked for; res NULL: every one failed with error */
static void
fetch_offsets_respond(FetchOffsetsState *st, PGresult *res, int16_t error)
{
	Request    *req = st->req;
	KWriter		w;
	int32_t		t;
	int32_t		i;

	kw_init(&w);
	write_throttle(&w, req, 3);
	kw_i32(&w, st->ntopics);
	for (t = 0; t < st->ntopics; t++)
	{
		TopicEntries *te = &st->topics[t];

		kw_string(&w, te->name ? te->name : "", te->name ? te->name_len : 0);
		kw_i32(&w, te->count);
		for (i = te->first; i < te->first + te->count; i++)
		{
			if (res == NULL)
				write_offset_partition(&w, req, st->partitions[i], -1, NULL, -1, error);
			else
				write_offset_partition(&w, req, st->partitions[i],
									   strtoll(PQgetvalue(res, i, 0), NULL, 10),
									   PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
									   PQgetlength(res, i, 1), KERR_NONE);
		}
	}
	if (req->api_version >= 2)
		kw_i16(&w, error);
	respond_and_free(req, &w);
	fetch_offsets_free(st);
}

/* the answer for all topics: rows (topic, partition, offset, metadata) by topic */
static void
fetch_all_offsets_respond(FetchOffsetsState *st, PGresult *res, int16_t error)
{
	Request    *req = st->req;
	KWriter		w;
	int			nrows = res ? PQntuples(res) : 0;
	int			row = 0;
	int32_t		ntopics = 0;
	size_t		ntopics_at;

	kw_init(&w);
	write_throttle(&w, req, 3);
	ntopics_at = kw_reserve_i32(&w);
	while (row < nrows)
	{
		const char *topic = PQgetvalue(res, row, 0);
		int			end = row;

		while (end < nrows && strcmp(PQgetvalue(res, end, 0), topic) == 0)
			end++;
		kw_string(&w, topic, PQgetlength(res, row, 0));
		kw_i32(&w, end - row);
		for (; row < end; row++)
			write_offset_partition(&w, req, (int32_t) strtol(PQgetvalue(res, row, 1), NULL, 10),
								   strtoll(PQgetvalue(res, row, 2), NULL, 10),
								   PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3),
								   PQgetlength(res, row, 3), KERR_NONE);
		ntopics++;
	}
	kw_patch_i32(&w, ntopics_at, ntopics);
	kw_i16(&w, error);
	respond_and_free(req, &w);
	fetch_offsets_free(st);
}

static void
fetch_offsets_done(PGresult *res, const char *sqlstate, void *arg)
{
	FetchOffsetsState *st = arg;
	int16_t		error = KERR_NONE;

	if (res == NULL || sqlstate != NULL)
	{
		log_sql_error("OffsetFetch", res, sqlstate);
		error = group_error_for_sqlstate(sqlstate);
		res = NULL;
	}
	else if (!st->all && PQntuples(res) != st->nentries)
	{
		gw_log("OffsetFetch: %d rows for %d partitions", PQntuples(res), (int) st->nentries);
		error = KERR_UNKNOWN_SERVER_ERROR;
		res = NULL;
	}
	if (st->all)
		fetch_all_offsets_respond(st, res, error);
	else
		fetch_offsets_respond(st, res, error);
}

void
api_offset_fetch(Request *req)
{
	KReader    *r = &req->body;
	const char *group_id;
	int32_t		group_id_len;
	FetchOffsetsState *st;
	KReader		pass;
	int32_t		ntopics;
	int32_t		nentries = 0;
	int32_t		t;
	int32_t		i;
	PgParams	p;

	kr_string(r, &group_id, &group_id_len);
	pass = *r;
	ntopics = kr_array_len(&pass, MIN_STRING_SIZE + MIN_ARRAY_SIZE);
	for (t = 0; t < ntopics && !pass.err; t++)
	{
		const char *name;
		int32_t		name_len;
		int32_t		n;

		kr_string(&pass, &name, &name_len);
		n = kr_array_len(&pass, 4);
		for (i = 0; i < n && !pass.err; i++)
			(void) kr_i32(&pass);
		if (n > 0)
			nentries += n;
	}
	st = calloc(1, sizeof(FetchOffsetsState));
	if (r->err || pass.err || st == NULL)
	{
		free(st);
		request_close(req, "malformed OffsetFetch request");
		return;
	}
	st->req = req;
	/* null topics (v2+): every topic the group committed offsets of */
	st->all = ntopics < 0 && req->api_version >= 2;
	st->ntopics = ntopics > 0 ? ntopics : 0;
	st->nentries = nentries;
	st->topics = calloc(st->ntopics > 0 ? st->ntopics : 1, sizeof(TopicEntries));
	st->partitions = calloc(nentries > 0 ? nentries : 1, sizeof(int32_t));
	if (st->topics == NULL || st->partitions == NULL)
	{
		fetch_offsets_free(st);
		request_close(req, "out of memory");
		return;
	}
	(void) kr_array_len(r, MIN_STRING_SIZE + MIN_ARRAY_SIZE);
	nentries = 0;
	for (t = 0; t < st->ntopics; t++)
	{
		TopicEntries *te = &st->topics[t];
		int32_t		n;

		kr_string(r, &te->name, &te->name_len);
		n = kr_array_len(r, 4);
		te->first = nentries;
		te->count = n > 0 ? n : 0;
		for (i = 0; i < te->count; i++)
			st->partitions[nentries++] = kr_i32(r);
	}
	req->state = st;

	if (!id_valid(group_id, group_id_len))
	{
		if (st->all)
			fetch_all_offsets_respond(st, NULL, KERR_INVALID_GROUP_ID);
		else
			fetch_offsets_respond(st, NULL, KERR_INVALID_GROUP_ID);
		return;
	}

	pgp_init(&p);
	pgp_text(&p, group_id, group_id_len);
	if (st->all)
		group_submit(&p, FETCH_ALL_OFFSETS_SQL, fetch_offsets_done, st);
	else if (st->nentries == 0)
		fetch_offsets_respond(st, NULL, KERR_NONE);
	else
	{
		Elems		topics;
		Elems		partitions;

		TEXT_ELEMS(&topics);
		INT4_ELEMS(&partitions);
		for (t = 0; t < st->ntopics; t++)
			for (i = st->topics[t].first; i < st->topics[t].first + st->topics[t].count; i++)
			{
				elems_text(&topics, st->topics[t].name, st->topics[t].name_len);
				elems_int4(&partitions, st->partitions[i]);
			}
		pgp_elems(&p, &topics);
	elems_free(&topics);
		pgp_elems(&p, &partitions);
	elems_free(&partitions);
		group_submit(&p, FETCH_OFFSETS_SQL, fetch_offsets_done, st);
	}
	pgp_free(&p);
}

/* ------------------------------------------ DescribeGroups, ListGroups */

/*
 * Each group asked for, in order, with one row per (member, topic): a
 * member's rows are together, and so are its group's.
 */
static const char *const DESCRIBE_GROUPS_SQL =
"SELECT g.n, g.id IN (SELECT x.group_id FROM pgq_groups x) AS known,\n"
"       m.member_id, m.topic, m.partitions::text\n"
"  FROM unnest($1::text[]) WITH ORDINALITY AS g(id, n)\n"
"  LEFT JOIN pgq_members m ON m.group_id = g.id\n"
" ORDER BY g.n, m.member_id COLLATE \"C\", m.topic COLLATE \"C\"";

static const char *const LIST_GROUPS_SQL =
"SELECT group_id FROM pgq_groups ORDER BY group_id COLLATE \"C\"";

typedef struct DescribeState
{
	Request    *req;
	int32_t		n;
	const char **ids;			/* into the request */
	int32_t    *id_lens;
} DescribeState;

static void
describe_state_free(DescribeState *st)
{
	free(st->ids);
	free(st->id_lens);
	free(st);
}

/* one group's members from its rows [first, end) */
static void
describe_write_members(KWriter *w, Request *req, PGresult *res, int first, int end)
{
	size_t		count_at = kw_reserve_i32(w);
	int32_t		nmembers = 0;
	int			row = first;

	while (row < end)
	{
		const char *member = PQgetvalue(res, row, 2);
		int			mend = row;

		while (mend < end && strcmp(PQgetvalue(res, mend, 2), member) == 0)
			mend++;
		kw_string(w, member, PQgetlength(res, row, 2));
		if (req->api_version >= 4)
			kw_string(w, NULL, -1);	/* group instance id */
		kw_string(w, "", 0);	/* client id: not kept */
		kw_string(w, "", 0);	/* client host: not kept */
		write_subscription(w, res, row, mend, 3);
		write_assignment(w, res, row, mend, 3, 4);
		nmembers++;
		row = mend;
	}
	kw_patch_i32(w, count_at, nmembers);
}

static void
describe_done(PGresult *res, const char *sqlstate, void *arg)
{
	DescribeState *st = arg;
	Request    *req = st->req;
	int16_t		error = KERR_NONE;
	KWriter		w;
	int			nrows;
	int			row = 0;
	int32_t		g;

	if (res == NULL || sqlstate != NULL)
	{
		log_sql_error("DescribeGroups", res, sqlstate);
		error = group_error_for_sqlstate(sqlstate);
		res = NULL;
	}
	nrows = res ? PQntuples(res) : 0;

	kw_init(&w);
	write_throttle(&w, req, 1);
	kw_i32(&w, st->n);
	for (g = 0; g < st->n; g++)
	{
		int			first = row;
		int			end;
		bool		known = false;
		bool		members = false;
		const char *state;

		while (row < nrows && strtol(PQgetvalue(res, row, 0), NULL, 10) == g + 1)
		{
			known = PQgetvalue(res, row, 1)[0] == 't';
			if (!PQgetisnull(res, row, 2))
				members = true;
			row++;
		}
		end = row;
		state = members ? "Stable" : known ? "Empty" : "Dead";

		kw_i16(&w, error);
		kw_string(&w, st->ids[g] ? st->ids[g] : "", st->ids[g] ? st->id_lens[g] : 0);
		kw_string(&w, error == KERR_NONE ? state : "", -1);
		kw_string(&w, known || members ? CONSUMER_PROTOCOL_TYPE : "", -1);
		kw_string(&w, members ? SERVER_PROTOCOL_NAME : "", -1);
		if (members)
			describe_write_members(&w, req, res, first, end);
		else
			kw_i32(&w, 0);
		if (req->api_version >= 3)
			kw_i32(&w, INT32_MIN);	/* authorized operations: not asked or not known */
	}
	respond_and_free(req, &w);
	describe_state_free(st);
}

void
api_describe_groups(Request *req)
{
	KReader    *r = &req->body;
	DescribeState *st;
	int32_t		n;
	int32_t		i;
	Elems		ids;
	PgParams	p;

	n = kr_array_len(r, MIN_STRING_SIZE);
	st = calloc(1, sizeof(DescribeState));
	if (r->err || n < 0 || st == NULL ||
		(st->ids = calloc(n > 0 ? n : 1, sizeof(char *))) == NULL ||
		(st->id_lens = calloc(n > 0 ? n : 1, sizeof(int32_t))) == NULL)
	{
		if (st != NULL)
			describe_state_free(st);
		request_close(req, "malformed DescribeGroups request");
		return;
	}
	st->req = req;
	st->n = n;
	TEXT_ELEMS(&ids);
	for (i = 0; i < n; i++)
	{
		kr_string(r, &st->ids[i], &st->id_lens[i]);
		elems_text(&ids, st->ids[i], st->id_lens[i]);
	}
	if (req->api_version >= 3)
		(void) kr_i8(r);		/* include authorized operations: none known */
	if (r->err)
	{
		elems_free(&ids);
		describe_state_free(st);
		request_close(req, "malformed DescribeGroups request");
		return;
	}
	req->state = st;
	pgp_init(&p);
	pgp_elems(&p, &ids);
	elems_free(&ids);
	group_submit(&p, DESCRIBE_GROUPS_SQL, describe_done, st);
	pgp_free(&p);
}

static void
list_groups_done(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	KWriter		w;
	int16_t		error = KERR_NONE;
	int			nrows = 0;
	int			row;

	if (res == NULL || sqlstate != NULL)
	{
		log_sql_error("ListGroups", res, sqlstate);
		error = group_error_for_sqlstate(sqlstate);
	}
	else
		nrows = PQntuples(res);

	kw_init(&w);
	write_throttle(&w, req, 1);
	kw_i16(&w, error);
	kw_i32(&w, nrows);
	for (row = 0; row < nrows; row++)
	{
		kw_string(&w, PQgetvalue(res, row, 0), PQgetlength(res, row, 0));
		kw_string(&w, CONSUMER_PROTOCOL_TYPE, -1);
	}
	respond_and_free(req, &w);
}

void
api_list_groups(Request *req)
{
	/* v0-2 have an empty body (v4 added a filter by state) */
	pg_submit(POOL_DEFAULT, LIST_GROUPS_SQL, 0, NULL, NULL, NULL, NULL, false,
			  list_groups_done, req);
}
