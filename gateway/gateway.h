/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  pgqueue-kafka: the interfaces between the gateway's parts.
 *
 *	  server.c    the event loop, client connections, framing, request
 *	              headers, dispatch to the API handlers, responses in order
 *	  pgpool.c    libpq connections to pgqueue, non-blocking, and the jobs
 *	              (SQL statements) queued for them
 *	  api_*.c     one file per group of Kafka APIs: each handler reads its
 *	              request, runs SQL through the pool, writes its response
 *	  records.c   Kafka's RecordBatch v2: decoding (with CRC-32C and the
 *	              four codecs, compress.c) and encoding
 *	  kbuf.c      the protocol's primitives
 *
 * Every piece of state lives in pgqueue; the gateway keeps only what a
 * request in flight needs, so several gateways can serve one database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_GATEWAY_H
#define PGQK_GATEWAY_H

#include <libpq-fe.h>

#include "kbuf.h"

/* ---------------------------------------------------------------- errors */

/* Kafka's error codes that the gateway answers with */
#define KERR_NONE							0
#define KERR_OFFSET_OUT_OF_RANGE			1
#define KERR_CORRUPT_MESSAGE				2
#define KERR_UNKNOWN_TOPIC_OR_PARTITION		3
#define KERR_NOT_LEADER_OR_FOLLOWER			6
#define KERR_REQUEST_TIMED_OUT				7
#define KERR_MESSAGE_TOO_LARGE				10
#define KERR_COORDINATOR_NOT_AVAILABLE		15
#define KERR_NOT_COORDINATOR				16
#define KERR_INVALID_TOPIC_EXCEPTION		17
#define KERR_RECORD_LIST_TOO_LARGE			18
#define KERR_ILLEGAL_GENERATION				22
#define KERR_INCONSISTENT_GROUP_PROTOCOL	23
#define KERR_INVALID_GROUP_ID				24
#define KERR_UNKNOWN_MEMBER_ID				25
#define KERR_INVALID_SESSION_TIMEOUT		26
#define KERR_REBALANCE_IN_PROGRESS			27
#define KERR_TOPIC_AUTHORIZATION_FAILED		29
#define KERR_GROUP_AUTHORIZATION_FAILED		30
#define KERR_UNSUPPORTED_SASL_MECHANISM		33
#define KERR_ILLEGAL_SASL_STATE				34
#define KERR_UNSUPPORTED_VERSION			35
#define KERR_INVALID_REQUEST				42
#define KERR_OUT_OF_ORDER_SEQUENCE_NUMBER	45
#define KERR_DUPLICATE_SEQUENCE_NUMBER		46
#define KERR_INVALID_PRODUCER_EPOCH			47
#define KERR_UNSUPPORTED_COMPRESSION_TYPE	76
#define KERR_SASL_AUTHENTICATION_FAILED		58
#define KERR_UNKNOWN_PRODUCER_ID			59
#define KERR_MEMBER_ID_REQUIRED				79
#define KERR_INVALID_RECORD					87
#define KERR_UNKNOWN_SERVER_ERROR			(-1)

/*
 * The Kafka error for a failed statement: by its SQLSTATE (NULL: the
 * connection to Postgres was lost, or none was available), e.g. 42704 ->
 * UNKNOWN_TOPIC_OR_PARTITION, 42501 -> TOPIC_AUTHORIZATION_FAILED, 54000 ->
 * MESSAGE_TOO_LARGE, PQ001-PQ004 -> the producer errors, 25006 or a lost
 * connection -> NOT_LEADER_OR_FOLLOWER (retriable: the client refreshes its
 * metadata and retries, which follows a failover).
 */
extern int16_t kafka_error_for_sqlstate(const char *sqlstate);

/* --------------------------------------------------------------- logging */

extern void gw_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* -------------------------------------------------------------- requests */

typedef struct Request Request;

struct Request
{
	struct Conn *conn;			/* the client connection (server.c) */
	int16_t		api_key;
	int16_t		api_version;
	int32_t		correlation_id;
	const char *client_id;		/* NUL-terminated copy, or NULL */
	bool		flexible;		/* request header v2 / response header v1 */
	KReader		body;			/* the request after its header */
	void	   *state;			/* the handler's, while its SQL runs */
};

/*
 * An API handler reads req->body and, at once or from a pool callback,
 * ends the request with exactly one of:
 *   request_respond       the response body (the header is added; the
 *                         writer is the caller's to free)
 *   request_no_response   nothing is sent (Produce with acks=0)
 *   request_close         the request is malformed: the connection closes
 * The connection reads its next request only after that (responses go
 * out in request order).
 */
typedef void (*ApiHandler) (Request *req);

extern void request_respond(Request *req, KWriter *body);
extern void request_no_response(Request *req);
extern void request_close(Request *req, const char *why);

/*
 * A handler may take its connection's next request along with its own,
 * to serve them together (Produce appends a producer's queued requests to
 * a partition in one statement): the request that follows req, if it has
 * fully arrived, is of the same API and version, and accept(next, arg)
 * says yes (next->body may be read; it is valid only during the call).
 * NULL if not.  A taken request is ended like any other, after req and
 * in the order taken, so that responses keep their order; the connection
 * reads on once req and all it took have ended.
 */
extern Request *request_take_next(Request *req,
								  bool (*accept) (const Request *next, void *arg),
								  void *arg);

/* The APIs and the versions the gateway advertises (api.c). */
typedef struct ApiSpec
{
	int16_t		key;
	const char *name;
	int16_t		min_version;	/* advertised (Kafka's clients need 0 for some) */
	int16_t		max_version;
	int16_t		min_served;		/* older advertised versions: UNSUPPORTED_VERSION */
	int16_t		first_flexible; /* -1: none of ours */
	ApiHandler	handler;
} ApiSpec;

extern const ApiSpec *api_lookup(int16_t key);
extern const ApiSpec *api_all(int *n);

/* -------------------------------------------------------------- the pool */

typedef enum PgPoolKind
{
	POOL_DEFAULT,				/* the server's synchronous_commit (acks=all) */
	POOL_LOCAL,					/* synchronous_commit = local (acks 0 and 1) */
	POOL_WAIT					/* long polls (pgq_wait, reads that wait): may block for seconds */
} PgPoolKind;

/*
 * Called once the statement ended: res is its result (NULL if it could not
 * run: no connection, or the connection was lost; sqlstate is then NULL),
 * sqlstate its error's SQLSTATE or NULL if it succeeded.  res is freed
 * after the callback returns.
 */
typedef void (*PgCallback) (PGresult *res, const char *sqlstate, void *arg);

/*
 * Queues one statement with parameters (as PQsendQueryParams: types,
 * values, lengths, formats may be NULL) on a connection of the pool; the
 * values are copied.  result_binary asks for binary results.
 */
extern void pg_submit(PgPoolKind pool, const char *sql, int nparams, const Oid *types,
					  const char *const *values, const int *lengths, const int *formats,
					  bool result_binary, PgCallback cb, void *arg);

/*
 * The role the statements submitted from here on run as (pgpool.c does a
 * SET ROLE when it differs from its connection's), NULL: the gateway's
 * own.  server.c enters the client's authenticated role around a handler
 * call; a statement's callback runs in its statement's role, so a handler
 * that submits from its callbacks needs nothing more.  pg_enter_role
 * returns the context it replaced, for pg_leave_role.
 */
typedef struct PgRoleContext
{
	const char *role;
	bool		set;
} PgRoleContext;

extern PgRoleContext pg_enter_role(const char *role);
extern void pg_leave_role(PgRoleContext prev);

/* The role statements submitted now run as (NULL: the gateway's own). */
extern const char *pg_current_role(void);

/* Whether two roles are the same (NULL: the gateway's own). */
extern bool pg_same_role(const char *a, const char *b);

/*
 * Cancels the running statement of pool whose callback argument is arg,
 * with pg_cancel_backend from a connection of the default pool: it ends
 * with SQLSTATE 57014 (or as it would have, if it ended first).  False if
 * no such statement is running (queued ones are not cancelled).
 */
extern bool pg_cancel(PgPoolKind pool, void *arg);

/* ------------------------------------------------------------- settings */

typedef struct GatewayConfig
{
	const char *listen_host;
	int			listen_port;
	const char *advertised_host;	/* Metadata's broker: default the listen address */
	int			advertised_port;
	int			node_id;
	const char *conninfo;
	int			pool_size;			/* per pool kind */
	int			max_request_size;	/* bytes of a request frame */
	bool		auto_create_topics;
	int			default_partitions; /* of auto-created topics */
	bool		sasl;				/* clients authenticate (auth.c) as Postgres roles */
	const char *tls_cert;			/* PEM files: the listener speaks TLS */
	const char *tls_key;
} GatewayConfig;

extern GatewayConfig gw_config;
extern struct event_base *gw_base;

#endif							/* PGQK_GATEWAY_H */
