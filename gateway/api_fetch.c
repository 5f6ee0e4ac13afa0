/*-------------------------------------------------------------------------
 *
 * api_fetch.c
 *	  Fetch (v4-11) and ListOffsets (v1-3): reading partitions with
 *	  pgq_fetch_partitions, long polls with pgq_wait, and offsets by
 *	  position or time.
 *
 * A Fetch is one pgq_fetch_partitions call for all of the request's
 * partitions, with their fetch offsets, the request's max_bytes and each
 * partition's max bytes (the call serves its first record even if it is
 * larger, as Kafka does: KIP-74).  pgqueue returns, per partition, its
 * records and a row with the bounds that read saw: log start, high
 * watermark, last stable offset, where the next read continues, and an
 * error.  Each partition's records become one uncompressed RecordBatch
 * (records.c).
 *
 * Gaps: a rolled-back send leaves offsets that no record will ever have.
 * Kafka's clients move to a batch's last offset + 1, and librdkafka
 * reports the end of a partition only when its fetch offset reaches the
 * last stable offset, so a read that ended on a gap stretches its batch's
 * last offset to next_offset - 1 (or, when it found no record, answers a
 * control batch covering the gap, with a transaction marker at its last
 * offset): the client moves past it, and `kcat -e` ends even when a
 * partition's tail was rolled back.  A control batch rather than an empty
 * one, because kafkajs moves only to the offset after a batch's last
 * record, control records included (on an empty batch it fetched the same
 * offset again at once, in a busy loop).  The gap's batch goes only to
 * Fetch v5 and later: kafka-python 2.0.2, which fetches with v4, fails on
 * a batch without records (its dpkp/kafka-python#2132) and could not move
 * past one anyway (it continues after its last record).  A v4 reader at a
 * gap alone gets no records, as if caught up, and its long poll waits from
 * the gap's end, for the next record.
 *
 * Long poll: when the read found nothing (no record, no gap to move past,
 * no error) and the request may wait (max_wait_ms > 0), the request is
 * parked (longpoll.c) until a commit makes one of its partitions readable,
 * or until its time is up; then the partitions are read again and the
 * answer goes out.  A request parked alone reads with a read that waits
 * (pgq_fetch_partitions with timeout_ms): the records that end its wait
 * come back in the same statement.  Parked requests beyond the waiting
 * pool share pgq_wait statements, and read again when theirs ends.
 * Nothing polls: a wait sleeps in Postgres until a commit wakes it.
 * min_bytes is taken as one record: whatever the read finds is answered.
 *
 * A consumer that is caught up fetches from the last stable offset its
 * previous answer gave.  The gateway remembers the last stable offset each
 * of its reads found per partition (a hint table, hashed, overwritten on a
 * collision): a request that may wait and whose every partition is at or
 * past its hint is parked at once, without the read that would find
 * nothing.  A hint that is behind (records came meanwhile) costs nothing:
 * the parked request's wait ends at once.
 *
 * Fetch sessions (KIP-227) are not kept: every answer has session id 0,
 * which tells clients to send full requests.  Aborted transactions are
 * always none: pgqueue never serves a record of a rolled-back send.
 *
 *-------------------------------------------------------------------------
 */
#include "api_data.h"
#include "longpoll.h"
#include "pgbin.h"
#include "records.h"

#include <stdlib.h>
#include <string.h>

/*
 * Bounds on what one Fetch reads, whatever the client asks: they bound the
 * result the gateway holds in memory (librdkafka asks for 50 MB at most by
 * default, fetch.max.bytes).
 */
#define FETCH_MAX_BYTES		(64 * 1024 * 1024)
#define FETCH_MAX_RECORDS	100000

static const char fetch_sql[] =
"SELECT msg_offset, key, value, pgq_headers_to_kafka(headers), \"timestamp\", "
"log_start_offset, high_watermark, last_stable_offset, next_offset, error "
"FROM pgq_fetch_partitions($1::text[], $2::int4[], $3::int8[], $4, $5, NULL, $6::int4[], $7)";

/* the columns of fetch_sql */
enum
{
	FC_OFFSET,
	FC_KEY,
	FC_VALUE,
	FC_HEADERS,
	FC_TIMESTAMP,
	FC_LOG_START,
	FC_HWM,
	FC_LSO,
	FC_NEXT,
	FC_ERROR,
	FC_NCOLUMNS
};

typedef struct FetchPartition
{
	int32_t		partition;
	int64_t		fetch_offset;
	int32_t		max_bytes;
	/* the read's answer */
	int16_t		error;
	int64_t		log_start;
	int64_t		hwm;
	int64_t		lso;
	int64_t		next_offset;	/* -1: none (an error) */
	int			first_row;		/* its records' rows in the result */
	int			nrecords;
} FetchPartition;

typedef struct FetchTopic
{
	const char *name;
	int32_t		name_len;
	int32_t		npartitions;
	FetchPartition *partitions;
} FetchTopic;

typedef struct FetchState
{
	Request    *req;
	int32_t		max_wait_ms;
	int32_t		max_bytes;
	int32_t		ntopics;
	FetchTopic *topics;
	int			nentries;		/* partitions of all topics */
	int64_t		start_ms;		/* when the request came: the wait's deadline */
	bool		waited;			/* the long poll is over: answer whatever comes */
	bool		gap_batches;	/* a gap alone is answered with a control batch */
} FetchState;

static void fetch_done(PGresult *res, const char *sqlstate, void *arg);

/* ---------------------------------------------------- caught-up hints */

#define FETCH_HINTS		4096	/* a power of two */

typedef struct FetchHint
{
	uint64_t	key;			/* 0: empty */
	int64_t		lso;
} FetchHint;

static FetchHint fetch_hints[FETCH_HINTS];

/* FNV-1a over the topic's name and the partition; never 0. */
static uint64_t
fetch_hint_key(const char *name, int32_t name_len, int32_t partition)
{
	uint64_t	h = 14695981039346656037u;
	int			i;

	for (i = 0; i < name_len; i++)
		h = (h ^ (uint8_t) name[i]) * 1099511628211u;
	for (i = 0; i < 4; i++)
		h = (h ^ (uint8_t) (partition >> (8 * i))) * 1099511628211u;
	return h | 1;
}

static void
fetch_hint_set(const char *name, int32_t name_len, int32_t partition, int64_t lso)
{
	uint64_t	key = fetch_hint_key(name, name_len, partition);
	FetchHint  *hint = &fetch_hints[key & (FETCH_HINTS - 1)];

	hint->key = key;
	hint->lso = lso;
}

/* Whether the partition's fetch offset is at or past its hint. */
static bool
fetch_hint_caught_up(const char *name, int32_t name_len, int32_t partition, int64_t offset)
{
	uint64_t	key = fetch_hint_key(name, name_len, partition);
	const FetchHint *hint = &fetch_hints[key & (FETCH_HINTS - 1)];

	return hint->key == key && offset >= hint->lso;
}

/* Whether the partition's read found a gap to move past and no record. */
static inline bool
fetch_gap_alone(const FetchPartition *fp)
{
	return fp->nrecords == 0 && fp->error == KERR_NONE && fp->next_offset > fp->fetch_offset;
}

static void
fetch_state_free(FetchState *st)
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
 * Reads a Fetch request (v0-11; the fields each version added are read
 * only from it on) into a new state, or NULL if it is malformed.
 */
static FetchState *
fetch_read(Request *req)
{
	KReader    *r = &req->body;
	int16_t		v = req->api_version;
	FetchState *st = calloc(1, sizeof(FetchState));
	size_t		part_size;
	int32_t		t;

	if (st == NULL)
		return NULL;
	st->req = req;
	(void) kr_i32(r);			/* replica_id: a consumer's is -1 */
	st->max_wait_ms = kr_i32(r);
	(void) kr_i32(r);			/* min_bytes: one record is enough */
	st->max_bytes = v >= 3 ? kr_i32(r) : INT32_MAX;
	if (v >= 4)
		(void) kr_i8(r);		/* isolation_level: pgqueue reads committed only */
	if (v >= 7)
	{
		(void) kr_i32(r);		/* session_id */
		(void) kr_i32(r);		/* session_epoch */
	}
	part_size = 4 + 8 + 4 + (v >= 9 ? 4 : 0) + (v >= 5 ? 8 : 0);
	st->ntopics = kr_array_len(r, 2 + 4);
	if (r->err)
		goto bad;
	st->topics = calloc(st->ntopics ? st->ntopics : 1, sizeof(FetchTopic));
	if (st->topics == NULL)
		goto bad;
	for (t = 0; t < st->ntopics; t++)
	{
		FetchTopic *topic = &st->topics[t];
		int32_t		p;

		(void) kr_string(r, &topic->name, &topic->name_len);
		topic->npartitions = kr_array_len(r, part_size);
		if (r->err || topic->name == NULL)
			goto bad;
		topic->partitions = calloc(topic->npartitions ? topic->npartitions : 1,
								   sizeof(FetchPartition));
		if (topic->partitions == NULL)
			goto bad;
		for (p = 0; p < topic->npartitions; p++)
		{
			FetchPartition *fp = &topic->partitions[p];

			fp->partition = kr_i32(r);
			if (v >= 9)
				(void) kr_i32(r);	/* current_leader_epoch */
			fp->fetch_offset = kr_i64(r);
			if (v >= 5)
				(void) kr_i64(r);	/* log_start_offset: a follower's */
			fp->max_bytes = kr_i32(r);
			fp->hwm = fp->lso = fp->log_start = fp->next_offset = -1;
		}
		st->nentries += topic->npartitions;
	}
	if (v >= 7)
	{
		/* forgotten topics: only fetch sessions have any */
		int32_t		n = kr_array_len(r, 2 + 4);

		for (t = 0; t < n && !r->err; t++)
		{
			const char *name;
			int32_t		name_len;
			int32_t		np;

			(void) kr_string(r, &name, &name_len);
			np = kr_array_len(r, 4);
			(void) kr_take(r, (size_t) np * 4);
		}
	}
	if (v >= 11)
	{
		const char *rack;
		int32_t		rack_len;

		(void) kr_string(r, &rack, &rack_len);
	}
	if (r->err || kr_remaining(r) != 0)
		goto bad;
	return st;

bad:
	fetch_state_free(st);
	return NULL;
}

/* The Kafka error of a partition row's error column. */
static int16_t
fetch_partition_error(const char *sqlstate)
{
	if (strcmp(sqlstate, "42704") == 0)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (strcmp(sqlstate, "22023") == 0)
		return KERR_OFFSET_OUT_OF_RANGE;
	return kafka_error_for_sqlstate(sqlstate);
}

/*
 * Takes pgq_fetch_partitions's result apart: each partition's records are
 * rows first_row .. first_row + nrecords - 1, followed by its partition
 * row.  Returns false if the result does not have that shape.
 */
static bool
fetch_take_result(FetchState *st, const PGresult *res)
{
	int			nrows = PQntuples(res);
	int			row = 0;
	int32_t		t,
				p;

	if (PQnfields(res) != FC_NCOLUMNS)
		return false;
	for (t = 0; t < st->ntopics; t++)
	{
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			FetchPartition *fp = &st->topics[t].partitions[p];

			fp->first_row = row;
			while (row < nrows && !pgr_isnull(res, row, FC_OFFSET))
				row++;
			if (row >= nrows)
				return false;
			fp->nrecords = row - fp->first_row;
			fp->log_start = pgr_int8(res, row, FC_LOG_START, -1);
			fp->hwm = pgr_int8(res, row, FC_HWM, -1);
			fp->lso = pgr_int8(res, row, FC_LSO, -1);
			fp->next_offset = pgr_int8(res, row, FC_NEXT, -1);
			fp->error = pgr_isnull(res, row, FC_ERROR) ? KERR_NONE :
				fetch_partition_error(PQgetvalue(res, row, FC_ERROR));
			if (fp->error == KERR_NONE && fp->lso >= 0)
				fetch_hint_set(st->topics[t].name, st->topics[t].name_len, fp->partition,
							   fp->lso);
			row++;
		}
	}
	return row == nrows;
}

/* Whether the read has something to answer at once, rather than wait. */
static bool
fetch_has_answer(const FetchState *st)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
	{
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			const FetchPartition *fp = &st->topics[t].partitions[p];

			if (fp->nrecords > 0 || fp->error != KERR_NONE ||
				(st->gap_batches && fetch_gap_alone(fp)))
				return true;
		}
	}
	return false;
}

/*
 * Appends a partition's records: one batch of its records, its last offset
 * stretched over a trailing gap, or a control batch over a gap alone (if
 * the request's version takes one).
 */
static void
fetch_write_records(KWriter *w, const FetchState *st, const FetchPartition *fp,
					const PGresult *res, KRecordOut *recs)
{
	size_t		at = kw_reserve_i32(w);
	size_t		start = w->len;
	int			i;

	for (i = 0; i < fp->nrecords; i++)
	{
		int			row = fp->first_row + i;
		KRecordOut *rec = &recs[i];

		rec->offset = pgr_int8(res, row, FC_OFFSET, -1);
		rec->timestamp = pgr_timestamptz_ms(res, row, FC_TIMESTAMP, -1);
		rec->key = pgr_isnull(res, row, FC_KEY) ? NULL :
			(const uint8_t *) PQgetvalue(res, row, FC_KEY);
		rec->key_len = rec->key ? PQgetlength(res, row, FC_KEY) : -1;
		rec->value = pgr_isnull(res, row, FC_VALUE) ? NULL :
			(const uint8_t *) PQgetvalue(res, row, FC_VALUE);
		rec->value_len = rec->value ? PQgetlength(res, row, FC_VALUE) : -1;
		rec->headers = pgr_isnull(res, row, FC_HEADERS) ? NULL :
			(const uint8_t *) PQgetvalue(res, row, FC_HEADERS);
		rec->headers_len = rec->headers ? PQgetlength(res, row, FC_HEADERS) : 0;
	}
	if (fp->nrecords > 0)
		records_encode(w, recs[0].offset, recs, fp->nrecords,
					   fp->next_offset > recs[fp->nrecords - 1].offset ? fp->next_offset - 1 : -1);
	else if (st->gap_batches && fetch_gap_alone(fp))
		records_encode_gap_marker(w, fp->fetch_offset, fp->next_offset - 1);
	kw_patch_i32(w, at, (int32_t) (w->len - start));
}

/*
 * The Fetch response (v0-11) from the read's result (NULL: none, every
 * partition has its error set); frees the state.
 */
static void
fetch_respond(FetchState *st, const PGresult *res)
{
	Request    *req = st->req;
	int16_t		v = req->api_version;
	KRecordOut *recs = NULL;
	KWriter		w;
	int32_t		t,
				p;

	if (res != NULL && PQntuples(res) > 0)
	{
		recs = malloc(sizeof(KRecordOut) * (size_t) PQntuples(res));
		if (recs == NULL)
		{
			fetch_state_free(st);
			request_close(req, "out of memory");
			return;
		}
	}
	kw_init(&w);
	if (v >= 1)
		kw_i32(&w, 0);			/* throttle_time_ms */
	if (v >= 7)
	{
		kw_i16(&w, KERR_NONE);
		kw_i32(&w, 0);			/* session_id: no fetch sessions */
	}
	kw_i32(&w, st->ntopics);
	for (t = 0; t < st->ntopics; t++)
	{
		FetchTopic *topic = &st->topics[t];

		kw_string(&w, topic->name, topic->name_len);
		kw_i32(&w, topic->npartitions);
		for (p = 0; p < topic->npartitions; p++)
		{
			FetchPartition *fp = &topic->partitions[p];

			kw_i32(&w, fp->partition);
			kw_i16(&w, fp->error);
			kw_i64(&w, fp->hwm);
			if (v >= 4)
			{
				kw_i64(&w, fp->lso);
				if (v >= 5)
					kw_i64(&w, fp->log_start);
				kw_i32(&w, 0);	/* aborted_transactions: none */
			}
			if (v >= 11)
				kw_i32(&w, -1); /* preferred_read_replica: this one */
			if (res != NULL)
				fetch_write_records(&w, st, fp, res, recs);
			else
				kw_i32(&w, 0);	/* no records */
		}
	}
	free(recs);
	fetch_state_free(st);
	request_respond(req, &w);
	kw_free(&w);
}

/* Every partition gets one error (a failed statement, an old version). */
static void
fetch_fail(FetchState *st, int16_t error)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			st->topics[t].partitions[p].error = error;
			st->topics[t].partitions[p].nrecords = 0;
		}
	fetch_respond(st, NULL);
}

/*
 * Appends the (topic, partition, offset) entries of the read or the wait,
 * in the request's order, to three arrays.  The wait starts after a gap
 * that the read found alone (and did not answer): what ends it is a record.
 */
static void
fetch_entries(FetchState *st, KWriter *topics, KWriter *parts, KWriter *offsets, bool wait)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			const FetchPartition *fp = &st->topics[t].partitions[p];

			pga_bytes(topics, st->topics[t].name, st->topics[t].name_len);
			pga_int4(parts, fp->partition);
			pga_int8(offsets, wait && fetch_gap_alone(fp) ? fp->next_offset : fp->fetch_offset);
		}
}

/* The read's entries, as three array parameters. */
static void
fetch_entry_params(FetchState *st, PgParams *params)
{
	KWriter    *topics = pgp_array(params, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, st->nentries);
	KWriter    *parts = pgp_array(params, PGB_INT4_ARRAY_OID, PGB_INT4_OID, st->nentries);
	KWriter    *offsets = pgp_array(params, PGB_INT8_ARRAY_OID, PGB_INT8_OID, st->nentries);

	if (topics != NULL && parts != NULL && offsets != NULL)
		fetch_entries(st, topics, parts, offsets, false);
}

/*
 * Submits the read of the request's partitions on pool, waiting up to
 * timeout_ms for one of them to have something to answer (as a parked
 * request's own read, longpoll.c).
 */
static bool
fetch_read_submit(void *arg, PgPoolKind pool, int32_t timeout_ms, PgCallback done,
				  void *done_arg)
{
	FetchState *st = arg;
	PgParams	params;
	KWriter    *w;
	int32_t		t,
				p;

	pgp_init(&params);
	fetch_entry_params(st, &params);
	pgp_int4(&params, FETCH_MAX_RECORDS);
	pgp_int4(&params, st->max_bytes > 0 && st->max_bytes < FETCH_MAX_BYTES ?
			 st->max_bytes : FETCH_MAX_BYTES);
	w = pgp_array(&params, PGB_INT4_ARRAY_OID, PGB_INT4_OID, st->nentries);
	for (t = 0; w && t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			/* pgqueue takes only positive limits; the first record comes anyway */
			int32_t		max_bytes = st->topics[t].partitions[p].max_bytes;

			pga_int4(w, max_bytes > 0 ? max_bytes : 1);
		}
	pgp_int4(&params, timeout_ms);
	return pgp_submit(&params, pool, fetch_sql, true, done, done_arg);
}

/* Reads the request's partitions. */
static void
fetch_submit(FetchState *st)
{
	if (!fetch_read_submit(st, POOL_DEFAULT, 0, fetch_done, st))
		fetch_fail(st, KERR_UNKNOWN_SERVER_ERROR);
}

/* The wait's entries (longpoll.c). */
static void
fetch_wait_entries(void *arg, KWriter *topics, KWriter *parts, KWriter *offsets)
{
	fetch_entries(arg, topics, parts, offsets, true);
}

static void
fetch_woken(void *arg)
{
	FetchState *st = arg;

	/* whatever ended the wait (a commit, the timeout, an error), read again */
	st->waited = true;
	fetch_submit(st);
}

/* Its result: the long poll is over, whatever it found is the answer. */
static void
fetch_answered(void *arg, PGresult *res, const char *sqlstate)
{
	FetchState *st = arg;

	st->waited = true;
	fetch_done(res, sqlstate, st);
}

static const LongPollOps fetch_park_ops = {
	fetch_wait_entries, fetch_woken, fetch_read_submit, fetch_answered
};

/*
 * A request with a gap alone (a v4 reader's) waits from the gap's end, but
 * reads from its fetch offset: its read cannot be the wait.
 */
static const LongPollOps fetch_park_gap_ops = {
	fetch_wait_entries, fetch_woken, NULL, NULL
};

/* Parks the request (its read, if any, found nothing to answer). */
static void
fetch_park(FetchState *st)
{
	bool		gap = false;
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
			gap = gap || fetch_gap_alone(&st->topics[t].partitions[p]);
	longpoll_park(st, st->nentries, st->start_ms + st->max_wait_ms,
				  gap ? &fetch_park_gap_ops : &fetch_park_ops);
}

/* Whether every partition of the request is at or past its hint. */
static bool
fetch_caught_up(const FetchState *st)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
			if (!fetch_hint_caught_up(st->topics[t].name, st->topics[t].name_len,
									  st->topics[t].partitions[p].partition,
									  st->topics[t].partitions[p].fetch_offset))
				return false;
	return true;
}

static void
fetch_done(PGresult *res, const char *sqlstate, void *arg)
{
	FetchState *st = arg;
	int64_t		left;

	if (res == NULL || sqlstate != NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		int16_t		error = kafka_error_for_sqlstate(sqlstate);

		gw_log("Fetch failed: %s",
			   res != NULL ? PQresultErrorMessage(res) : "no connection to Postgres");
		fetch_fail(st, error);
		return;
	}
	if (!fetch_take_result(st, res))
	{
		gw_log("Fetch: pgq_fetch_partitions returned an unexpected result");
		fetch_fail(st, KERR_UNKNOWN_SERVER_ERROR);
		return;
	}
	left = (int64_t) st->max_wait_ms - (monotonic_ms() - st->start_ms);
	if (st->waited || left <= 0 || st->nentries == 0 || fetch_has_answer(st))
	{
		fetch_respond(st, res);
		return;
	}
	fetch_park(st);
}

void
api_fetch(Request *req)
{
	FetchState *st = fetch_read(req);

	if (st == NULL)
	{
		request_close(req, "malformed Fetch request");
		return;
	}
	if (req->api_version < FETCH_MIN_SERVED)
	{
		/* the old message sets; clients pick a newer version */
		fetch_fail(st, KERR_UNSUPPORTED_VERSION);
		return;
	}
	st->start_ms = monotonic_ms();
	st->gap_batches = req->api_version >= 5;
	if (st->nentries == 0)
	{
		fetch_respond(st, NULL);
		return;
	}
	if (st->max_wait_ms > 0 && fetch_caught_up(st))
		fetch_park(st);
	else
		fetch_submit(st);
}

/* ----------------------------------------------------------- ListOffsets */

/*
 * The bounds of every partition, and the offsets for times: one statement.
 * pgq_fetch_partitions from offset -1 reads nothing: it answers each entry
 * with a partition row whose bounds are the partition's (the error is the
 * offset out of range, 22023, or 42704 for an unknown topic or partition),
 * without scanning anything.  An offset for a time is looked up only for a
 * partition that exists (pgq_offsets_for_time fails on an unknown topic),
 * with the timestamp of the record found.
 */
static const char list_offsets_sql[] =
"SELECT q.log_start_offset, q.last_stable_offset, q.error, q.off, "
"CASE WHEN q.off IS NOT NULL THEN "
"(SELECT f.\"timestamp\" FROM pgq_fetch(q.topic, q.part, q.off, 1) f) END "
"FROM (SELECT e.i, e.topic, e.part, b.log_start_offset, b.last_stable_offset, b.error, "
"CASE WHEN b.error IS DISTINCT FROM '42704' AND e.t IS NOT NULL THEN "
"(SELECT o.msg_offset FROM pgq_offsets_for_time(e.topic, e.t) o WHERE o.partition = e.part) END "
"AS off "
"FROM pgq_fetch_partitions($1::text[], $2::int4[], "
"array_fill(-1::bigint, ARRAY[cardinality($2::int4[])]), 1) "
"WITH ORDINALITY AS b(topic, partition, msg_offset, key, value, headers, \"timestamp\", "
"log_start_offset, high_watermark, last_stable_offset, next_offset, error, i) "
"JOIN unnest($1::text[], $2::int4[], $3::timestamptz[]) WITH ORDINALITY AS e(topic, part, t, i) "
"ON e.i = b.i OFFSET 0) q ORDER BY q.i";

/* the columns of list_offsets_sql */
enum
{
	LC_LOG_START,
	LC_LSO,
	LC_ERROR,
	LC_OFFSET,
	LC_TIMESTAMP,
	LC_NCOLUMNS
};

#define LIST_LATEST		(-1)
#define LIST_EARLIEST	(-2)

typedef struct ListPartition
{
	int32_t		partition;
	int64_t		timestamp;		/* asked: -1 latest, -2 earliest, else a time */
	int16_t		error;
	int64_t		found_timestamp;
	int64_t		offset;
} ListPartition;

typedef struct ListTopic
{
	const char *name;
	int32_t		name_len;
	int32_t		npartitions;
	ListPartition *partitions;
} ListTopic;

typedef struct ListState
{
	Request    *req;
	int32_t		ntopics;
	ListTopic  *topics;
	int			nentries;
} ListState;

static void
list_state_free(ListState *st)
{
	int			i;

	if (st == NULL)
		return;
	for (i = 0; i < st->ntopics; i++)
		free(st->topics[i].partitions);
	free(st->topics);
	free(st);
}

/* Reads a ListOffsets request (v0-3), or NULL if it is malformed. */
static ListState *
list_read(Request *req)
{
	KReader    *r = &req->body;
	int16_t		v = req->api_version;
	ListState  *st = calloc(1, sizeof(ListState));
	int32_t		t;

	if (st == NULL)
		return NULL;
	st->req = req;
	(void) kr_i32(r);			/* replica_id */
	if (v >= 2)
		(void) kr_i8(r);		/* isolation_level: see list_offsets_done */
	st->ntopics = kr_array_len(r, 2 + 4);
	if (r->err)
		goto bad;
	st->topics = calloc(st->ntopics ? st->ntopics : 1, sizeof(ListTopic));
	if (st->topics == NULL)
		goto bad;
	for (t = 0; t < st->ntopics; t++)
	{
		ListTopic  *topic = &st->topics[t];
		int32_t		p;

		(void) kr_string(r, &topic->name, &topic->name_len);
		topic->npartitions = kr_array_len(r, 4 + 8 + (v == 0 ? 4 : 0));
		if (r->err || topic->name == NULL)
			goto bad;
		topic->partitions = calloc(topic->npartitions ? topic->npartitions : 1,
								   sizeof(ListPartition));
		if (topic->partitions == NULL)
			goto bad;
		for (p = 0; p < topic->npartitions; p++)
		{
			ListPartition *lp = &topic->partitions[p];

			lp->partition = kr_i32(r);
			lp->timestamp = kr_i64(r);
			if (v == 0)
				(void) kr_i32(r);	/* max_num_offsets */
			lp->offset = -1;
			lp->found_timestamp = -1;
		}
		st->nentries += topic->npartitions;
	}
	if (r->err || kr_remaining(r) != 0)
		goto bad;
	return st;

bad:
	list_state_free(st);
	return NULL;
}

/* The ListOffsets response (v0-3); frees the state. */
static void
list_respond(ListState *st)
{
	Request    *req = st->req;
	int16_t		v = req->api_version;
	KWriter		w;
	int32_t		t,
				p;

	kw_init(&w);
	if (v >= 2)
		kw_i32(&w, 0);			/* throttle_time_ms */
	kw_i32(&w, st->ntopics);
	for (t = 0; t < st->ntopics; t++)
	{
		ListTopic  *topic = &st->topics[t];

		kw_string(&w, topic->name, topic->name_len);
		kw_i32(&w, topic->npartitions);
		for (p = 0; p < topic->npartitions; p++)
		{
			ListPartition *lp = &topic->partitions[p];

			kw_i32(&w, lp->partition);
			kw_i16(&w, lp->error);
			if (v == 0)
				kw_i32(&w, 0);	/* old_style_offsets: v0 is refused */
			else
			{
				kw_i64(&w, lp->error == KERR_NONE ? lp->found_timestamp : -1);
				kw_i64(&w, lp->error == KERR_NONE ? lp->offset : -1);
			}
		}
	}
	list_state_free(st);
	request_respond(req, &w);
	kw_free(&w);
}

static void
list_fail(ListState *st, int16_t error)
{
	int32_t		t,
				p;

	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
			st->topics[t].partitions[p].error = error;
	list_respond(st);
}

/*
 * Latest is the last stable offset, for both isolation levels: pgqueue
 * serves no record past it, and a read_uncommitted client placed at the
 * high watermark would skip the records still pending below it once they
 * commit.  Earliest is the log start; a time gives the first record at or
 * after it, or -1.
 */
static void
list_offsets_done(PGresult *res, const char *sqlstate, void *arg)
{
	ListState  *st = arg;
	int			row = 0;
	int32_t		t,
				p;

	if (res == NULL || sqlstate != NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
		PQntuples(res) != st->nentries || PQnfields(res) != LC_NCOLUMNS)
	{
		gw_log("ListOffsets failed: %s",
			   res != NULL ? PQresultErrorMessage(res) : "no connection to Postgres");
		list_fail(st, sqlstate != NULL || res == NULL ? kafka_error_for_sqlstate(sqlstate) :
				  KERR_UNKNOWN_SERVER_ERROR);
		return;
	}
	for (t = 0; t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++, row++)
		{
			ListPartition *lp = &st->topics[t].partitions[p];

			if (!pgr_isnull(res, row, LC_ERROR) &&
				strcmp(PQgetvalue(res, row, LC_ERROR), "22023") != 0)
			{
				lp->error = fetch_partition_error(PQgetvalue(res, row, LC_ERROR));
				continue;
			}
			lp->error = KERR_NONE;
			if (lp->timestamp == LIST_LATEST)
				lp->offset = pgr_int8(res, row, LC_LSO, -1);
			else if (lp->timestamp == LIST_EARLIEST)
				lp->offset = pgr_int8(res, row, LC_LOG_START, -1);
			else
			{
				lp->offset = pgr_int8(res, row, LC_OFFSET, -1);
				lp->found_timestamp = pgr_timestamptz_ms(res, row, LC_TIMESTAMP, -1);
			}
		}
	list_respond(st);
}

void
api_list_offsets(Request *req)
{
	ListState  *st = list_read(req);
	PgParams	params;
	KWriter    *topics;
	KWriter    *parts;
	KWriter    *times;
	int32_t		t,
				p;

	if (st == NULL)
	{
		request_close(req, "malformed ListOffsets request");
		return;
	}
	if (req->api_version < LIST_OFFSETS_MIN_SERVED)
	{
		list_fail(st, KERR_UNSUPPORTED_VERSION);
		return;
	}
	if (st->nentries == 0)
	{
		list_respond(st);
		return;
	}

	pgp_init(&params);
	topics = pgp_array(&params, PGB_TEXT_ARRAY_OID, PGB_TEXT_OID, st->nentries);
	parts = pgp_array(&params, PGB_INT4_ARRAY_OID, PGB_INT4_OID, st->nentries);
	times = pgp_array(&params, PGB_TIMESTAMPTZ_ARRAY_OID, PGB_TIMESTAMPTZ_OID, st->nentries);
	for (t = 0; times && t < st->ntopics; t++)
		for (p = 0; p < st->topics[t].npartitions; p++)
		{
			ListPartition *lp = &st->topics[t].partitions[p];

			pga_bytes(topics, st->topics[t].name, st->topics[t].name_len);
			pga_int4(parts, lp->partition);
			/* a time Postgres cannot hold finds nothing: none is looked up */
			if (lp->timestamp >= 0 && lp->timestamp <= PGB_MAX_TIMESTAMP_MS)
				pga_timestamptz_ms(times, lp->timestamp);
			else
				pga_null(times);
		}
	if (!pgp_submit(&params, POOL_DEFAULT, list_offsets_sql, true, list_offsets_done, st))
		list_fail(st, KERR_UNKNOWN_SERVER_ERROR);
}
