/*-------------------------------------------------------------------------
 *
 * server.c
 *	  Client connections: accepting them, framing, request headers,
 *	  dispatch to the API handlers, and responses in request order.
 *
 *	  A frame is a 4-byte big-endian size and that many bytes: a request
 *	  header (api key, api version, correlation id, client id; tagged
 *	  fields in the flexible versions) and the request's body.  A frame
 *	  over max_request_size, a header that does not parse, an unknown API
 *	  key or an unsupported version close the connection (as Kafka does),
 *	  except ApiVersions, whose handler answers any version so that a
 *	  client can learn ours.
 *
 *	  A connection has at most one request in flight: its next frame is
 *	  read only once the handler ended the request (request_respond,
 *	  request_no_response, request_close).  So responses go out in request
 *	  order, a producer's batches to a partition are appended in order, and
 *	  what a connection can make the gateway hold is bounded by one frame
 *	  and what the socket buffered.
 *
 *	  With --sasl, a connection is served only ApiVersions and the SASL
 *	  APIs until it authenticated (auth.c); any other request closes it,
 *	  as Kafka does.  Its handlers then run in its role (pg_enter_role),
 *	  so that their statements have that role's rights.
 *
 *	  With --tls-cert and --tls-key every connection speaks TLS (libevent's
 *	  OpenSSL bufferevents): the rest of this file sees plain bytes.
 *
 *	  A request in flight outlives its connection: when the client goes
 *	  away while the request's SQL runs, the connection's socket is closed
 *	  at once, and its Conn is freed when the handler ends the request.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "auth.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define API_VERSIONS_KEY	18

/* an idle connection is closed after this (Kafka's connections.max.idle.ms) */
#define IDLE_TIMEOUT_SECS	600
/* how long a closing connection may take to send what is queued */
#define FLUSH_TIMEOUT_SECS	5

typedef struct Conn
{
	struct bufferevent *bev;	/* NULL once the socket is closed */
	char		peer[64];		/* address:port of the client */
	char	   *client_id;		/* the last request's, for the log */
	Request    *req;			/* the request in flight, or NULL */
	uint64_t	nrequests;		/* requests read so far */
	bool		reading;		/* inside conn_read_requests() */
	bool		closing;		/* no more requests: close when done */
	bool		authenticated;	/* --sasl: a SaslAuthenticate succeeded */
	char	   *role;			/* the role it authenticated as; NULL: the gateway's */
	void	   *sasl;			/* auth.c's state of the exchange in progress */
	struct Conn *prev;			/* every connection, for the shutdown */
	struct Conn *next;
} Conn;

static struct evconnlistener *listener;
static SSL_CTX *tls_ctx;		/* NULL: no TLS */
static Conn *conns;
static int	nconns;
static bool shutting_down;

/*
 * A request and the frame it was read from.  A handler may take the
 * connection's next requests with its own (request_take_next): the
 * connection's request in flight, the leader, then ends only once it and
 * every request it took are answered.
 */
typedef struct ServerRequest
{
	Request		req;			/* first: a Request * is a ServerRequest * */
	uint8_t    *frame;
	struct ServerRequest *leader;	/* a taken request's; NULL for the leader */
	int			taken_open;		/* the leader's taken requests not yet answered */
	bool		answered;		/* the leader was answered, its taken ones not yet */
} ServerRequest;

static void conn_read_requests(Conn *conn);
static void conn_close(Conn *conn, const char *why);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* ------------------------------------------------------- the connections */

static void
conn_link(Conn *conn)
{
	conn->next = conns;
	if (conns)
		conns->prev = conn;
	conns = conn;
	nconns++;
}

/* Frees the Conn once nothing refers to it any more. */
static void
conn_release(Conn *conn)
{
	if (conn->bev || conn->req || conn->reading)
		return;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	nconns--;
	auth_state_free(conn->sasl);
	free(conn->role);
	free(conn->client_id);
	free(conn);
}

/* Closes the socket now (what is still queued for the client is dropped). */
static void
conn_drop_socket(Conn *conn)
{
	if (conn->bev)
	{
		bufferevent_free(conn->bev);
		conn->bev = NULL;
	}
	conn_release(conn);
}

static void
conn_flushed_cb(struct bufferevent *bev, void *arg)
{
	Conn	   *conn = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_drop_socket(conn);
}

/* Marks the connection closing and logs why; false if it already was. */
static bool
conn_mark_closing(Conn *conn, const char *why)
{
	if (conn->closing)
		return false;
	conn->closing = true;
	gw_log("closing connection from %s (client id \"%s\", %llu requests): %s",
		   conn->peer, conn->client_id ? conn->client_id : "",
		   (unsigned long long) conn->nrequests, why);
	return true;
}

/*
 * Closes a closing connection that has no request in flight: at once if
 * nothing is queued for the client, else once that is written (or
 * FLUSH_TIMEOUT_SECS passed).
 */
static void
conn_finish_close(Conn *conn)
{
	struct timeval flush_timeout = {FLUSH_TIMEOUT_SECS, 0};

	if (conn->bev == NULL)
	{
		conn_release(conn);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
	{
		conn_drop_socket(conn);
		return;
	}
	bufferevent_disable(conn->bev, EV_READ);
	bufferevent_set_timeouts(conn->bev, NULL, &flush_timeout);
	/* the event callback stays: an error or the timeout drops the socket */
	bufferevent_setcb(conn->bev, NULL, conn_flushed_cb, conn_event_cb, conn);
}

/*
 * Reads no more requests from the connection, and closes it once the
 * responses queued are written: now, or when the request in flight ends.
 */
static void
conn_close(Conn *conn, const char *why)
{
	if (!conn_mark_closing(conn, why))
		return;
	if (conn->bev)
		bufferevent_disable(conn->bev, EV_READ);
	if (conn->req == NULL)
		conn_finish_close(conn);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_read_requests(arg);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	Conn	   *conn = arg;
	char		why[128];

	if (what & BEV_EVENT_EOF)
		conn_mark_closing(conn, evbuffer_get_length(bufferevent_get_input(bev)) > 0
						  ? "client closed the connection in the middle of a request"
						  : "client closed the connection");
	else if (what & BEV_EVENT_ERROR)
	{
		unsigned long tls_error = tls_ctx ? bufferevent_get_openssl_error(bev) : 0;

		if (tls_error)
			snprintf(why, sizeof(why), "TLS error: %s", ERR_reason_error_string(tls_error));
		else
			snprintf(why, sizeof(why), "socket error: %s",
					 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_mark_closing(conn, why);
	}
	else if (what & BEV_EVENT_TIMEOUT)
		conn_mark_closing(conn, "idle timeout");
	else
		return;
	conn_drop_socket(conn);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
		  int addrlen, void *arg)
{
	Conn	   *conn;
	char		host[INET6_ADDRSTRLEN] = "?";
	int			port = 0;
	int			one = 1;
	struct timeval idle = {IDLE_TIMEOUT_SECS, 0};

	conn = calloc(1, sizeof(Conn));
	if (conn == NULL)
	{
		gw_log("out of memory: refusing a connection");
		evutil_closesocket(fd);
		return;
	}
	if (addr->sa_family == AF_INET)
	{
		struct sockaddr_in *in = (struct sockaddr_in *) addr;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	}
	else if (addr->sa_family == AF_INET6)
	{
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(conn->peer, sizeof(conn->peer), "%s:%d", host, port);

	/* responses are written whole: do not let Nagle hold back the last bytes */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (tls_ctx)
	{
		SSL		   *ssl = SSL_new(tls_ctx);

		/* freed with the bufferevent (BEV_OPT_CLOSE_ON_FREE) */
		conn->bev = ssl ? bufferevent_openssl_socket_new(gw_base, fd, ssl,
														 BUFFEREVENT_SSL_ACCEPTING,
														 BEV_OPT_CLOSE_ON_FREE) : NULL;
		if (conn->bev)
			/* a client that closes without close_notify has simply gone */
			bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
		else if (ssl)
			SSL_free(ssl);
	}
	else
		conn->bev = bufferevent_socket_new(gw_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL)
	{
		gw_log("could not set up the connection from %s", conn->peer);
		evutil_closesocket(fd);
		free(conn);
		return;
	}
	conn_link(conn);
	gw_log("new connection from %s", conn->peer);
	bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
	bufferevent_set_timeouts(conn->bev, &idle, NULL);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	/* e.g. out of file descriptors: keep listening, the next accept may work */
	gw_log("could not accept a connection: %s", strerror(EVUTIL_SOCKET_ERROR()));
}

/* ------------------------------------------------------------- requests */

static void
request_free(Request *req)
{
	ServerRequest *sreq = (ServerRequest *) req;

	free((void *) req->client_id);
	free(sreq->frame);
	free(sreq);
}

/* Reads a request header's first fields (v1; v2 adds tagged fields after them). */
static void
frame_header(KReader *r, int16_t *key, int16_t *version, int32_t *correlation_id,
			 const char **client_id, int32_t *client_id_len)
{
	*key = kr_i16(r);
	*version = kr_i16(r);
	*correlation_id = kr_i32(r);
	kr_string(r, client_id, client_id_len);
}

#define FRAME_REFUSED		(-1)
#define FRAME_INCOMPLETE	(-2)

/*
 * The size of the complete frame at the start of the connection's input,
 * FRAME_INCOMPLETE if it has not fully arrived, or FRAME_REFUSED if its
 * size is refused (the connection is closed).
 */
static int32_t
frame_complete(Conn *conn, struct evbuffer *in)
{
	uint8_t		sizebuf[4];
	int32_t		size;

	if (evbuffer_copyout(in, sizebuf, 4) < 4)
		return FRAME_INCOMPLETE;
	size = (int32_t) (((uint32_t) sizebuf[0] << 24) | ((uint32_t) sizebuf[1] << 16) |
					  ((uint32_t) sizebuf[2] << 8) | sizebuf[3]);
	if (size < 0 || size > gw_config.max_request_size)
	{
		char		why[96];

		snprintf(why, sizeof(why), "request of %d bytes (max_request_size is %d)",
				 size, gw_config.max_request_size);
		conn_close(conn, why);
		return FRAME_REFUSED;
	}
	if (evbuffer_get_length(in) < (size_t) size + 4)
		return FRAME_INCOMPLETE;
	return size;
}

/*
 * Parses a frame's request header and hands the request to its API's
 * handler.  Takes the frame (malloc'ed, freed with the request).
 */
static void
request_start(Conn *conn, uint8_t *frame, size_t size)
{
	KReader		r;
	int16_t		key;
	int16_t		version;
	int32_t		correlation_id;
	const char *client_id;
	int32_t		client_id_len;
	const ApiSpec *spec;
	ServerRequest *sreq;
	Request    *req;
	char		why[160];
	bool		in_range;
	PgRoleContext role;

	kr_init(&r, frame, size);
	frame_header(&r, &key, &version, &correlation_id, &client_id, &client_id_len);
	if (r.err)
	{
		free(frame);
		conn_close(conn, "malformed request header");
		return;
	}
	if (client_id_len > 0 &&
		(conn->client_id == NULL || strncmp(conn->client_id, client_id, client_id_len) != 0 ||
		 conn->client_id[client_id_len] != '\0'))
	{
		free(conn->client_id);
		conn->client_id = strndup(client_id, client_id_len);
	}

	spec = api_lookup(key);
	if (spec == NULL)
	{
		free(frame);
		snprintf(why, sizeof(why), "unknown API key %d", key);
		conn_close(conn, why);
		return;
	}
	in_range = version >= spec->min_version && version <= spec->max_version;
	if (!in_range && key != API_VERSIONS_KEY)
	{
		free(frame);
		snprintf(why, sizeof(why), "unsupported version %d of %s (we have %d to %d)",
				 version, spec->name, spec->min_version, spec->max_version);
		conn_close(conn, why);
		return;
	}
	if (spec->handler == NULL)
	{
		free(frame);
		snprintf(why, sizeof(why), "%s is not served by this gateway yet", spec->name);
		conn_close(conn, why);
		return;
	}
	if (gw_config.sasl && !conn->authenticated && key != API_VERSIONS_KEY &&
		key != API_SASL_HANDSHAKE && key != API_SASL_AUTHENTICATE)
	{
		free(frame);
		snprintf(why, sizeof(why), "%s request before authentication", spec->name);
		conn_close(conn, why);
		return;
	}

	sreq = calloc(1, sizeof(ServerRequest));
	if (sreq == NULL)
	{
		free(frame);
		conn_close(conn, "out of memory");
		return;
	}
	sreq->frame = frame;
	req = &sreq->req;
	req->conn = conn;
	req->api_key = key;
	req->api_version = version;
	req->correlation_id = correlation_id;
	req->client_id = client_id ? strndup(client_id, client_id_len) : NULL;
	/* header v2 from the first flexible version on, also above our range */
	req->flexible = spec->first_flexible >= 0 && version >= spec->first_flexible;
	if (req->flexible)
		kr_skip_tagged_fields(&r);
	if (r.err && in_range)
	{
		request_free(req);
		conn_close(conn, "malformed request header");
		return;
	}
	/*
	 * The body is the rest of the frame; for an ApiVersions of a version we
	 * do not know, whose header may differ, nothing (it is answered with
	 * our versions whatever it holds).
	 */
	if (r.err)
		kr_init(&req->body, frame, 0);
	else
		kr_init(&req->body, frame + r.pos, size - r.pos);

	conn->req = req;
	conn->nrequests++;
	bufferevent_disable(conn->bev, EV_READ);
	/* the handler may end the request, and free conn: enter the role first */
	role = pg_enter_role(conn->role);
	spec->handler(req);
	pg_leave_role(role);
}

/*
 * Reads and starts the requests that are complete in the connection's
 * input, one at a time: a handler that answers at once lets the loop go
 * on, one that runs SQL stops it until the request ends.
 */
static void
conn_read_requests(Conn *conn)
{
	if (conn->reading)
		return;					/* a handler answered inside the loop below */
	conn->reading = true;
	while (conn->bev && !conn->req && !conn->closing)
	{
		struct evbuffer *in = bufferevent_get_input(conn->bev);
		int32_t		size = frame_complete(conn, in);
		uint8_t    *frame;

		if (size < 0)
			break;

		/* the frame is complete: only now is memory taken for it */
		frame = malloc(size > 0 ? size : 1);
		if (frame == NULL)
		{
			conn_close(conn, "out of memory");
			break;
		}
		evbuffer_drain(in, 4);
		evbuffer_remove(in, frame, size);
		request_start(conn, frame, size);
	}
	conn->reading = false;
	conn_release(conn);
}

/* Ends the connection's request in flight and reads its next one. */
static void
request_end(Request *req)
{
	Conn	   *conn = req->conn;

	conn->req = NULL;
	request_free(req);
	if (!conn->closing && shutting_down)
		conn_close(conn, "the gateway is shutting down");
	else if (conn->closing)
		conn_finish_close(conn);
	else
	{
		bufferevent_enable(conn->bev, EV_READ);
		conn_read_requests(conn);
	}
}

/*
 * A request is answered (or ends without an answer): a taken request is
 * freed, and the leader ends once it and every request it took are.
 */
static void
request_answered(Request *req)
{
	ServerRequest *sreq = (ServerRequest *) req;
	ServerRequest *leader = sreq->leader ? sreq->leader : sreq;

	if (sreq->leader)
	{
		leader->taken_open--;
		request_free(req);
	}
	else
		sreq->answered = true;
	if (leader->answered && leader->taken_open == 0)
		request_end(&leader->req);
}

Request *
request_take_next(Request *req, bool (*accept) (const Request *next, void *arg), void *arg)
{
	ServerRequest *leader = (ServerRequest *) req;
	Conn	   *conn = req->conn;
	struct evbuffer *in;
	int32_t		size;
	uint8_t    *data;
	KReader		r;
	Request		next;
	const char *client_id;
	int32_t		client_id_len;
	ServerRequest *sreq;
	uint8_t    *frame;

	if (leader->leader != NULL || leader->answered || conn->req != req ||
		conn->bev == NULL || conn->closing || req->flexible)
		return NULL;
	in = bufferevent_get_input(conn->bev);
	size = frame_complete(conn, in);
	if (size < 0 || (data = evbuffer_pullup(in, (ev_ssize_t) size + 4)) == NULL)
		return NULL;

	/* the same API and version as the leader's: its checks hold for it */
	memset(&next, 0, sizeof(next));
	kr_init(&r, data + 4, (size_t) size);
	frame_header(&r, &next.api_key, &next.api_version, &next.correlation_id,
				 &client_id, &client_id_len);
	if (r.err || next.api_key != req->api_key || next.api_version != req->api_version)
		return NULL;
	next.conn = conn;
	kr_init(&next.body, data + 4 + r.pos, (size_t) size - r.pos);
	if (!accept(&next, arg))
		return NULL;

	sreq = calloc(1, sizeof(ServerRequest));
	frame = malloc(size > 0 ? size : 1);
	next.client_id = client_id ? strndup(client_id, client_id_len) : NULL;
	if (sreq == NULL || frame == NULL || (client_id && next.client_id == NULL))
	{
		free(sreq);
		free(frame);
		free((void *) next.client_id);
		return NULL;			/* not taken: it is read in its turn */
	}
	/* data points into the input: nothing of it is used after this */
	evbuffer_drain(in, 4);
	evbuffer_remove(in, frame, size);
	sreq->frame = frame;
	sreq->leader = leader;
	leader->taken_open++;
	sreq->req = next;
	kr_init(&sreq->req.body, frame + r.pos, (size_t) size - r.pos);
	conn->nrequests++;
	return &sreq->req;
}

/* Queues a response for the client; false (request closed) if it could not. */
static bool
response_queue(Request *req, KWriter *body)
{
	Conn	   *conn = req->conn;

	if (body->err)
	{
		request_close(req, "out of memory building the response");
		return false;
	}
	if (conn->bev && !conn->closing)
	{
		/* response header v1 has tagged fields; ApiVersions' is always v0 */
		bool		header_v1 = req->flexible && req->api_key != API_VERSIONS_KEY;
		uint8_t		head[9];
		size_t		headlen = 8;
		uint32_t	size = (uint32_t) (4 + (header_v1 ? 1 : 0) + body->len);
		struct evbuffer *out = bufferevent_get_output(conn->bev);

		head[0] = size >> 24;
		head[1] = size >> 16;
		head[2] = size >> 8;
		head[3] = size;
		head[4] = (uint32_t) req->correlation_id >> 24;
		head[5] = (uint32_t) req->correlation_id >> 16;
		head[6] = (uint32_t) req->correlation_id >> 8;
		head[7] = (uint32_t) req->correlation_id;
		if (header_v1)
			head[headlen++] = 0;	/* no tagged fields */
		if (evbuffer_add(out, head, headlen) != 0 ||
			(body->len > 0 && evbuffer_add(out, body->data, body->len) != 0))
		{
			request_close(req, "out of memory sending the response");
			return false;
		}
	}
	return true;
}

void
request_respond(Request *req, KWriter *body)
{
	if (response_queue(req, body))
		request_answered(req);
}

void
request_respond_close(Request *req, KWriter *body, const char *why)
{
	if (!response_queue(req, body))
		return;
	/* conn_close would wait for the request: mark it, request_end closes */
	if (conn_mark_closing(req->conn, why) && req->conn->bev)
		bufferevent_disable(req->conn->bev, EV_READ);
	request_answered(req);
}

void
request_no_response(Request *req)
{
	request_answered(req);
}

void
request_close(Request *req, const char *why)
{
	Conn	   *conn = req->conn;
	char		msg[256];

	snprintf(msg, sizeof(msg), "%s request v%d: %s",
			 api_lookup(req->api_key) ? api_lookup(req->api_key)->name : "?",
			 req->api_version, why);
	conn_close(conn, msg);
	request_answered(req);
}

/* ------------------------------------------------------ for auth.c */

void *
conn_sasl_state(Conn *conn)
{
	return conn->sasl;
}

void
conn_set_sasl_state(Conn *conn, void *state)
{
	conn->sasl = state;
}

bool
conn_authenticated(Conn *conn)
{
	return conn->authenticated;
}

bool
conn_set_role(Conn *conn, const char *role)
{
	char	   *copy = strdup(role);

	if (copy == NULL)
		return false;
	free(conn->role);
	conn->role = copy;
	conn->authenticated = true;
	return true;
}

const char *
conn_peer(Conn *conn)
{
	return conn->peer;
}

/* -------------------------------------------------------------- listener */

/* The TLS context of --tls-cert and --tls-key; false (logged) if unusable. */
static bool
tls_setup(void)
{
	char		err[256];

	tls_ctx = SSL_CTX_new(TLS_server_method());
	if (tls_ctx == NULL ||
		SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1 ||
		SSL_CTX_use_certificate_chain_file(tls_ctx, gw_config.tls_cert) != 1 ||
		SSL_CTX_use_PrivateKey_file(tls_ctx, gw_config.tls_key, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(tls_ctx) != 1)
	{
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		gw_log("could not set up TLS with certificate \"%s\" and key \"%s\": %s",
			   gw_config.tls_cert, gw_config.tls_key, err);
		return false;
	}
	return true;
}

bool
server_listen(void)
{
	struct addrinfo hints;
	struct addrinfo *ai;
	char		port[16];
	int			rc;

	if (gw_config.tls_cert && !tls_setup())
		return false;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", gw_config.listen_port);
	rc = getaddrinfo(gw_config.listen_host, port, &hints, &ai);
	if (rc != 0)
	{
		gw_log("could not resolve listen address \"%s\": %s", gw_config.listen_host,
			   gai_strerror(rc));
		return false;
	}
	listener = evconnlistener_new_bind(gw_base, accept_cb, NULL,
									   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
									   LEV_OPT_CLOSE_ON_EXEC, 128,
									   ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (listener == NULL)
	{
		gw_log("could not listen on %s:%d: %s", gw_config.listen_host,
			   gw_config.listen_port, strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(listener, accept_error_cb);
	gw_log("listening on %s:%d%s", gw_config.listen_host, gw_config.listen_port,
		   tls_ctx ? " (TLS)" : "");
	return true;
}

void
server_shutdown(void)
{
	Conn	   *conn;
	Conn	   *next;

	shutting_down = true;
	if (listener)
	{
		evconnlistener_free(listener);
		listener = NULL;
	}
	for (conn = conns; conn; conn = next)
	{
		next = conn->next;
		if (conn->req == NULL)
			conn_close(conn, "the gateway is shutting down");
	}
}

void
server_close_all(void)
{
	Conn	   *conn;
	Conn	   *next;

	for (conn = conns; conn; conn = next)
	{
		next = conn->next;
		conn_mark_closing(conn, "the gateway is shutting down");
		conn_drop_socket(conn);	/* the Conn stays while its request runs */
	}
}

int
server_connections(void)
{
	return nconns;
}
