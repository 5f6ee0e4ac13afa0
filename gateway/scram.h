/*-------------------------------------------------------------------------
 *
 * scram.h
 *	  Checking passwords against Postgres's verifiers, and the server side
 *	  of SCRAM-SHA-256 (RFC 5802, RFC 7677), for auth.c (scram.c).
 *
 *	  A verifier is pg_authid.rolpassword: "SCRAM-SHA-256$<iterations>:
 *	  <salt>$<StoredKey>:<ServerKey>" (base64), or "md5" and the hex MD5 of
 *	  the password and the role name.  Neither holds the password: a SCRAM
 *	  verifier checks a PLAIN password (computing StoredKey from it) and a
 *	  SCRAM exchange; an md5 one checks a PLAIN password only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_SCRAM_H
#define PGQK_SCRAM_H

#include <stdbool.h>
#include <stdint.h>

#define SCRAM_KEY_LEN		32		/* SHA-256 */
#define SCRAM_MAX_SALT_LEN	64
#define SCRAM_NAME_MAX		63		/* Postgres's NAMEDATALEN - 1 */

typedef struct ScramVerifier
{
	int			iterations;
	char		salt_b64[(SCRAM_MAX_SALT_LEN + 2) / 3 * 4 + 1];
	uint8_t		salt[SCRAM_MAX_SALT_LEN];
	int			salt_len;
	uint8_t		stored_key[SCRAM_KEY_LEN];
	uint8_t		server_key[SCRAM_KEY_LEN];
} ScramVerifier;

/* Parses a SCRAM-SHA-256 verifier; false if it is not one. */
extern bool scram_parse_verifier(const char *secret, ScramVerifier *v);

/* A PLAIN password against a SCRAM-SHA-256 verifier, or an md5 one. */
extern bool scram_check_password(const ScramVerifier *v, const char *password);
extern bool md5_check_password(const char *secret, const char *role, const char *password);

/*
 * One SCRAM-SHA-256 exchange, server side:
 *   scram_client_first   parses client-first-message: the user name
 *   scram_server_first   with the user's verifier (or none: the exchange
 *                        goes on with made-up values, so that a client
 *                        does not learn which roles exist, and fails)
 *   scram_client_final   checks client-final-message's proof, and gives
 *                        server-final-message
 * Each returns false with *err set (a static message) on a bad message.
 */
typedef struct ScramExchange
{
	char		user[SCRAM_NAME_MAX + 1];
	char		gs2_header[SCRAM_NAME_MAX * 3 + 8];	/* "n,," or "n,a=...," */
	char	   *client_first_bare;
	char	   *client_nonce;
	char	   *server_first;
	char	   *nonce;			/* the client's and ours */
	bool		mock;			/* no usable verifier: the proof cannot match */
	ScramVerifier verifier;
} ScramExchange;

extern bool scram_client_first(ScramExchange *x, const char *msg, int len, const char **err);
extern char *scram_server_first(ScramExchange *x, const ScramVerifier *v);
extern bool scram_client_final(ScramExchange *x, const char *msg, int len,
							   char **server_final, const char **err);
extern void scram_exchange_free(ScramExchange *x);

#endif							/* PGQK_SCRAM_H */
