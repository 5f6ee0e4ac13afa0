/*-------------------------------------------------------------------------
 *
 * auth.h
 *	  Authentication of Kafka clients as Postgres roles: the SASL APIs
 *	  (auth.c) with the SCRAM-SHA-256 and PLAIN checks (scram.c), and what
 *	  server.c offers them (a connection's SASL state and its role).
 *
 *	  A connection of a --sasl gateway is unauthenticated until a
 *	  SaslAuthenticate succeeds; until then server.c serves it only
 *	  ApiVersions, SaslHandshake and SaslAuthenticate.  From then on its
 *	  role is the role it authenticated as, and every statement of its
 *	  requests runs as that role (gateway.h, pg_enter_role).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_AUTH_H
#define PGQK_AUTH_H

#include "gateway.h"

#define API_SASL_HANDSHAKE		17
#define API_SASL_AUTHENTICATE	36

/* auth.c: the handlers, and freeing a connection's SASL state */
extern void api_sasl_handshake(Request *req);
extern void api_sasl_authenticate(Request *req);
extern void auth_state_free(void *state);

/* server.c, for auth.c */
extern void *conn_sasl_state(struct Conn *conn);
extern void conn_set_sasl_state(struct Conn *conn, void *state);
extern bool conn_authenticated(struct Conn *conn);
/* the connection authenticated as role (copied); false: out of memory */
extern bool conn_set_role(struct Conn *conn, const char *role);
extern const char *conn_peer(struct Conn *conn);
/* request_respond, then the connection closes once that is written */
extern void request_respond_close(Request *req, KWriter *body, const char *why);

#endif							/* PGQK_AUTH_H */
