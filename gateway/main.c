/*-------------------------------------------------------------------------
 *
 * main.c
 *	  pgqueue-kafka: start-up, options, signals and the event loop.
 *
 *	  One process, one thread, one libevent loop: client connections
 *	  (server.c) and the libpq pools (pgpool.c) share it, and nothing in it
 *	  waits on the network.  SIGTERM or SIGINT stops it cleanly: it stops
 *	  listening, closes idle connections, lets the requests in flight end
 *	  for up to SHUTDOWN_GRACE_SECS (then drops them), closes the pools and
 *	  exits 0.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"
#include "pgpool.h"
#include "server.h"

#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#define SHUTDOWN_GRACE_SECS	10

GatewayConfig gw_config = {
	.listen_host = "127.0.0.1",
	.listen_port = 9092,
	.advertised_host = NULL,
	.advertised_port = 0,
	.node_id = 0,
	.conninfo = "",
	.pool_size = 4,
	.max_request_size = 104857600,	/* Kafka's socket.request.max.bytes */
	.auto_create_topics = false,
	.default_partitions = 1,
};

struct event_base *gw_base;

static struct event *shutdown_timer;
static int	shutdown_ticks;

static void
usage(FILE *out)
{
	fprintf(out,
			"pgqueue-kafka: a Kafka protocol gateway to pgqueue\n"
			"\n"
			"Usage: pgqueue-kafka [OPTION]...\n"
			"\n"
			"  --listen HOST:PORT         address to listen on (default 127.0.0.1:9092)\n"
			"  --conninfo CONNINFO        libpq connection string of the database\n"
			"                             (default: libpq's environment, PGHOST etc.)\n"
			"  --advertise HOST:PORT      address clients are told to connect to\n"
			"                             (default: the listen address)\n"
			"  --node-id N                broker id in Metadata (default 0); give every\n"
			"                             gateway of one database its own\n"
			"  --pool-size N              connections per pool: default, local, wait\n"
			"                             (default 4)\n"
			"  --max-request-size BYTES   largest request frame (default 104857600)\n"
			"  --auto-create-topics       Metadata creates unknown topics it is asked for\n"
			"  --default-partitions N     partitions of auto-created topics (default 1)\n"
			"  --sasl                     clients authenticate as Postgres roles (SASL\n"
			"                             PLAIN or SCRAM-SHA-256), and their requests run\n"
			"                             with that role's rights; without it the listen\n"
			"                             address must be a loopback one\n"
			"  --tls-cert FILE            the listener speaks TLS with this certificate\n"
			"                             (PEM, with its chain)\n"
			"  --tls-key FILE             and this private key (PEM)\n"
			"  --help                     show this help and exit\n"
			"\n"
			"It logs to stderr and stops cleanly on SIGTERM or SIGINT.\n");
}

/* Parses HOST:PORT (HOST may be [v6 address]); false if malformed. */
static bool
parse_host_port(const char *arg, const char **host, int *port)
{
	const char *colon = strrchr(arg, ':');
	char	   *end;
	long		p;
	char	   *h;
	size_t		hlen;

	if (colon == NULL || colon == arg)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
		return false;
	hlen = colon - arg;
	if (arg[0] == '[' && hlen >= 2 && arg[hlen - 1] == ']')
	{
		arg++;
		hlen -= 2;
	}
	h = strndup(arg, hlen);
	if (h == NULL)
		return false;
	*host = h;
	*port = (int) p;
	return true;
}

static bool
parse_int(const char *arg, int min, int max, int *out)
{
	char	   *end;
	long		v = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || v < min || v > max)
		return false;
	*out = (int) v;
	return true;
}

static void
parse_options(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"listen", required_argument, NULL, 'l'},
		{"conninfo", required_argument, NULL, 'c'},
		{"advertise", required_argument, NULL, 'a'},
		{"node-id", required_argument, NULL, 'n'},
		{"pool-size", required_argument, NULL, 'p'},
		{"max-request-size", required_argument, NULL, 'm'},
		{"auto-create-topics", no_argument, NULL, 'A'},
		{"default-partitions", required_argument, NULL, 'd'},
		{"sasl", no_argument, NULL, 'S'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	int			index = 0;
	bool		ok = true;

	while ((c = getopt_long(argc, argv, "h", long_options, &index)) != -1)
	{
		switch (c)
		{
			case 'l':
				ok = parse_host_port(optarg, &gw_config.listen_host, &gw_config.listen_port);
				break;
			case 'c':
				gw_config.conninfo = optarg;
				break;
			case 'a':
				ok = parse_host_port(optarg, &gw_config.advertised_host,
									 &gw_config.advertised_port);
				break;
			case 'n':
				ok = parse_int(optarg, 0, INT_MAX, &gw_config.node_id);
				break;
			case 'p':
				ok = parse_int(optarg, 1, 1000, &gw_config.pool_size);
				break;
			case 'm':
				/* at least what a request header and a small request need */
				ok = parse_int(optarg, 1024, INT_MAX, &gw_config.max_request_size);
				break;
			case 'A':
				gw_config.auto_create_topics = true;
				break;
			case 'd':
				ok = parse_int(optarg, 1, 100000, &gw_config.default_partitions);
				break;
			case 'S':
				gw_config.sasl = true;
				break;
			case 'C':
				gw_config.tls_cert = optarg;
				break;
			case 'K':
				gw_config.tls_key = optarg;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			default:
				usage(stderr);
				exit(1);
		}
		if (!ok)
		{
			fprintf(stderr, "pgqueue-kafka: invalid value for --%s: \"%s\"\n",
					long_options[index].name, optarg);
			exit(1);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "pgqueue-kafka: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		exit(1);
	}
	if ((gw_config.tls_cert == NULL) != (gw_config.tls_key == NULL))
	{
		fprintf(stderr, "pgqueue-kafka: --tls-cert and --tls-key go together\n");
		exit(1);
	}
	if (gw_config.advertised_host == NULL)
	{
		gw_config.advertised_host = gw_config.listen_host;
		gw_config.advertised_port = gw_config.listen_port;
	}
}

/*
 * Whether every address the listen host resolves to is a loopback one
 * (127.0.0.0/8, ::1): only there may clients go unauthenticated.
 */
static bool
listen_is_loopback(void)
{
	struct addrinfo hints;
	struct addrinfo *ai;
	struct addrinfo *a;
	bool		loopback = true;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(gw_config.listen_host, NULL, &hints, &ai) != 0)
		return false;			/* server_listen says why */
	for (a = ai; a; a = a->ai_next)
	{
		if (a->ai_family == AF_INET)
		{
			uint32_t	addr = ntohl(((struct sockaddr_in *) a->ai_addr)->sin_addr.s_addr);

			loopback &= (addr >> 24) == 127;
		}
		else if (a->ai_family == AF_INET6)
			loopback &= IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) a->ai_addr)->sin6_addr);
		else
			loopback = false;
	}
	freeaddrinfo(ai);
	return loopback;
}

/*
 * The loopback rule: without --sasl every client has the gateway's own
 * rights, which only the local machine's users may be given.
 */
static bool
check_authentication_settings(void)
{
	bool		loopback = listen_is_loopback();

	if (!gw_config.sasl && !loopback)
	{
		gw_log("refusing to listen on %s without --sasl: clients would not be authenticated "
			   "(listen on a loopback address such as 127.0.0.1, or add --sasl)",
			   gw_config.listen_host);
		return false;
	}
	if (!gw_config.sasl)
		gw_log("clients are not authenticated: every request runs with the gateway's own "
			   "role (--sasl makes them log in as Postgres roles)");
	else if (!gw_config.tls_cert && !loopback)
		gw_log("warning: without TLS, SASL PLAIN passwords travel in clear text "
			   "(--tls-cert and --tls-key)");
	return true;
}

/* ------------------------------------------------------------- shutdown */

static void
shutdown_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	/* ticks every 10 ms: done when no connection is left, or at the deadline */
	if (server_connections() > 0 && ++shutdown_ticks < SHUTDOWN_GRACE_SECS * 100)
		return;
	if (server_connections() > 0)
		gw_log("dropping %d connections with requests still running", server_connections());
	server_close_all();
	pool_stop();
	event_free(shutdown_timer);
	shutdown_timer = NULL;
	event_base_loopexit(gw_base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tick = {0, 10000};

	if (shutdown_timer)
		return;					/* already stopping */
	gw_log("received %s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	server_shutdown();
	shutdown_timer = event_new(gw_base, -1, EV_PERSIST, shutdown_tick_cb, NULL);
	event_add(shutdown_timer, &tick);
}

int
main(int argc, char **argv)
{
	struct event *sigterm;
	struct event *sigint;
	sigset_t	stopping;

	parse_options(argc, argv);
	if (!check_authentication_settings())
		return 1;

	/* a client that goes away must not kill us while we write to it */
	signal(SIGPIPE, SIG_IGN);

	/*
	 * Every Produce and Fetch allocates and frees buffers of about a
	 * batch's size (1 MB with librdkafka's defaults): a request's frame,
	 * libpq's result, the response.  With glibc's defaults those come from
	 * fresh mmaps or a heap trimmed after each request, and the kernel
	 * zeroes new pages for each of them: a third of the gateway's time in a
	 * drain went to page faults (bench/README.md, gwdrain).  Keep up to 64 MB
	 * of freed heap for the next request instead.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);

	gw_base = event_base_new();
	if (gw_base == NULL)
	{
		gw_log("could not initialize libevent");
		return 1;
	}
	if (!server_listen())
		return 1;
	if (!pool_start())
		return 1;
	sigterm = evsignal_new(gw_base, SIGTERM, signal_cb, NULL);
	sigint = evsignal_new(gw_base, SIGINT, signal_cb, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	gw_log("pgqueue-kafka started: node id %d, advertised as %s:%d, %d connections per pool%s%s",
		   gw_config.node_id, gw_config.advertised_host, gw_config.advertised_port,
		   gw_config.pool_size, gw_config.sasl ? ", SASL" : "",
		   gw_config.tls_cert ? ", TLS" : "");

	event_base_dispatch(gw_base);

	/*
	 * Freeing the signal events puts back the default action, which would
	 * let a second SIGTERM kill the process during the last steps: block
	 * them instead, they are answered already.
	 */
	sigemptyset(&stopping);
	sigaddset(&stopping, SIGTERM);
	sigaddset(&stopping, SIGINT);
	sigprocmask(SIG_BLOCK, &stopping, NULL);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(gw_base);
	gw_log("pgqueue-kafka stopped");
	return 0;
}
