/*-------------------------------------------------------------------------
 *
 * scram.c
 *	  Passwords against Postgres's verifiers, and the server side of a
 *	  SCRAM-SHA-256 exchange (see scram.h), with OpenSSL's primitives.
 *
 *	  Postgres derives a SCRAM verifier from the password after SASLprep
 *	  (RFC 4013; the password as it is when that fails, e.g. not UTF-8), so
 *	  a PLAIN password is prepared the same way (pg_saslprep, libpgcommon)
 *	  before it is salted.  The keys (RFC 5802):
 *	    SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, iterations)
 *	    ClientKey       = HMAC(SaltedPassword, "Client Key")
 *	    StoredKey       = SHA-256(ClientKey)
 *	    ClientSignature = HMAC(StoredKey, AuthMessage)
 *	    ClientProof     = ClientKey XOR ClientSignature   (the client's)
 *	    ServerSignature = HMAC(ServerKey, AuthMessage)    (ours, proving
 *	                      that we hold the verifier)
 *	  where AuthMessage is client-first-message-bare, server-first-message
 *	  and client-final-message-without-proof joined with commas.  Keys are
 *	  compared in constant time.
 *
 *	  Only what Kafka's clients send is accepted: the GS2 header "n,," or
 *	  "y,," (no channel binding; an authzid only if it is the user), the
 *	  user and nonce, and optional extensions, of which Kafka's "tokenauth"
 *	  (delegation tokens) is refused and the others ignored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "common/base64.h"
#include "common/saslprep.h"

#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SCRAM_PREFIX		"SCRAM-SHA-256$"
#define SCRAM_NONCE_BYTES	18
#define MOCK_ITERATIONS		4096
#define MOCK_SALT_LEN		16

/* --------------------------------------------------------------- helpers */

static bool
hmac_sha256(const uint8_t *key, int keylen, const void *data, size_t len,
			uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = SCRAM_KEY_LEN;

	return HMAC(EVP_sha256(), key, keylen, data, len, out, &outlen) != NULL &&
		outlen == SCRAM_KEY_LEN;
}

static bool
sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
	return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1;
}

/* base64 of n bytes, malloc'ed; NULL when out of memory */
static char *
b64_encode(const uint8_t *data, int n)
{
	int			cap = pg_b64_enc_len(n) + 1;
	char	   *s = malloc(cap);
	int			len;

	if (s == NULL)
		return NULL;
	len = pg_b64_encode((const char *) data, n, s, cap);
	if (len < 0)
	{
		free(s);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* decodes len base64 characters into out (room for max); -1 if invalid or too long */
static int
b64_decode(const char *s, int len, uint8_t *out, int max)
{
	uint8_t		buf[256];
	int			n;

	if (len <= 0 || pg_b64_dec_len(len) > (int) sizeof(buf))
		return -1;
	n = pg_b64_decode(s, len, (char *) buf, sizeof(buf));
	if (n < 0 || n > max)
		return -1;
	memcpy(out, buf, n);
	return n;
}

/* the password as Postgres salted it: after SASLprep if that succeeds */
static char *
prepare_password(const char *password)
{
	char	   *prepped = NULL;

	if (pg_saslprep(password, &prepped) == SASLPREP_SUCCESS)
		return prepped;
	free(prepped);
	return strdup(password);
}

/* ------------------------------------------------------------- verifiers */

bool
scram_parse_verifier(const char *secret, ScramVerifier *v)
{
	const char *p;
	const char *salt_end;
	const char *stored_end;
	char	   *end;
	long		iterations;

	memset(v, 0, sizeof(*v));
	if (secret == NULL || strncmp(secret, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) != 0)
		return false;
	p = secret + strlen(SCRAM_PREFIX);
	iterations = strtol(p, &end, 10);
	if (end == p || *end != ':' || iterations < 1 || iterations > INT32_MAX)
		return false;
	v->iterations = (int) iterations;
	p = end + 1;
	salt_end = strchr(p, '$');
	if (salt_end == NULL || salt_end - p >= (long) sizeof(v->salt_b64))
		return false;
	memcpy(v->salt_b64, p, salt_end - p);
	v->salt_b64[salt_end - p] = '\0';
	v->salt_len = b64_decode(p, (int) (salt_end - p), v->salt, SCRAM_MAX_SALT_LEN);
	if (v->salt_len <= 0)
		return false;
	p = salt_end + 1;
	stored_end = strchr(p, ':');
	if (stored_end == NULL ||
		b64_decode(p, (int) (stored_end - p), v->stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		return false;
	p = stored_end + 1;
	return b64_decode(p, (int) strlen(p), v->server_key, SCRAM_KEY_LEN) == SCRAM_KEY_LEN;
}

bool
scram_check_password(const ScramVerifier *v, const char *password)
{
	char	   *prepped = prepare_password(password);
	uint8_t		salted[SCRAM_KEY_LEN];
	uint8_t		client_key[SCRAM_KEY_LEN];
	uint8_t		stored_key[SCRAM_KEY_LEN];
	bool		ok;

	if (prepped == NULL)
		return false;
	ok = PKCS5_PBKDF2_HMAC(prepped, (int) strlen(prepped), v->salt, v->salt_len,
						   v->iterations, EVP_sha256(), SCRAM_KEY_LEN, salted) == 1 &&
		hmac_sha256(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
		sha256(client_key, SCRAM_KEY_LEN, stored_key) &&
		CRYPTO_memcmp(stored_key, v->stored_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(prepped, strlen(prepped));
	free(prepped);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

bool
md5_check_password(const char *secret, const char *role, const char *password)
{
	static const char hex[] = "0123456789abcdef";
	size_t		plen = strlen(password);
	size_t		rlen = strlen(role);
	char	   *buf;
	uint8_t		digest[16];
	char		expected[3 + 32];
	int			i;
	bool		ok;

	if (secret == NULL || strlen(secret) != 35 || strncmp(secret, "md5", 3) != 0)
		return false;
	buf = malloc(plen + rlen + 1);
	if (buf == NULL)
		return false;
	memcpy(buf, password, plen);
	memcpy(buf + plen, role, rlen);
	ok = EVP_Digest(buf, plen + rlen, digest, NULL, EVP_md5(), NULL) == 1;
	OPENSSL_cleanse(buf, plen + rlen);
	free(buf);
	if (!ok)
		return false;
	memcpy(expected, "md5", 3);
	for (i = 0; i < 16; i++)
	{
		expected[3 + 2 * i] = hex[digest[i] >> 4];
		expected[3 + 2 * i + 1] = hex[digest[i] & 15];
	}
	return CRYPTO_memcmp(expected, secret, sizeof(expected)) == 0;
}

/* ------------------------------------------------------- the exchange */

/*
 * Decodes a saslname (',' and '=' travel as "=2C" and "=3D") of len bytes
 * into out (room for SCRAM_NAME_MAX); false if malformed or too long.
 */
static bool
decode_saslname(const char *s, int len, char *out)
{
	int			n = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == '=')
		{
			if (i + 3 > len)
				return false;
			if (strncmp(s + i, "=2C", 3) == 0)
				c = ',';
			else if (strncmp(s + i, "=3D", 3) == 0)
				c = '=';
			else
				return false;
			i += 2;
		}
		if (n >= SCRAM_NAME_MAX)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

/* the length of the attribute value at s (up to ',' or the end) */
static int
value_len(const char *s)
{
	const char *comma = strchr(s, ',');

	return comma ? (int) (comma - s) : (int) strlen(s);
}

/* a copy of a message, if it holds no NUL (which no SCRAM message may) */
static char *
message_copy(const char *msg, int len)
{
	char	   *s;

	if (len <= 0 || memchr(msg, '\0', len) != NULL)
		return NULL;
	s = malloc(len + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, msg, len);
	s[len] = '\0';
	return s;
}

/*
 * The extensions after the nonce (",key=value" each): refuses Kafka's
 * tokenauth, ignores the others; p is at the ',' before the first or at
 * the end.
 */
static bool
check_extensions(const char *p, const char **err)
{
	while (*p == ',')
	{
		const char *key = p + 1;
		const char *eq = strchr(key, '=');
		int			len = value_len(key);

		if (eq == NULL || eq - key > len || eq == key)
		{
			*err = "malformed extension";
			return false;
		}
		if (eq - key == 9 && strncmp(key, "tokenauth", 9) == 0)
		{
			*err = "delegation tokens are not supported";
			return false;
		}
		p = key + len;
	}
	return true;
}

bool
scram_client_first(ScramExchange *x, const char *msg, int len, const char **err)
{
	char	   *s = message_copy(msg, len);
	char		authzid[SCRAM_NAME_MAX + 1] = "";
	const char *p;
	int			n;
	int			i;

	*err = "malformed client-first-message";
	if (s == NULL)
		return false;
	p = s;
	/* the GS2 header: n or y (no channel binding), an optional authzid */
	if (*p == 'p')
	{
		*err = "channel binding is not supported";
		goto fail;
	}
	if ((*p != 'n' && *p != 'y') || p[1] != ',')
		goto fail;
	p += 2;
	if (strncmp(p, "a=", 2) == 0)
	{
		n = value_len(p + 2);
		if (!decode_saslname(p + 2, n, authzid))
			goto fail;
		p += 2 + n;
	}
	if (*p != ',')
		goto fail;
	p++;
	if (p - s >= (long) sizeof(x->gs2_header))
		goto fail;
	memcpy(x->gs2_header, s, p - s);
	x->gs2_header[p - s] = '\0';

	/* client-first-message-bare: n=user,r=nonce[,extensions] */
	x->client_first_bare = strdup(p);
	if (x->client_first_bare == NULL)
		goto fail;
	if (strncmp(p, "m=", 2) == 0)
	{
		*err = "mandatory extensions are not supported";
		goto fail;
	}
	if (strncmp(p, "n=", 2) != 0)
		goto fail;
	n = value_len(p + 2);
	if (!decode_saslname(p + 2, n, x->user))
	{
		*err = "malformed or too long user name";
		goto fail;
	}
	p += 2 + n;
	if (strncmp(p, ",r=", 3) != 0)
		goto fail;
	p += 3;
	n = value_len(p);
	if (n == 0)
		goto fail;
	for (i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			goto fail;
	x->client_nonce = strndup(p, n);
	if (x->client_nonce == NULL)
		goto fail;
	if (!check_extensions(p + n, err))
		goto fail;
	if (authzid[0] != '\0' && strcmp(authzid, x->user) != 0)
	{
		*err = "the authorization identity is not the user";
		goto fail;
	}
	free(s);
	return true;

fail:
	free(s);
	return false;
}

/* a salt for a user without a usable verifier: the same at each attempt */
static bool
mock_verifier(const char *user, ScramVerifier *v)
{
	static uint8_t secret[SCRAM_KEY_LEN];
	static bool have_secret;
	uint8_t		mac[SCRAM_KEY_LEN];
	char	   *b64;

	if (!have_secret)
	{
		if (RAND_bytes(secret, sizeof(secret)) != 1)
			return false;
		have_secret = true;
	}
	if (!hmac_sha256(secret, sizeof(secret), user, strlen(user), mac))
		return false;
	memset(v, 0, sizeof(*v));
	v->iterations = MOCK_ITERATIONS;
	v->salt_len = MOCK_SALT_LEN;
	memcpy(v->salt, mac, MOCK_SALT_LEN);
	b64 = b64_encode(v->salt, v->salt_len);
	if (b64 == NULL)
		return false;
	snprintf(v->salt_b64, sizeof(v->salt_b64), "%s", b64);
	free(b64);
	return true;
}

char *
scram_server_first(ScramExchange *x, const ScramVerifier *v)
{
	uint8_t		raw[SCRAM_NONCE_BYTES];
	char	   *ours;
	size_t		size;

	x->mock = (v == NULL);
	if (v)
		x->verifier = *v;
	else if (!mock_verifier(x->user, &x->verifier))
		return NULL;
	if (RAND_bytes(raw, sizeof(raw)) != 1 || (ours = b64_encode(raw, sizeof(raw))) == NULL)
		return NULL;
	size = strlen(x->client_nonce) + strlen(ours) + 1;
	x->nonce = malloc(size);
	if (x->nonce)
		snprintf(x->nonce, size, "%s%s", x->client_nonce, ours);
	free(ours);
	if (x->nonce == NULL)
		return NULL;
	size = strlen(x->nonce) + strlen(x->verifier.salt_b64) + 32;
	x->server_first = malloc(size);
	if (x->server_first)
		snprintf(x->server_first, size, "r=%s,s=%s,i=%d", x->nonce, x->verifier.salt_b64,
				 x->verifier.iterations);
	return x->server_first;
}

bool
scram_client_final(ScramExchange *x, const char *msg, int len, char **server_final,
				   const char **err)
{
	char	   *s = message_copy(msg, len);
	char	   *gs2_b64 = NULL;
	char	   *auth_message = NULL;
	char	   *proof_at;
	char	   *signature_b64 = NULL;
	const char *p;
	uint8_t		proof[SCRAM_KEY_LEN];
	uint8_t		signature[SCRAM_KEY_LEN];
	uint8_t		client_key[SCRAM_KEY_LEN];
	uint8_t		stored_key[SCRAM_KEY_LEN];
	size_t		size;
	int			n;
	int			i;
	bool		ok = false;

	*server_final = NULL;
	*err = "malformed client-final-message";
	if (s == NULL || x->server_first == NULL)
		goto done;
	/* c=base64(GS2 header): the one of the client-first-message */
	gs2_b64 = b64_encode((const uint8_t *) x->gs2_header, (int) strlen(x->gs2_header));
	if (gs2_b64 == NULL || strncmp(s, "c=", 2) != 0)
		goto done;
	p = s + 2;
	n = value_len(p);
	if (n != (int) strlen(gs2_b64) || strncmp(p, gs2_b64, n) != 0)
	{
		*err = "the channel binding is not the client-first-message's";
		goto done;
	}
	p += n;
	if (strncmp(p, ",r=", 3) != 0)
		goto done;
	p += 3;
	/*
	 * The nonce must end with server-first's (ours, so the proof is fresh);
	 * RFC 5802 wants it equal, but librdkafka sends its own nonce before
	 * server-first's whole one, and Kafka's broker accepts that (it checks
	 * the end only), so must we.
	 */
	n = value_len(p);
	if (n < (int) strlen(x->nonce) ||
		strncmp(p + n - strlen(x->nonce), x->nonce, strlen(x->nonce)) != 0)
	{
		*err = "the nonce is not the exchange's";
		goto done;
	}
	/* the proof is the last attribute; extensions may come before it */
	proof_at = strstr(p + n, ",p=");
	if (proof_at == NULL || strchr(proof_at + 3, ',') != NULL ||
		b64_decode(proof_at + 3, (int) strlen(proof_at + 3), proof, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
		goto done;
	*proof_at = '\0';
	if (!check_extensions(p + n, err))
		goto done;

	size = strlen(x->client_first_bare) + strlen(x->server_first) + strlen(s) + 3;
	auth_message = malloc(size);
	*err = "out of memory";
	if (auth_message == NULL)
		goto done;
	snprintf(auth_message, size, "%s,%s,%s", x->client_first_bare, x->server_first, s);

	*err = "wrong password";
	if (!hmac_sha256(x->verifier.stored_key, SCRAM_KEY_LEN, auth_message, strlen(auth_message),
					 signature))
		goto done;
	for (i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ signature[i];
	if (!sha256(client_key, SCRAM_KEY_LEN, stored_key) ||
		CRYPTO_memcmp(stored_key, x->verifier.stored_key, SCRAM_KEY_LEN) != 0 || x->mock)
		goto done;

	*err = "out of memory";
	if (!hmac_sha256(x->verifier.server_key, SCRAM_KEY_LEN, auth_message, strlen(auth_message),
					 signature) ||
		(signature_b64 = b64_encode(signature, SCRAM_KEY_LEN)) == NULL)
		goto done;
	size = strlen(signature_b64) + 3;
	*server_final = malloc(size);
	if (*server_final == NULL)
		goto done;
	snprintf(*server_final, size, "v=%s", signature_b64);
	ok = true;

done:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	free(s);
	free(gs2_b64);
	free(auth_message);
	free(signature_b64);
	return ok;
}

void
scram_exchange_free(ScramExchange *x)
{
	free(x->client_first_bare);
	free(x->client_nonce);
	free(x->server_first);
	free(x->nonce);
	OPENSSL_cleanse(&x->verifier, sizeof(x->verifier));
	memset(x, 0, sizeof(*x));
}
