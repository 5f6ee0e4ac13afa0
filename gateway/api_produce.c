/*-------------------------------------------------------------------------
 *
 * api_produce.c
 *	  Produce (v3-7) and InitProducerId (v0-1): Kafka's record batches
 *	  appended with pgq_send_batch, and producer ids from
 *	  pgq_init_producer.
 *
 * A Produce request names topics and partitions, each with one record
 * batch (RecordBatch v2; Kafka refuses more than one per partition since
 * v3).  Each partition's batch is decoded (records.c) and appended by one
 * pgq_send_batch call with the explicit partition, so that the batch's
 * records get consecutive offsets and the response's base offset is the
 * first one.  The partitions of a request run as separate statements, in
 * parallel on the pool; the response (or, for acks=0, the end of the
 * request) waits for all of them.  Because the connection reads its next
 * request only then, a producer's batches to a partition are appended in
 * the order it sent them.
 *
 * acks picks the pool: 0 and 1 run on connections with
 * synchronous_commit = local (the commit is durable on this server), -1
 * (all) on connections with the server's setting (on a synchronous
 * standby too, if the server is so configured).
 *
 * An idempotent batch (producer id >= 0) passes its producer id, epoch
 * and base sequence: pgqueue checks them inside the append's transaction
 * (docs/producers.md), so a retry of a batch that committed appends
 * nothing and returns its first attempt's offsets.
 *
 * Queued requests go together.  Each statement is a transaction, and a
 * connection's requests are served one after the other, so a producer that
 * sends many small requests to a partition (librdkafka with linger.ms=0)
 * would get at most one commit per round trip, and past that its requests
 * would queue without bound.  So when a request is one partition's batch,
 * the requests to the same partition that have already arrived behind it
 * on the connection are taken along (request_take_next) and all their
 * records appended by one pgq_send_batch: one commit for all, offsets in
 * request order, each request answered in its turn with its own base
 * offset.  The more requests queue, the more go together.  Only batches
 * without a producer id go together: an idempotent batch is its own run
 * of sequences, which a retry must find again as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "api_data.h"
#include "pgbin.h"
#include "records.h"

#include <stdlib.h>
#include <string.h>

/* Kafka's error codes used only here */
#define KERR_INVALID_REQUIRED_ACKS	21
#define KERR_INVALID_TIMESTAMP		32
#define KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED 53

/*
 * The largest decompressed batch accepted.  librdkafka's batches are at
 * most batch.size (1 MB by default) before compression and Java's 16 kB;
 * the bound is what a decompression bomb can make the gateway allocate.
 */
#define PRODUCE_MAX_DECOMPRESSED	(64 * 1024 * 1024)

/*
 * One statement per partition.  The headers are converted from Kafka's
 * encoding inside the statement: pgq_headers_from_kafka gives the form
 * pgqueue stores (the object form whenever it is lossless), and a NULL
 * element (a record without headers) stays NULL.  Only the first offset
 * comes back: a batch's offsets are consecutive.
 */
static const char produce_sql[] =
"SELECT min(msg_offset) FROM pgq_send_batch($1, $2::bytea[], $3::bytea[], $4, "
"CASE WHEN $5::bytea[] IS NULL THEN NULL ELSE "
"ARRAY(SELECT pgq_headers_from_kafka(u.h) FROM unnest($5::bytea[]) WITH ORDINALITY u(h, i) "
"ORDER BY u.i) END, $6, $7, $8, $9)";

typedef struct ProduceState ProduceState;

typedef struct ProducePartition
{
	ProduceState *st;
	int32_t		partition;
	const uint8_t *records;		/* the batch's bytes in the request */
	int32_t		records_len;
	int16_t		error;
	int64_t		base_offset;
	int32_t		count;			/* its records, once decoded and submitted */
} ProducePartition;

typedef struct ProduceTopic
{
	const char *name;			/* in the request, not NUL-terminated */
	int32_t		name_len;
	int32_t		npartitions;
	ProducePartition *partitions;
} ProduceTopic;

/* requests appended together at most, and their records' bytes */
#define PRODUCE_MAX_TOGETHER		64
#define PRODUCE_MAX_TOGETHER_BYTES	(16 * 1024 * 1024)

struct ProduceState
{
	Request    *req;
	int16_t		acks;
	int32_t		ntopics;
	ProduceTopic *topics;
	int			pending;		/* statements not yet ended, + 1 while submitting */
	/* the requests taken along with this one, in order */
	ProduceState *taken[PRODUCE_MAX_TOGETHER - 1];
	int			ntaken;
};

static void produce_finish_all(ProduceState *st);

static void
produce_state_free(ProduceState *st)
{
	int			i;

	if (st == NULL)
		return;
	for (i = 0; i < st->ntopics; i++)
		free(st->topics[i].partitions);
	free(st->topics);
	free(st);
}

/*
 * Reads a Produce request (v0-7: v3 added the transactional id) into a
 * new state; NULL if it is malformed (or memory ran out: the connection
 * closes either way).  Array lengths are checked against the bytes left
 * before anything is allocated for them.
 */
static ProduceState *
produce_read(Request *req)
{
	KReader    *r = &req->body;
	ProduceState *st = calloc(1, sizeof(ProduceState));
	int32_t		t;

	if (st == NULL)
		return NULL;
	st->req = req;
	if (req->api_version >= 3)
	{
		const char *txn;
		int32_t		txn_len;

		(void) kr_string(r, &txn, &txn_len);
	}
	st->acks = kr_i16(r);
	(void) kr_i32(r);			/* timeout_ms: a statement is not cut short */
	/* a topic is at least its name's length and a partition count */
	st->ntopics = kr_array_len(r, 2 + 4);
	if (r->err || st->ntopics < 0)
		goto bad;
	st->topics = calloc(st->ntopics ? st->ntopics : 1, sizeof(ProduceTopic));
	if (st->topics == NULL)
		goto bad;
	for (t = 0; t < st->ntopics; t++)
	{
		ProduceTopic *topic = &st->topics[t];
		int32_t		p;

		(void) kr_string(r, &topic->name, &topic->name_len);
		/* a partition is its index and its records' length */
		topic->npartitions = kr_array_len(r, 4 + 4);
		if (r->err || topic->name == NULL || topic->npartitions < 0)
			goto bad;
		topic->partitions = calloc(topic->npartitions ? topic->npartitions : 1,
								   sizeof(ProducePartition));
		if (topic->partitions == NULL)
			goto bad;
		for (p = 0; p < topic->npartitions; p++)
		{
			ProducePartition *pp = &topic->partitions[p];

			pp->st = st;
			pp->partition = kr_i32(r);
			(void) kr_bytes(r, &pp->records, &pp->records_len);
			pp->base_offset = -1;
		}
		if (r->err)
			goto bad;
	}
	if (r->err || kr_remaining(r) != 0)
		goto bad;
	return st;

bad:
	produce_state_free(st);
	return NULL;
}

/* The Produce response, v0-7; frees the state. */
static void
produce_respond(ProduceState *st)
{
	Request    *req = st->req;
	int16_t		version = req->api_version;
	KWriter		w;
	int32_t		t;

	kw_init(&w);
	kw_i32(&w, st->ntopics);
	for (t = 0; t < st->ntopics; t++)
	{
		ProduceTopic *topic = &st->topics[t];
		int32_t		p;

		kw_string(&w, topic->name, topic->name_len);
		kw_i32(&w, topic->npartitions);
		for (p = 0; p < topic->npartitions; p++)
		{
			ProducePartition *pp = &topic->partitions[p];

			kw_i32(&w, pp->partition);
			kw_i16(&w, pp->error);
			kw_i64(&w, pp->error == KERR_NONE ? pp->base_offset : -1);
			if (version >= 2)
				kw_i64(&w, -1); /* log_append_time: CreateTime is kept */
			if (version >= 5)
				kw_i64(&w, -1); /* log_start_offset: not looked up */
		}
	}
	if (version >= 1)
		kw_i32(&w, 0);			/* throttle_time_ms */
	produce_state_free(st);
	request_respond(req, &w);
	kw_free(&w);
}

/*
 * The Kafka error for a failed pgq_send_batch.  The statement is built
 * here, so some SQLSTATEs can mean only one thing: 22023 is a partition
 * out of range (the partition is explicit), 22P03 and 22021 headers that
 * are not Kafka's encoding or a key that is not UTF-8.
 */
static int16_t
produce_error_for_sqlstate(const char *sqlstate)
{
	if (sqlstate != NULL)
	{
		if (strcmp(sqlstate, "22023") == 0)
			return KERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (strcmp(sqlstate, "22P03") == 0 || strcmp(sqlstate, "22021") == 0)
			return KERR_INVALID_RECORD;
		if (strcmp(sqlstate, "22008") == 0)
			return KERR_INVALID_TIMESTAMP;
	}
	return kafka_error_for_sqlstate(sqlstate);
}

/* The Kafka error of a produce statement's result, and its first offset. */
static int16_t
produce_result(PGresult *res, const char *sqlstate, int32_t partition, int64_t *base_offset)
{
	int16_t		error;

	if (res != NULL && sqlstate == NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQntuples(res) == 1 && PQnfields(res) == 1)
	{
		*base_offset = pgr_int8(res, 0, 0, -1);
		return KERR_NONE;
	}
	error = produce_error_for_sqlstate(sqlstate);
	if (error == KERR_UNKNOWN_SERVER_ERROR || error == KERR_NOT_LEADER_OR_FOLLOWER)
		gw_log("produce to partition %d failed: %s", partition,
			   res != NULL ? PQresultErrorMessage(res) : "no connection to Postgres");
	return error;
}

static void
produce_done(PGresult *res, const char *sqlstate, void *arg)
{
	ProducePartition *pp = arg;
	ProduceState *st = pp->st;

	pp->error = produce_result(res, sqlstate, pp->partition, &pp->base_offset);
	if (--st->pending == 0)
		produce_finish_all(st);
}

/* A batch's first timestamp that Postgres cannot hold is a Kafka error. */
static int16_t
produce_check_timestamps(const KRecordBatch *b)
{
	int32_t		i;

	for (i = 0; i < b->count; i++)
	{
		int64_t		ts = b->records[i].timestamp;

		if (ts != -1 && (ts < PGB_MIN_TIMESTAMP_MS || ts > PGB_MAX_TIMESTAMP_MS))
			return KERR_INVALID_TIMESTAMP;
	}
	return KERR_NONE;
}

/*
 * The statement's parameters for decoded batches of one partition, their
 * records in order (the producer id, epoch and sequence are the first
 * batch's: batches go together only without them).  Their timestamps were
 * checked.
 */
static void
produce_params(PgParams *params, const ProduceTopic *topic, const ProducePartition *pp,
			   KRecordBatch *const *batches, int nbatches)
{
	const KRecordBatch *first = batches[0];
	bool		any_key = false;
	bool		any_headers = false;
	bool		any_timestamp = false;
	KWriter    *values;
	KWriter    *keys = NULL;
	KWriter    *headers = NULL;
	KWriter    *timestamps = NULL;
	int32_t		count = 0;
	int			n;
	int32_t		i;

	for (n = 0; n < nbatches; n++)
		for (i = 0; i < batches[n]->count; i++)
		{
			const KRecord *rec = &batches[n]->records[i];

			any_key |= rec->key != NULL;
			/* a header count of 0 is the one byte 0: no headers */
			any_headers |= rec->headers_len > 1;
			any_timestamp |= rec->timestamp != -1;
			count++;
		}

	/* the parameters, in the statement's order: arrays absent are NULL */
	pgp_text(params, topic->name, topic->name_len);
	values = pgp_array(params, PGB_BYTEA_ARRAY_OID, PGB_BYTEA_OID, count);
	if (any_key)
		keys = pgp_array(params, PGB_BYTEA_ARRAY_OID, PGB_BYTEA_OID, count);
	else
		pgp_null(params, PGB_BYTEA_ARRAY_OID);
	pgp_int4(params, pp->partition);
	if (any_headers)
		headers = pgp_array(params, PGB_BYTEA_ARRAY_OID, PGB_BYTEA_OID, count);
	else
		pgp_null(params, PGB_BYTEA_ARRAY_OID);
	if (any_timestamp)
		timestamps = pgp_array(params, PGB_TIMESTAMPTZ_ARRAY_OID, PGB_TIMESTAMPTZ_OID, count);
	else
		pgp_null(params, PGB_TIMESTAMPTZ_ARRAY_OID);
	if (first->producer_id >= 0)
	{
		pgp_int8(params, first->producer_id);
		pgp_int4(params, first->producer_epoch);
		pgp_int4(params, first->base_sequence);
	}
	else
	{
		pgp_null(params, PGB_INT8_OID);
		pgp_null(params, PGB_INT4_OID);
		pgp_null(params, PGB_INT4_OID);
	}
	if (values == NULL || (any_key && keys == NULL) || (any_headers && headers == NULL) ||
		(any_timestamp && timestamps == NULL))
		return;					/* too many parameters: pgp_submit fails */

	for (n = 0; n < nbatches; n++)
		for (i = 0; i < batches[n]->count; i++)
		{
			const KRecord *rec = &batches[n]->records[i];

			pga_bytes(values, rec->value, rec->value_len);
			if (keys)
				pga_bytes(keys, rec->key, rec->key_len);
			if (headers)
			{
				if (rec->headers_len > 1)
					pga_bytes(headers, rec->headers, rec->headers_len);
				else
					pga_null(headers);
			}
			if (timestamps)
			{
				if (rec->timestamp == -1)
					pga_null(timestamps);	/* none given: the time of the append */
				else
					pga_timestamptz_ms(timestamps, rec->timestamp);
			}
		}
}

/*
 * Decodes a partition's batch and submits its statement; a partition that
 * fails before that gets its error at once.
 */
/*
 * Decodes a partition's records into its one batch (*batch, to be freed
 * with records_free(*batch, 1)), and counts them; a Kafka error (nothing
 * to free) if they are not one good batch whose timestamps Postgres holds.
 */
static int16_t
produce_decode(ProducePartition *pp, KRecordBatch **batch)
{
	int			nbatches = 0;
	int16_t		error;

	*batch = NULL;
	if (pp->records == NULL || pp->records_len == 0)
		return KERR_INVALID_RECORD;
	error = records_decode(pp->records, (size_t) pp->records_len, PRODUCE_MAX_DECOMPRESSED,
						   batch, &nbatches);
	if (error != KERR_NONE)
		return error;
	/* Kafka takes exactly one batch per partition since Produce v3 */
	error = nbatches != 1 ? KERR_INVALID_RECORD : produce_check_timestamps(&(*batch)[0]);
	if (error != KERR_NONE)
	{
		records_free(*batch, nbatches);
		*batch = NULL;
		return error;
	}
	pp->count = (*batch)[0].count;
	return KERR_NONE;
}

static void
produce_partition(ProduceState *st, const ProduceTopic *topic, ProducePartition *pp,
				  PgPoolKind pool)
{
	KRecordBatch *batch;
	PgParams	params;

	pp->error = produce_decode(pp, &batch);
	if (pp->error != KERR_NONE)
		return;
	pgp_init(&params);
	produce_params(&params, topic, pp, &batch, 1);
	st->pending++;
	if (!pgp_submit(&params, pool, produce_sql, true, produce_done, pp))
	{
		st->pending--;
		pp->error = KERR_UNKNOWN_SERVER_ERROR;	/* out of memory */
	}
	records_free(batch, 1);
}

/* All statements ended: answer, or for acks=0 end the request silently. */
static void
produce_finish(ProduceState *st)
{
	Request    *req = st->req;

	if (st->acks == 0)
	{
		produce_state_free(st);
		request_no_response(req);
		return;
	}
	produce_respond(st);
}

/* Ends a request and then those taken along with it, in order. */
static void
produce_finish_all(ProduceState *st)
{
	ProduceState *taken[PRODUCE_MAX_TOGETHER - 1];
	int			ntaken = st->ntaken;
	int			i;

	memcpy(taken, st->taken, sizeof(ProduceState *) * ntaken);
	produce_finish(st);
	for (i = 0; i < ntaken; i++)
		produce_finish(taken[i]);
}

/* ------------------------------------------------- requests that go together */

/* What a request must be to go with another: a request to one partition. */
typedef struct ProduceTarget
{
	int16_t		acks;
	const char *name;
	int32_t		name_len;
	int32_t		partition;
	int32_t		records_len;
	/* while taking: what is taken so far */
	int			count;
	int64_t		bytes;
} ProduceTarget;

/*
 * Whether a Produce request's body is one partition's batch without a
 * producer id (the batch header's field at byte 43 is -1: eight 0xff), and
 * which; it does not allocate, so that a request can be looked at in the
 * connection's input before it is taken.
 */
static bool
produce_target(KReader r, int16_t version, ProduceTarget *t)
{
	const uint8_t *records;
	static const uint8_t no_producer[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (version >= 3)
	{
		const char *txn;
		int32_t		txn_len;

		(void) kr_string(&r, &txn, &txn_len);
		if (txn != NULL)
			return false;		/* transactional */
	}
	t->acks = kr_i16(&r);
	(void) kr_i32(&r);
	if (kr_array_len(&r, 2 + 4) != 1)
		return false;
	(void) kr_string(&r, &t->name, &t->name_len);
	if (kr_array_len(&r, 4 + 4) != 1)
		return false;
	t->partition = kr_i32(&r);
	(void) kr_bytes(&r, &records, &t->records_len);
	return !r.err && t->name != NULL && kr_remaining(&r) == 0 &&
		records != NULL && t->records_len >= 61 &&
		memcmp(records + 43, no_producer, sizeof(no_producer)) == 0;
}

/* request_take_next's test: the same target, within the bounds */
static bool
produce_goes_along(const Request *next, void *arg)
{
	ProduceTarget *t = arg;
	ProduceTarget n;

	if (!produce_target(next->body, next->api_version, &n) ||
		n.acks != t->acks || n.partition != t->partition ||
		n.name_len != t->name_len || memcmp(n.name, t->name, n.name_len) != 0 ||
		t->count + 1 > PRODUCE_MAX_TOGETHER ||
		t->bytes + n.records_len > PRODUCE_MAX_TOGETHER_BYTES)
		return false;
	t->count++;
	t->bytes += n.records_len;
	return true;
}

/*
 * Takes along the requests to the same partition that wait behind st's,
 * if st's (whose body is body) is one that can go with others.
 */
static void
produce_take_along(ProduceState *st, KReader body)
{
	ProduceTarget t;
	Request    *next;

	if (!produce_target(body, st->req->api_version, &t))
		return;
	t.count = 1;
	t.bytes = t.records_len;
	while ((next = request_take_next(st->req, produce_goes_along, &t)) != NULL)
	{
		ProduceState *nst = produce_read(next);

		if (nst == NULL)
		{
			/* it was read once already: only memory can fail here */
			request_close(next, "out of memory");
			break;
		}
		st->taken[st->ntaken++] = nst;
	}
}

/* The partition of request i of a group: 0 is st's, then those it took. */
static ProducePartition *
together_partition(ProduceState *st, int i)
{
	return &(i == 0 ? st : st->taken[i - 1])->topics[0].partitions[0];
}

static void
produce_together_done(PGresult *res, const char *sqlstate, void *arg)
{
	ProduceState *st = arg;
	int64_t		offset = -1;
	int16_t		error = produce_result(res, sqlstate, st->topics[0].partitions[0].partition,
									   &offset);
	int			i;

	/* the records of the requests that got into the statement, in order */
	for (i = 0; i <= st->ntaken; i++)
	{
		ProducePartition *pp = together_partition(st, i);

		if (pp->error != KERR_NONE)
			continue;			/* it failed on its own, before the statement */
		pp->error = error;
		pp->base_offset = offset;
		offset += pp->count;
	}
	produce_finish_all(st);
}

/*
 * Appends the records of a request and of those taken along with it with
 * one statement; a request whose batch does not decode gets its own error.
 */
static void
produce_together(ProduceState *st, PgPoolKind pool)
{
	KRecordBatch *batches[PRODUCE_MAX_TOGETHER];
	int			nbatches = 0;
	PgParams	params;
	bool		submitted = false;
	int			i;

	/* (the batches have no producer id: produce_target read it) */
	for (i = 0; i <= st->ntaken; i++)
	{
		ProducePartition *pp = together_partition(st, i);

		pp->error = produce_decode(pp, &batches[nbatches]);
		if (pp->error == KERR_NONE)
			nbatches++;
	}
	if (nbatches > 0)
	{
		pgp_init(&params);
		produce_params(&params, &st->topics[0], &st->topics[0].partitions[0], batches, nbatches);
		submitted = pgp_submit(&params, pool, produce_sql, true, produce_together_done, st);
	}
	for (i = 0; i < nbatches; i++)
		records_free(batches[i], 1);
	for (i = 0; !submitted && i <= st->ntaken; i++)
	{
		ProducePartition *pp = together_partition(st, i);

		if (pp->error == KERR_NONE)
			pp->error = KERR_UNKNOWN_SERVER_ERROR;	/* out of memory */
	}
	if (!submitted)
		produce_finish_all(st);
}

/* An advertised version we do not serve: every partition gets the error. */
static void
produce_refuse(ProduceState *st, int16_t error)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
			st->topics[t].partitions[p].error = error;
	produce_respond(st);
}

void
api_produce(Request *req)
{
	KReader		body = req->body;	/* before produce_read reads it */
	ProduceState *st = produce_read(req);
	PgPoolKind	pool;
	int32_t		t,
				p;

	if (st == NULL)
	{
		request_close(req, "malformed Produce request");
		return;
	}
	if (req->api_version < PRODUCE_MIN_SERVED)
	{
		/* the old message sets; clients pick a newer version */
		produce_refuse(st, KERR_UNSUPPORTED_VERSION);
		return;
	}
	if (st->acks != 0 && st->acks != 1 && st->acks != -1)
	{
		produce_refuse(st, KERR_INVALID_REQUIRED_ACKS);
		return;
	}
	pool = st->acks == -1 ? POOL_DEFAULT : POOL_LOCAL;

	produce_take_along(st, body);
	if (st->ntaken > 0)
	{
		produce_together(st, pool);
		return;
	}
	st->pending = 1;			/* until every statement is submitted */
	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
			produce_partition(st, &st->topics[t], &st->topics[t].partitions[p], pool);
	if (--st->pending == 0)
		produce_finish_all(st);
}

/* ------------------------------------------------------- InitProducerId */

static void
init_producer_done(PGresult *res, const char *sqlstate, void *arg)
{
	Request    *req = arg;
	int16_t		error = KERR_NONE;
	int64_t		producer_id = -1;
	int16_t		epoch = -1;
	KWriter		w;

	if (res != NULL && sqlstate == NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQntuples(res) == 1 && PQnfields(res) == 2)
	{
		producer_id = pgr_int8(res, 0, 0, -1);
		epoch = (int16_t) pgr_int4(res, 0, 1, -1);
	}
	else
	{
		/* 42501: another role's transactional id, not a topic's right */
		error = sqlstate != NULL && strcmp(sqlstate, "42501") == 0 ?
			KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED : kafka_error_for_sqlstate(sqlstate);
		gw_log("InitProducerId failed: %s",
			   res != NULL ? PQresultErrorMessage(res) : "no connection to Postgres");
	}
	kw_init(&w);
	kw_i32(&w, 0);				/* throttle_time_ms */
	kw_i16(&w, error);
	kw_i64(&w, producer_id);
	kw_i16(&w, epoch);
	request_respond(req, &w);
	kw_free(&w);
}

/*
 * InitProducerId v0-1: pgq_init_producer(transactional_id).  The
 * transaction timeout is read and ignored: pgqueue has no Kafka
 * transactions to time out.  A producer without a transactional id gets a
 * new id with epoch 0; with one, its id and the next epoch, which fences
 * the earlier ones.
 */
void
api_init_producer_id(Request *req)
{
	KReader    *r = &req->body;
	const char *txn;
	int32_t		txn_len;
	PgParams	params;

	(void) kr_string(r, &txn, &txn_len);
	(void) kr_i32(r);			/* transaction_timeout_ms */
	if (r->err || kr_remaining(r) != 0)
	{
		request_close(req, "malformed InitProducerId request");
		return;
	}
	pgp_init(&params);
	pgp_text(&params, txn, txn_len);
	if (!pgp_submit(&params, POOL_DEFAULT,
					"SELECT producer_id, producer_epoch FROM pgq_init_producer($1)",
					true, init_producer_done, req))
		request_close(req, "out of memory");
}
