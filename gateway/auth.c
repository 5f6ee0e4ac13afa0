/*-------------------------------------------------------------------------
 *
 * auth.c
 *	  SaslHandshake and SaslAuthenticate: Kafka clients authenticate as
 *	  Postgres roles, with the roles' own passwords (docs/gateway.md,
 *	  "Authentication and TLS").
 *
 *	  A client sends SaslHandshake v1 with its mechanism, then its SASL
 *	  messages in SaslAuthenticate requests: PLAIN in one (authzid, user
 *	  and password), SCRAM-SHA-256 in two (client-first, client-final).
 *	  The password is checked against the role's verifier, which the
 *	  gateway reads with pgq_gateway_auth(role) in its own role (the
 *	  connection has none yet): pgbouncer's auth_query, where the function
 *	  decides which roles may log in through the gateway.  A failure
 *	  answers SASL_AUTHENTICATION_FAILED with a message that does not tell
 *	  whether the role exists, logs one line with the reason (never the
 *	  password), and closes the connection.  A success gives the
 *	  connection its role (server.c), which its requests' statements then
 *	  run as.
 *
 *	  SaslHandshake v0 (the SASL messages then travel without Kafka's
 *	  framing) is answered UNSUPPORTED_VERSION: every client that speaks
 *	  v1 uses it.  Re-authentication (KIP-368) is not offered: the session
 *	  lifetime answered is 0, and a second handshake closes the connection.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "auth.h"
#include "scram.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define AUTH_LOOKUP_SQL "SELECT pgq_gateway_auth($1)"

typedef enum AuthMechanism
{
	MECH_PLAIN,
	MECH_SCRAM_SHA_256
} AuthMechanism;

static const char *const mechanism_names[] = {"PLAIN", "SCRAM-SHA-256"};

typedef enum AuthStep
{
	STEP_FIRST,					/* waiting for the first SASL message */
	STEP_LOOKUP,				/* reading the role's verifier */
	STEP_SCRAM_FINAL,			/* SCRAM: waiting for client-final */
} AuthStep;

/* a connection's exchange in progress (conn_sasl_state) */
typedef struct AuthState
{
	AuthMechanism mechanism;
	AuthStep	step;
	char		user[SCRAM_NAME_MAX + 1];
	char	   *password;		/* PLAIN, while its verifier is read */
	const char *mock_reason;	/* SCRAM without a usable verifier: why */
	ScramExchange scram;
} AuthState;

void
auth_state_free(void *state)
{
	AuthState  *st = state;

	if (st == NULL)
		return;
	if (st->password)
	{
		OPENSSL_cleanse(st->password, strlen(st->password));
		free(st->password);
	}
	scram_exchange_free(&st->scram);
	free(st);
}

/* -------------------------------------------------------------- replies */

static void
write_authenticate_response(KWriter *w, int16_t version, int16_t error, const char *message,
							const char *bytes, int32_t len)
{
	kw_i16(w, error);
	if (version >= 2)
	{
		kw_compact_string(w, message, -1);
		kw_compact_string(w, bytes ? bytes : "", bytes ? len : 0);
	}
	else
	{
		kw_string(w, message, -1);
		kw_bytes(w, bytes ? bytes : "", bytes ? len : 0);
	}
	if (version >= 1)
		kw_i64(w, 0);			/* session_lifetime_ms: no re-authentication */
	if (version >= 2)
		kw_empty_tagged_fields(w);
}

/*
 * Ends a SaslAuthenticate with an error and closes the connection; logs
 * why (reason, for the log only: the client's message says less).
 */
static void
auth_fail(Request *req, AuthState *st, int16_t error, const char *message, const char *reason)
{
	KWriter		w;
	char		why[512];

	snprintf(why, sizeof(why), "authentication%s%s%s with %s failed: %s",
			 st && st->user[0] ? " of \"" : "", st && st->user[0] ? st->user : "",
			 st && st->user[0] ? "\"" : "",
			 st ? mechanism_names[st->mechanism] : "SASL", reason);
	kw_init(&w);
	write_authenticate_response(&w, req->api_version, error, message, NULL, 0);
	request_respond_close(req, &w, why);
	kw_free(&w);
}

static void
auth_denied(Request *req, AuthState *st, const char *reason)
{
	char		message[128];

	snprintf(message, sizeof(message),
			 "Authentication failed: invalid credentials with SASL mechanism %s",
			 mechanism_names[st->mechanism]);
	auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, message, reason);
}

/* The exchange succeeded: the connection is the user's role from now on. */
static void
auth_succeed(Request *req, AuthState *st, const char *bytes, int32_t len)
{
	struct Conn *conn = req->conn;
	KWriter		w;

	if (!conn_set_role(conn, st->user))
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "out of memory", "out of memory");
		return;
	}
	gw_log("connection from %s authenticated as \"%s\" with %s", conn_peer(conn), st->user,
		   mechanism_names[st->mechanism]);
	kw_init(&w);
	write_authenticate_response(&w, req->api_version, KERR_NONE, NULL, bytes, len);
	conn_set_sasl_state(conn, NULL);
	auth_state_free(st);
	request_respond(req, &w);
	kw_free(&w);
}

/* ------------------------------------------------------- SaslHandshake */

void
api_sasl_handshake(Request *req)
{
	const char *mechanism;
	int32_t		len;
	int16_t		error = KERR_NONE;
	const char *why = NULL;
	AuthState  *st = NULL;
	KWriter		w;
	int			i;

	if (!kr_string(&req->body, &mechanism, &len) || mechanism == NULL)
	{
		request_close(req, "malformed SaslHandshake");
		return;
	}
	if (conn_authenticated(req->conn) || conn_sasl_state(req->conn) != NULL)
	{
		error = KERR_ILLEGAL_SASL_STATE;
		why = "a second SaslHandshake (re-authentication is not supported)";
	}
	else if (req->api_version < 1)
	{
		error = KERR_UNSUPPORTED_VERSION;
		why = "SaslHandshake v0 (SASL without Kafka's framing) is not supported";
	}
	else
	{
		error = KERR_UNSUPPORTED_SASL_MECHANISM;
		for (i = 0; i < 2; i++)
		{
			if ((int) strlen(mechanism_names[i]) == len &&
				memcmp(mechanism, mechanism_names[i], len) == 0)
				error = KERR_NONE;
			if (error == KERR_NONE)
				break;
		}
		if (error != KERR_NONE)
			why = "unsupported SASL mechanism";
		else if ((st = calloc(1, sizeof(AuthState))) == NULL)
		{
			request_close(req, "out of memory");
			return;
		}
		else
			st->mechanism = (AuthMechanism) i;
	}

	kw_init(&w);
	kw_i16(&w, error);
	kw_i32(&w, 2);
	for (i = 0; i < 2; i++)
		kw_string(&w, mechanism_names[i], -1);
	if (error != KERR_NONE)
		request_respond_close(req, &w, why);
	else
	{
		conn_set_sasl_state(req->conn, st);
		request_respond(req, &w);
	}
	kw_free(&w);
}

/* ----------------------------------------------------- SaslAuthenticate */

typedef struct LookupJob
{
	Request    *req;
	AuthState  *st;
} LookupJob;

/*
 * Why a lookup gave no usable verifier, for the log: NULL if it gave one
 * (*secret then points into res).
 */
static const char *
lookup_result(PGresult *res, const char *sqlstate, const char **secret)
{
	*secret = NULL;
	if (res == NULL)
		return "could not read the password verifier: no connection to the database";
	if (sqlstate && strcmp(sqlstate, "42501") == 0)
		return "the gateway's role may not execute pgq_gateway_auth(text): GRANT EXECUTE on it to the role";
	if (sqlstate && strcmp(sqlstate, "42883") == 0)
		return "pgq_gateway_auth(text) does not exist: update the extension (ALTER EXTENSION pgqueue UPDATE)";
	if (sqlstate)
		return "could not read the password verifier: the query failed";
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return "no such role, or it may not log in through the gateway (it must be able to log in, "
			"not be a superuser, not have expired, and be granted to the gateway's role)";
	*secret = PQgetvalue(res, 0, 0);
	return NULL;
}

/* PLAIN: the password against the verifier (secret NULL: there is none, why) */
static void
plain_check(Request *req, AuthState *st, const char *secret, const char *why)
{
	ScramVerifier v;
	char	   *password = st->password;
	bool		ok = false;

	/* ending the request may free st: the password is taken out of it first */
	st->password = NULL;
	memset(&v, 0, sizeof(v));
	if (secret != NULL && scram_parse_verifier(secret, &v))
		ok = scram_check_password(&v, password);
	else if (secret != NULL && strncmp(secret, "md5", 3) == 0)
		ok = md5_check_password(secret, st->user, password);
	else if (secret != NULL)
		why = "the role's password is neither SCRAM-SHA-256 nor md5";
	OPENSSL_cleanse(&v, sizeof(v));
	OPENSSL_cleanse(password, strlen(password));
	free(password);
	if (ok)
		auth_succeed(req, st, NULL, 0);
	else
		auth_denied(req, st, why ? why : "wrong password");
}

/* SCRAM: answers server-first, with the verifier's salt or made-up ones */
static void
scram_first_reply(Request *req, AuthState *st, const char *secret)
{
	ScramVerifier v;
	bool		usable = secret && scram_parse_verifier(secret, &v);
	const char *server_first;
	KWriter		w;

	if (secret && !usable)
		st->mock_reason = strncmp(secret, "md5", 3) == 0
			? "the role has an md5 password, which cannot do SCRAM-SHA-256 (use PLAIN, or set the password again with password_encryption = scram-sha-256)"
			: "the role's password is not a SCRAM-SHA-256 verifier";
	server_first = scram_server_first(&st->scram, usable ? &v : NULL);
	OPENSSL_cleanse(&v, sizeof(v));
	if (server_first == NULL)
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "out of memory", "out of memory");
		return;
	}
	st->step = STEP_SCRAM_FINAL;
	kw_init(&w);
	write_authenticate_response(&w, req->api_version, KERR_NONE, NULL, server_first,
								(int32_t) strlen(server_first));
	request_respond(req, &w);
	kw_free(&w);
}

static void
lookup_done(PGresult *res, const char *sqlstate, void *arg)
{
	LookupJob  *job = arg;
	Request    *req = job->req;
	AuthState  *st = job->st;
	const char *secret;
	const char *why = lookup_result(res, sqlstate, &secret);

	free(job);
	if (st->mechanism == MECH_SCRAM_SHA_256 && (secret || res != NULL))
	{
		/* no verifier: go on, so that the client cannot tell, and fail at the end */
		if (why)
			st->mock_reason = why;
		scram_first_reply(req, st, secret);
		return;
	}
	plain_check(req, st, secret, why);
}

static void
lookup_submit(Request *req, AuthState *st)
{
	LookupJob  *job = calloc(1, sizeof(LookupJob));
	const char *values[1] = {st->user};

	if (job == NULL)
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "out of memory", "out of memory");
		return;
	}
	job->req = req;
	job->st = st;
	st->step = STEP_LOOKUP;
	pg_submit(POOL_DEFAULT, AUTH_LOOKUP_SQL, 1, NULL, values, NULL, NULL, false, lookup_done, job);
}

/* PLAIN: authzid NUL authcid NUL password (RFC 4616) */
static void
plain_start(Request *req, AuthState *st, const char *msg, int32_t len)
{
	const char *authzid = msg;
	const char *nul1 = memchr(msg, '\0', len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (nul1 + 1 - msg)) : NULL;
	const char *user;
	int32_t		user_len;
	int32_t		password_len;

	if (nul1 == NULL || nul2 == NULL || memchr(nul2 + 1, '\0', len - (nul2 + 1 - msg)) != NULL)
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "malformed PLAIN message",
				  "malformed PLAIN message");
		return;
	}
	user = nul1 + 1;
	user_len = (int32_t) (nul2 - user);
	password_len = (int32_t) (len - (nul2 + 1 - msg));
	if (user_len == 0 || user_len > SCRAM_NAME_MAX)
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "invalid user name",
				  "empty or too long user name");
		return;
	}
	memcpy(st->user, user, user_len);
	st->user[user_len] = '\0';
	if (nul1 != authzid && (nul1 - authzid != user_len || memcmp(authzid, user, user_len) != 0))
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED,
				  "the authorization identity must be empty or the user",
				  "the authorization identity is not the user");
		return;
	}
	st->password = strndup(nul2 + 1, password_len);
	if (st->password == NULL)
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, "out of memory", "out of memory");
		return;
	}
	lookup_submit(req, st);
}

static void
scram_start(Request *req, AuthState *st, const char *msg, int32_t len)
{
	const char *err;

	if (!scram_client_first(&st->scram, msg, len, &err))
	{
		auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, err, err);
		return;
	}
	memcpy(st->user, st->scram.user, sizeof(st->user));
	lookup_submit(req, st);
}

static void
scram_finish(Request *req, AuthState *st, const char *msg, int32_t len)
{
	const char *err;
	char	   *server_final;

	if (!scram_client_final(&st->scram, msg, len, &server_final, &err))
	{
		if (st->mock_reason)
			auth_denied(req, st, st->mock_reason);
		else if (strcmp(err, "wrong password") == 0)
			auth_denied(req, st, err);
		else
			auth_fail(req, st, KERR_SASL_AUTHENTICATION_FAILED, err, err);
		return;
	}
	auth_succeed(req, st, server_final, (int32_t) strlen(server_final));
	free(server_final);
}

void
api_sasl_authenticate(Request *req)
{
	AuthState  *st = conn_sasl_state(req->conn);
	const char *msg;
	int32_t		len;

	if (req->api_version >= 2)
	{
		kr_compact_string(&req->body, &msg, &len);
		kr_skip_tagged_fields(&req->body);
	}
	else
		kr_bytes(&req->body, (const uint8_t **) &msg, &len);
	if (req->body.err || msg == NULL)
	{
		request_close(req, "malformed SaslAuthenticate");
		return;
	}
	if (st == NULL || conn_authenticated(req->conn))
	{
		auth_fail(req, NULL, KERR_ILLEGAL_SASL_STATE,
				  "SaslAuthenticate without a SaslHandshake",
				  "SaslAuthenticate without a SaslHandshake");
		return;
	}
	if (st->mechanism == MECH_PLAIN && st->step == STEP_FIRST)
		plain_start(req, st, msg, len);
	else if (st->step == STEP_FIRST)
		scram_start(req, st, msg, len);
	else if (st->step == STEP_SCRAM_FINAL)
		scram_finish(req, st, msg, len);
	else
		auth_fail(req, st, KERR_ILLEGAL_SASL_STATE, "unexpected SaslAuthenticate",
				  "unexpected SaslAuthenticate");
}
