/*
 * bench/kafka_bench.c: the client side of the gateway's benchmarks
 * (bench/run.sh workloads gwprod, gwdrain and gwe2e).
 *
 * One small C program, so that the client is not what limits the numbers:
 * librdkafka (Debian's librdkafka-dev) against pgqueue-kafka, and libpq
 * for the same work over SQL.  Each mode prints one line starting with
 * "result" (key=value pairs) that run.sh reads; anything else goes to
 * stderr.  --set NAME=VALUE (repeatable) sets any librdkafka property of
 * the clients, for experiments; run.sh does not use it.
 *
 *   produce    --brokers H:P --topic T --records N
 *              a librdkafka producer with its defaults (linger.ms, batch
 *              size, acks=all) sends N records (16-digit key, 100-byte
 *              value) as fast as it can; records/s = N / (first produce
 *              to last delivery report).  Also prints the average number
 *              of records per batch librdkafka sent (its statistics).
 *   sqlproduce --conninfo C --topic T --records N --batch B [--partitions P]
 *              [--connections C]
 *              the same records over SQL: C connections (default 1, as
 *              one producer), each appending its share in pgq_send_batch
 *              calls of B records to its partitions in turn (connection i
 *              has partitions i, i + C, ...), in the statement the
 *              gateway runs (binary bytea[] parameters, autocommit).
 *   drain      --brokers H:P --topic T --records N
 *              a librdkafka consumer reads partition 0 from the beginning
 *              to its end (enable.partition.eof); records/s from the
 *              first record to the end of the partition (the time before
 *              the first record, the client's start, is printed apart).
 *   sqldrain   --conninfo C --topic T --group G --records N
 *              C1's drain from a libpq client that receives the rows: per
 *              transaction pgq_poll(G, T, 1000, 0, 'm1') of every column
 *              in binary format and pgq_commit; records/s from the first
 *              poll to the last commit.
 *   e2e        --brokers H:P --topic T [--rate R] [--seconds S] [--max-in-flight M]
 *              a producer (linger.ms=0) sends R records/s with the send
 *              time in the value; a consumer (fetch.wait.max.ms default)
 *              takes now - sent for each: p50, p90, p99, p99.9, max (ms);
 *              and the producer's share, produce call to delivery report.
 *              --max-in-flight sets the producer's max.in.flight (requests
 *              sent before the first is answered; default 1000000).
 */
#define _GNU_SOURCE				/* ppoll */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#define KEY_LEN		16
#define VALUE_LEN	100

static const char *brokers = "127.0.0.1:9092";
static const char *conninfo = "";
static const char *topic = NULL;
static const char *group = "kafka_bench";
static long nrecords = 100000;
static int	batch = 1000;
static int	npartitions = 1;
static int	nconnections = 1;
static int	rate = 1000;
static int	seconds = 10;
static const char *max_in_flight = NULL;	/* librdkafka's default: 1000000 */
static char *extra_conf[16];	/* --set name=value, librdkafka properties */
static int	nextra_conf;

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "kafka_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* a 16-digit key as P2's (lpad of a random number): xorshift, no locking */
static void
make_key(char *key, uint64_t *state)
{
	uint64_t	x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	snprintf(key, KEY_LEN + 1, "%016" PRIu64, x % UINT64_C(10000000000000000));
}

static void
set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		err[256];

	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		die("%s=%s: %s", name, value, err);
}

static rd_kafka_conf_t *
base_conf(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	set(conf, "bootstrap.servers", brokers);
	set(conf, "client.id", "kafka_bench");
	for (int i = 0; i < nextra_conf; i++)
	{
		char	   *eq = strchr(extra_conf[i], '=');

		if (eq == NULL)
			die("--set %s: name=value expected", extra_conf[i]);
		*eq = '\0';
		set(conf, extra_conf[i], eq + 1);
		*eq = '=';
	}
	return conf;
}

static rd_kafka_t *
new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char		err[256];
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));

	if (rk == NULL)
		die("rd_kafka_new: %s", err);
	return rk;
}

/* ------------------------------------------------------------ produce */

static long delivered;
static long delivery_errors;
static double last_report;

/*
 * Batches, from librdkafka's statistics: the topic's "batchcnt" window
 * (records per batch) is reset at every emission, so the sums of its
 * "sum" and "cnt" over all emissions are the records and batches sent.
 */
static double batch_records;
static double batch_count;
static int	stats_seen;

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
	{
		if (delivery_errors++ < 5)
			fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
	}
	else
		delivered++;
	last_report = now_s();
}

static double
json_number_after(const char *from, const char *name)
{
	const char *p = strstr(from, name);

	return p ? strtod(p + strlen(name), NULL) : 0;
}

static int
stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	const char *p = strstr(json, "\"batchcnt\":");

	if (p != NULL)
	{
		batch_records += json_number_after(p, "\"sum\":");
		batch_count += json_number_after(p, "\"cnt\":");
	}
	stats_seen++;
	return 0;
}

static void
produce_one(rd_kafka_t *rk, const char *key, const void *value, int32_t partition)
{
	for (;;)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_KEY(key, key ? KEY_LEN : 0),
								RD_KAFKA_V_VALUE((void *) value, VALUE_LEN),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			die("produce: %s", rd_kafka_err2str(err));
		rd_kafka_poll(rk, 1);
	}
}

/* wait for the statistics emitted after everything was delivered */
static void
final_stats(rd_kafka_t *rk)
{
	int			seen = stats_seen;
	double		until = now_s() + 3;

	while (stats_seen < seen + 2 && now_s() < until)
		rd_kafka_poll(rk, 50);
}

static void
run_produce(void)
{
	rd_kafka_conf_t *conf = base_conf();
	rd_kafka_t *rk;
	char		key[KEY_LEN + 1];
	char		value[VALUE_LEN];
	uint64_t	seed = 88172645463325252ULL;
	double		t0;

	/* librdkafka's defaults for linger.ms, batch sizes and acks */
	set(conf, "statistics.interval.ms", "200");
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rk = new_client(RD_KAFKA_PRODUCER, conf);
	memset(value, 'v', VALUE_LEN);

	/* one record first, so that metadata and connections are not timed */
	make_key(key, &seed);
	produce_one(rk, key, value, RD_KAFKA_PARTITION_UA);
	rd_kafka_flush(rk, 30000);
	if (delivered != 1)
		die("the first record was not delivered");
	delivered = 0;

	t0 = now_s();
	for (long i = 0; i < nrecords; i++)
	{
		make_key(key, &seed);
		produce_one(rk, key, value, RD_KAFKA_PARTITION_UA);
		if (i % 1000 == 0)
			rd_kafka_poll(rk, 0);
	}
	if (rd_kafka_flush(rk, 600000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		die("flush timed out");
	final_stats(rk);
	if (delivered != nrecords)
		die("%ld of %ld records delivered, %ld failed", delivered, nrecords, delivery_errors);
	/* less the first record's batch */
	batch_records -= 1;
	batch_count -= 1;
	printf("result records=%ld seconds=%.6f rate=%.1f batches=%.0f batch_avg=%.1f\n",
		   nrecords, last_report - t0, nrecords / (last_report - t0),
		   batch_count, batch_count > 0 ? batch_records / batch_count : 0);
	rd_kafka_destroy(rk);
}

/* --------------------------------------------------------- sqlproduce */

typedef struct SqlProducer
{
	int32_t		first_partition;	/* and every nconnections-th after it */
	long		records;
	uint64_t	seed;
	const char *error;
} SqlProducer;

static pthread_barrier_t start_barrier;

/* a one-dimensional bytea[] in binary format: the elements concatenated */
static char *
bytea_array(char *p, int n, int elem_len, const char *elems)
{
	uint32_t	h[5] = {htonl(1), 0, htonl(17), htonl(n), htonl(1)};

	memcpy(p, h, sizeof(h));
	p += sizeof(h);
	for (int i = 0; i < n; i++)
	{
		uint32_t	len = htonl(elem_len);

		memcpy(p, &len, 4);
		memcpy(p + 4, elems + (size_t) i * elem_len, elem_len);
		p += 4 + elem_len;
	}
	return p;
}

static void *
sql_producer(void *arg)
{
	SqlProducer *sp = arg;
	PGconn	   *pg = PQconnectdb(conninfo);
	char	   *keys = malloc((size_t) batch * KEY_LEN + 1);
	char	   *values = malloc((size_t) batch * VALUE_LEN);
	char	   *kbuf = malloc(20 + (size_t) batch * (4 + KEY_LEN));
	char	   *vbuf = malloc(20 + (size_t) batch * (4 + VALUE_LEN));
	int32_t		partition = sp->first_partition;
	long		left = sp->records;

	if (PQstatus(pg) != CONNECTION_OK)
	{
		sp->error = strdup(PQerrorMessage(pg));
		pthread_barrier_wait(&start_barrier);
		return NULL;
	}
	memset(values, 'v', (size_t) batch * VALUE_LEN);
	pthread_barrier_wait(&start_barrier);
	while (left > 0 && sp->error == NULL)
	{
		int			n = left < batch ? left : batch;
		const char *params[4];
		int			lengths[4];
		int			formats[4] = {0, 1, 1, 1};
		uint32_t	part = htonl(partition);
		PGresult   *res;

		for (int i = 0; i < n; i++)
		{
			char		key[KEY_LEN + 1];

			make_key(key, &sp->seed);
			memcpy(keys + (size_t) i * KEY_LEN, key, KEY_LEN);
		}
		params[0] = topic;
		lengths[0] = 0;
		params[1] = vbuf;
		lengths[1] = bytea_array(vbuf, n, VALUE_LEN, values) - vbuf;
		params[2] = kbuf;
		lengths[2] = bytea_array(kbuf, n, KEY_LEN, keys) - kbuf;
		params[3] = (const char *) &part;
		lengths[3] = 4;
		res = PQexecParams(pg,
						   "SELECT min(msg_offset) FROM pgq_send_batch($1, $2::bytea[], $3::bytea[], $4::int)",
						   4, NULL, params, lengths, formats, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			sp->error = strdup(PQresultErrorMessage(res));
		PQclear(res);
		left -= n;
		partition += nconnections;
		if (partition >= npartitions)
			partition = sp->first_partition;
	}
	PQfinish(pg);
	free(keys);
	free(values);
	free(kbuf);
	free(vbuf);
	return NULL;
}

static void
run_sqlproduce(void)
{
	SqlProducer *sp = calloc(nconnections, sizeof(SqlProducer));
	pthread_t  *th = calloc(nconnections, sizeof(pthread_t));
	double		t0,
				t1;

	if (nconnections > npartitions)
		die("more connections than partitions");
	pthread_barrier_init(&start_barrier, NULL, nconnections + 1);
	for (int i = 0; i < nconnections; i++)
	{
		sp[i].first_partition = i;
		sp[i].records = nrecords / nconnections + (i < nrecords % nconnections);
		sp[i].seed = 88172645463325252ULL + i;
		pthread_create(&th[i], NULL, sql_producer, &sp[i]);
	}
	/* connected: time the appends only, as the producer's */
	pthread_barrier_wait(&start_barrier);
	t0 = now_s();
	for (int i = 0; i < nconnections; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	for (int i = 0; i < nconnections; i++)
		if (sp[i].error)
			die("connection %d: %s", i, sp[i].error);
	printf("result records=%ld seconds=%.6f rate=%.1f batch=%d partitions=%d connections=%d\n",
		   nrecords, t1 - t0, nrecords / (t1 - t0), batch, npartitions, nconnections);
}

/* -------------------------------------------------------------- drain */

static rd_kafka_t *
new_consumer(int64_t start)
{
	rd_kafka_conf_t *conf = base_conf();
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	/*
	 * An assigned partition from an explicit offset: the group (which
	 * librdkafka's assign needs) is never joined, nothing is committed
	 */
	set(conf, "group.id", "kafka_bench");
	set(conf, "enable.partition.eof", "true");
	set(conf, "enable.auto.commit", "false");
	rk = new_client(RD_KAFKA_CONSUMER, conf);
	rd_kafka_poll_set_consumer(rk);
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = start;
	err = rd_kafka_assign(rk, parts);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		die("assign: %s", rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(parts);
	return rk;
}

static void
run_drain(void)
{
	double		t0 = now_s(),
				t_first = 0,
				t1;
	rd_kafka_t *rk = new_consumer(RD_KAFKA_OFFSET_BEGINNING);
	long		n = 0;
	int64_t		last = -1;
	uint64_t	bytes = 0;

	for (;;)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

		if (m == NULL)
		{
			if (now_s() - t0 > 600)
				die("drain timed out after %ld records", n);
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		{
			rd_kafka_message_destroy(m);
			break;
		}
		if (m->err)
			die("consume: %s", rd_kafka_message_errstr(m));
		if (m->offset <= last)
			die("offset %" PRId64 " after %" PRId64, m->offset, last);
		if (n == 0)
			t_first = now_s();
		last = m->offset;
		bytes += m->len + m->key_len;
		n++;
		rd_kafka_message_destroy(m);
	}
	t1 = now_s();
	if (n != nrecords)
		die("read %ld records, expected %ld", n, nrecords);
	/*
	 * Timed from the first record, as pgbench's rate leaves out its
	 * connections: the client's start (connection, metadata, the offset of
	 * the beginning) is printed apart
	 */
	printf("result records=%ld seconds=%.6f rate=%.1f start=%.6f bytes=%" PRIu64 "\n",
		   n, t1 - t_first, n / (t1 - t_first), t_first - t0, bytes);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

/* ----------------------------------------------------------- sqldrain */

static PGresult *
exec_ok(PGconn *pg, const char *sql, const char *const *params, int nparams,
		ExecStatusType want)
{
	PGresult   *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 1);

	if (PQresultStatus(res) != want)
		die("%s: %s", sql, PQresultErrorMessage(res));
	return res;
}

/*
 * C1's drain, the rows received: one connection, polls of 1000 and a
 * commit per transaction, every column of the record in binary format (as
 * the gateway reads them), each value's and key's bytes looked at.
 */
static void
run_sqldrain(void)
{
	PGconn	   *pg = PQconnectdb(conninfo);
	const char *params[2] = {group, topic};
	long		n = 0;
	uint64_t	bytes = 0;
	double		t0;

	if (PQstatus(pg) != CONNECTION_OK)
		die("%s", PQerrorMessage(pg));
	t0 = now_s();
	while (n < nrecords)
	{
		PGresult   *res;
		int			rows;

		PQclear(exec_ok(pg, "BEGIN", NULL, 0, PGRES_COMMAND_OK));
		res = exec_ok(pg, "SELECT partition, msg_offset, key, value, \"timestamp\", headers "
					  "FROM pgq_poll($1, $2, 1000, 0, 'm1')", params, 2, PGRES_TUPLES_OK);
		rows = PQntuples(res);
		for (int i = 0; i < rows; i++)
		{
			const unsigned char *v = (const unsigned char *) PQgetvalue(res, i, 3);

			bytes += PQgetlength(res, i, 2) + PQgetlength(res, i, 3) + v[0];
		}
		PQclear(res);
		PQclear(exec_ok(pg, "SELECT pgq_commit($1, 'm1')", params, 1, PGRES_TUPLES_OK));
		PQclear(exec_ok(pg, "COMMIT", NULL, 0, PGRES_COMMAND_OK));
		if (rows == 0 && now_s() - t0 > 600)
			die("drain timed out after %ld records", n);
		n += rows;
	}
	printf("result records=%ld seconds=%.6f rate=%.1f bytes=%" PRIu64 "\n",
		   n, now_s() - t0, n / (now_s() - t0), bytes);
	PQfinish(pg);
}

/* ---------------------------------------------------------------- e2e */

static int64_t *latencies;		/* ns */
static long nlatencies;
static int64_t *acks;			/* ns from the produce call to its delivery report */
static long nacks;
static long e2e_expected = -1;	/* set by the producer when it is done */
static volatile bool consumer_ready;
static pthread_mutex_t e2e_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
e2e_consumer(void *arg)
{
	rd_kafka_t *rk = new_consumer(RD_KAFKA_OFFSET_END);
	double		give_up = 0;

	for (;;)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		long		expected;

		if (m != NULL)
		{
			int64_t		now = now_ns();

			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				consumer_ready = true;
			else if (m->err)
				fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
			else if (m->len == VALUE_LEN)
			{
				int64_t		sent;

				memcpy(&sent, m->payload, sizeof(sent));
				if (nlatencies < (long) rate * seconds + 1)
					latencies[nlatencies++] = now - sent;
			}
			rd_kafka_message_destroy(m);
		}
		pthread_mutex_lock(&e2e_lock);
		expected = e2e_expected;
		pthread_mutex_unlock(&e2e_lock);
		if (expected >= 0)
		{
			if (give_up == 0)
				give_up = now_s() + 10;
			if (nlatencies >= expected || now_s() > give_up)
				break;
		}
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
}

static void
e2e_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	int64_t		sent = (int64_t) (intptr_t) m->_private;

	if (m->err)
		fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
	else if (sent > 0 && nacks < (long) rate * seconds)
		acks[nacks++] = now_ns() - sent;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const int64_t *v, long n, double p)
{
	long		i = (long) (p * (n - 1) + 0.5);

	return n > 0 ? v[i] / 1e6 : 0;
}

static void
run_e2e(void)
{
	rd_kafka_conf_t *conf = base_conf();
	rd_kafka_t *rk;
	pthread_t	th;
	char		value[VALUE_LEN];
	long		total = (long) rate * seconds;
	struct timespec next;
	double		ready_by;
	int			dr_pipe[2];

	/* linger.ms=0: each record leaves at once (the default 5 ms would add
	 * up to 5 ms of waiting in the client by design) */
	set(conf, "linger.ms", "0");
	if (max_in_flight != NULL)
		set(conf, "max.in.flight", max_in_flight);
	rd_kafka_conf_set_dr_msg_cb(conf, e2e_dr_cb);
	rk = new_client(RD_KAFKA_PRODUCER, conf);

	/*
	 * The main queue (delivery reports) writes to a pipe when it gets an
	 * event: the producer sleeps in poll() on it until the next send, and
	 * serves each report when it arrives, so that reports are timed to the
	 * microsecond, not to the next send.
	 */
	if (pipe(dr_pipe) != 0)
		die("pipe: %s", strerror(errno));
	{
		rd_kafka_queue_t *main_q = rd_kafka_queue_get_main(rk);

		rd_kafka_queue_io_event_enable(main_q, dr_pipe[1], "x", 1);
		rd_kafka_queue_destroy(main_q);
	}
	memset(value, 'v', VALUE_LEN);
	latencies = calloc(total + 1, sizeof(int64_t));
	acks = calloc(total + 1, sizeof(int64_t));

	/* a first record (short: the consumer skips it) to warm the producer up */
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
								RD_KAFKA_V_VALUE("warm-up", 7),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err)
			die("produce: %s", rd_kafka_err2str(err));
		rd_kafka_flush(rk, 30000);
	}

	pthread_create(&th, NULL, e2e_consumer, NULL);
	ready_by = now_s() + 30;
	while (!consumer_ready && now_s() < ready_by)
		rd_kafka_poll(rk, 10);
	if (!consumer_ready)
		die("the consumer did not reach the end of the partition");
	rd_kafka_poll(rk, 200);			/* its long poll is parked */

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long i = 0; i < total; i++)
	{
		int64_t		sent;
		rd_kafka_resp_err_t err;

		next.tv_nsec += 1000000000L / rate;
		while (next.tv_nsec >= 1000000000L)
		{
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		/* serve delivery reports while waiting, so that they are timed */
		for (;;)
		{
			struct timespec ts;
			struct timespec left;
			struct pollfd pfd = {dr_pipe[0], POLLIN, 0};
			int64_t		left_ns;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			left_ns = (next.tv_sec - ts.tv_sec) * 1000000000L + next.tv_nsec - ts.tv_nsec;
			if (left_ns <= 0)
				break;
			left.tv_sec = left_ns / 1000000000L;
			left.tv_nsec = left_ns % 1000000000L;
			if (ppoll(&pfd, 1, &left, NULL) > 0)
			{
				char		drain[64];

				if (read(dr_pipe[0], drain, sizeof(drain)) < 0 && errno != EINTR)
					die("read: %s", strerror(errno));
				rd_kafka_poll(rk, 0);
			}
		}
		sent = now_ns();
		memcpy(value, &sent, sizeof(sent));
		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
								RD_KAFKA_V_VALUE(value, VALUE_LEN),
								RD_KAFKA_V_OPAQUE((void *) (intptr_t) sent),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err)
			die("produce: %s", rd_kafka_err2str(err));
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 30000);
	pthread_mutex_lock(&e2e_lock);
	e2e_expected = total;
	pthread_mutex_unlock(&e2e_lock);
	pthread_join(th, NULL);
	rd_kafka_destroy(rk);

	if (nlatencies == 0)
		die("no record received");
	if (nlatencies < total)
		fprintf(stderr, "received %ld of %ld records\n", nlatencies, total);
	qsort(latencies, nlatencies, sizeof(int64_t), cmp_i64);
	qsort(acks, nacks, sizeof(int64_t), cmp_i64);
	/* ack_*: the producer's share, from the produce call to its delivery report */
	printf("result records=%ld sent=%ld p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f "
		   "ack_p50=%.3f ack_p99=%.3f ack_max=%.3f\n",
		   nlatencies, total,
		   pct_ms(latencies, nlatencies, 0.5), pct_ms(latencies, nlatencies, 0.9),
		   pct_ms(latencies, nlatencies, 0.99), pct_ms(latencies, nlatencies, 0.999),
		   latencies[nlatencies - 1] / 1e6,
		   pct_ms(acks, nacks, 0.5), pct_ms(acks, nacks, 0.99), pct_ms(acks, nacks, 1));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"conninfo", required_argument, NULL, 'c'},
		{"topic", required_argument, NULL, 't'},
		{"group", required_argument, NULL, 'g'},
		{"records", required_argument, NULL, 'n'},
		{"batch", required_argument, NULL, 'B'},
		{"partitions", required_argument, NULL, 'p'},
		{"connections", required_argument, NULL, 'C'},
		{"rate", required_argument, NULL, 'r'},
		{"seconds", required_argument, NULL, 's'},
		{"max-in-flight", required_argument, NULL, 'm'},
		{"set", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0}
	};
	const char *mode;
	int			c;

	if (argc < 2)
		die("usage: kafka_bench produce|sqlproduce|drain|sqldrain|e2e --topic T [options]");
	mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'b': brokers = optarg; break;
			case 'c': conninfo = optarg; break;
			case 't': topic = optarg; break;
			case 'g': group = optarg; break;
			case 'n': nrecords = atol(optarg); break;
			case 'B': batch = atoi(optarg); break;
			case 'p': npartitions = atoi(optarg); break;
			case 'C': nconnections = atoi(optarg); break;
			case 'r': rate = atoi(optarg); break;
			case 's': seconds = atoi(optarg); break;
			case 'm': max_in_flight = optarg; break;
			case 'S':
				if (nextra_conf == 16)
					die("too many --set");
				extra_conf[nextra_conf++] = optarg;
				break;
			default: die("unknown option");
		}
	}
	if (topic == NULL || nrecords <= 0 || batch <= 0 || npartitions <= 0 || nconnections <= 0 ||
		rate <= 0 || seconds <= 0)
		die("--topic is required; numbers must be positive");
	if (strcmp(mode, "produce") == 0)
		run_produce();
	else if (strcmp(mode, "sqlproduce") == 0)
		run_sqlproduce();
	else if (strcmp(mode, "drain") == 0)
		run_drain();
	else if (strcmp(mode, "sqldrain") == 0)
		run_sqldrain();
	else if (strcmp(mode, "e2e") == 0)
		run_e2e();
	else
		die("unknown mode %s", mode);
	return 0;
}
