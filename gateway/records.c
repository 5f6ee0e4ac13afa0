/*-------------------------------------------------------------------------
 *
 * records.c
 *	  Kafka's RecordBatch v2 (magic 2): decoding the batches of a Produce
 *	  request and encoding the batches of a Fetch response.
 *
 * A batch is a 61-byte header (baseOffset, batchLength, partitionLeaderEpoch,
 * magic, crc, attributes, lastOffsetDelta, baseTimestamp, maxTimestamp,
 * producerId, producerEpoch, baseSequence, recordCount) and its records,
 * compressed as a whole if attributes say so.  batchLength counts what
 * follows it; the crc is CRC-32C over attributes to the end.  A record is
 * varints: length, attributes, timestampDelta, offsetDelta, key, value and
 * headers (https://kafka.apache.org/documentation/#recordbatch).
 *
 * Decoding is a Produce request's, so it is strict the way Kafka's broker
 * is (LogValidator): a batch's framing (a length beyond the data, a bad
 * magic or CRC, a stream that does not decompress) is CORRUPT_MESSAGE; a
 * well-framed batch whose content breaks the rules (a record that does not
 * parse, offset deltas other than 0..n-1, a control or transactional
 * batch) is INVALID_RECORD.  Every length is checked against what remains
 * before it is used, and the memory a request can make us allocate is
 * bounded by its size (a record takes at least RECORD_MIN_SIZE bytes) and
 * by max_decompressed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "port/pg_crc32c.h"

#include "gateway.h"
#include "records.h"
#include "compress.h"

/* a batch's header: 61 bytes, 49 of them counted by batchLength */
#define BATCH_HEADER_SIZE		61
#define BATCH_LENGTH_OFFSET		12	/* baseOffset and batchLength */
#define BATCH_CRC_END			21	/* the crc covers what follows it */
#define BATCH_MAGIC				2

/* length, attributes, timestampDelta, offsetDelta, key, value, header count */
#define RECORD_MIN_SIZE			7

#define ATTR_CODEC_MASK			0x07
#define ATTR_TRANSACTIONAL		0x10
#define ATTR_CONTROL			0x20

uint32_t
records_crc32c(const void *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return crc;
}

/*
 * Walks a record's headers (at r: a varint count, then each header's key,
 * never null, and value) to check that they parse.
 */
static bool
check_headers(KReader *r)
{
	int32_t		n = kr_varint(r);
	int32_t		i;

	if (n < 0)
		return false;
	for (i = 0; i < n && !r->err; i++)
	{
		const uint8_t *p;
		int32_t		len;

		if (!kr_varbytes(r, &p, &len) || p == NULL)
			return false;
		(void) kr_varbytes(r, &p, &len);
	}
	return !r->err;
}

/*
 * Decodes record number i of batch b from r (the batch's records).  A
 * record must use exactly the bytes its length says.
 */
static int16_t
decode_record(KReader *r, const KRecordBatch *b, int32_t i, KRecord *rec)
{
	int32_t		len = kr_varint(r);
	const uint8_t *body;
	KReader		br;
	int64_t		delta;

	if (r->err || len < RECORD_MIN_SIZE - 1 || (size_t) len > kr_remaining(r))
		return KERR_INVALID_RECORD;
	body = kr_take(r, (size_t) len);
	kr_init(&br, body, (size_t) len);

	(void) kr_i8(&br);			/* attributes: unused */
	delta = kr_varlong(&br);
	rec->offset_delta = kr_varint(&br);
	if (br.err || rec->offset_delta != i ||
		__builtin_add_overflow(b->base_timestamp, delta, &rec->timestamp))
		return KERR_INVALID_RECORD;
	if (!kr_varbytes(&br, &rec->key, &rec->key_len) ||
		!kr_varbytes(&br, &rec->value, &rec->value_len))
		return KERR_INVALID_RECORD;
	rec->headers = body + br.pos;
	rec->headers_len = (int32_t) kr_remaining(&br);
	if (!check_headers(&br) || kr_remaining(&br) != 0)
		return KERR_INVALID_RECORD;
	return 0;
}

/* Decodes the records of batch b, uncompressed, from data. */
static int16_t
decode_records(const uint8_t *data, size_t len, KRecordBatch *b)
{
	KReader		r;
	int32_t		i;

	/* a count the data could not hold allocates nothing */
	if ((size_t) b->count > len / RECORD_MIN_SIZE)
		return KERR_INVALID_RECORD;
	b->records = calloc((size_t) b->count, sizeof(KRecord));
	if (b->records == NULL)
		return KERR_UNKNOWN_SERVER_ERROR;

	kr_init(&r, data, len);
	for (i = 0; i < b->count; i++)
	{
		int16_t		err = decode_record(&r, b, i, &b->records[i]);

		if (err != 0)
			return err;
	}
	/* Kafka's "records still remaining": the count must cover them all */
	return kr_remaining(&r) == 0 ? 0 : KERR_INVALID_RECORD;
}

/* Reads and checks a batch's header after the crc (the crc checked). */
static int16_t
decode_header(KReader *r, KRecordBatch *b)
{
	int			codec;

	b->attributes = kr_i16(r);
	b->last_offset_delta = kr_i32(r);
	b->base_timestamp = kr_i64(r);
	b->max_timestamp = kr_i64(r);
	b->producer_id = kr_i64(r);
	b->producer_epoch = kr_i16(r);
	b->base_sequence = kr_i32(r);
	b->count = kr_i32(r);
	if (r->err)
		return KERR_CORRUPT_MESSAGE;

	codec = b->attributes & ATTR_CODEC_MASK;
	if (codec > KCODEC_ZSTD)
		return KERR_UNSUPPORTED_COMPRESSION_TYPE;
	/* pgqueue has no Kafka transactions (yet): their markers cannot land */
	if (b->attributes & (ATTR_TRANSACTIONAL | ATTR_CONTROL))
		return KERR_INVALID_RECORD;
	if (b->count <= 0 || b->last_offset_delta != b->count - 1)
		return KERR_INVALID_RECORD;
	if (b->producer_id >= 0 && b->base_sequence < 0)
		return KERR_INVALID_RECORD;
	return 0;
}

/*
 * Decodes one batch from r into b.  *budget is what decompression may
 * still produce for this request; it shrinks by what this batch used.
 */
static int16_t
decode_batch(KReader *r, size_t *budget, KRecordBatch *b)
{
	int32_t		batch_len;
	const uint8_t *start;
	const uint8_t *records;
	size_t		records_len;
	KReader		br;
	uint32_t	crc;
	int16_t		err;
	int			codec;

	b->base_offset = kr_i64(r);
	batch_len = kr_i32(r);
	if (r->err || batch_len < BATCH_HEADER_SIZE - BATCH_LENGTH_OFFSET ||
		(size_t) batch_len > kr_remaining(r))
		return KERR_CORRUPT_MESSAGE;
	start = kr_take(r, (size_t) batch_len);
	kr_init(&br, start, (size_t) batch_len);

	b->partition_leader_epoch = kr_i32(&br);
	if (kr_i8(&br) != BATCH_MAGIC)
		return KERR_CORRUPT_MESSAGE;
	crc = kr_u32(&br);
	if (crc != records_crc32c(start + br.pos, (size_t) batch_len - br.pos))
		return KERR_CORRUPT_MESSAGE;
	err = decode_header(&br, b);
	if (err != 0)
		return err;

	records_len = kr_remaining(&br);
	records = kr_take(&br, records_len);
	codec = b->attributes & ATTR_CODEC_MASK;
	if (codec != KCODEC_NONE)
	{
		err = decompress_records(codec, records, records_len, *budget, &b->owned, &records_len);
		if (err != 0)
			return err;
		*budget -= records_len;
		records = b->owned;
	}
	return decode_records(records, records_len, b);
}

int16_t
records_decode(const uint8_t *data, size_t len, size_t max_decompressed,
			   KRecordBatch **batches, int *nbatches)
{
	KReader		r;
	KRecordBatch *bs = NULL;
	int			n = 0;
	int			size = 0;
	size_t		budget = max_decompressed;
	int16_t		err = 0;

	*batches = NULL;
	*nbatches = 0;
	kr_init(&r, data, len);
	if (len == 0)
		return KERR_INVALID_RECORD; /* a partition's records may not be empty */
	while (kr_remaining(&r) > 0)
	{
		if (n == size)
		{
			/* at most len / BATCH_HEADER_SIZE batches: bounded by the request */
			int			grow = size ? size * 2 : 4;
			KRecordBatch *more = realloc(bs, (size_t) grow * sizeof(KRecordBatch));

			if (more == NULL)
			{
				err = KERR_UNKNOWN_SERVER_ERROR;
				break;
			}
			bs = more;
			size = grow;
		}
		memset(&bs[n], 0, sizeof(KRecordBatch));
		err = decode_batch(&r, &budget, &bs[n]);
		n++;
		if (err != 0)
			break;
	}
	if (err != 0)
	{
		records_free(bs, n);
		return err;
	}
	*batches = bs;
	*nbatches = n;
	return 0;
}

void
records_free(KRecordBatch *batches, int nbatches)
{
	int			i;

	for (i = 0; i < nbatches; i++)
	{
		free(batches[i].records);
		free(batches[i].owned);
	}
	free(batches);
}

/* ---------------------------------------------------------------- encode */

/* the bytes of a nullable varint-length field */
static int
varbytes_size(const void *p, int32_t len)
{
	return p == NULL || len < 0 ? 1 : k_varint_size(len) + len;
}

/* Appends one record; deltas are from the batch's base offset and time. */
static void
encode_record(KWriter *w, const KRecordOut *rec, int64_t base_offset, int64_t base_timestamp)
{
	/* wrapping arithmetic: a delta is what a reader adds back to the base */
	int64_t		ts_delta = (int64_t) ((uint64_t) rec->timestamp - (uint64_t) base_timestamp);
	int32_t		off_delta = (int32_t) (rec->offset - base_offset);
	bool		has_headers = rec->headers != NULL && rec->headers_len > 0;
	int64_t		len;

	len = 1 + k_varint_size(ts_delta) + k_varint_size(off_delta) +
		varbytes_size(rec->key, rec->key_len) +
		varbytes_size(rec->value, rec->value_len) +
		(has_headers ? rec->headers_len : 1);
	if (len > INT32_MAX)
	{
		w->err = true;
		return;
	}
	kw_varint(w, (int32_t) len);
	kw_i8(w, 0);
	kw_varlong(w, ts_delta);
	kw_varint(w, off_delta);
	kw_varbytes(w, rec->key, rec->key_len);
	kw_varbytes(w, rec->value, rec->value_len);
	if (has_headers)
		kw_raw(w, rec->headers, (size_t) rec->headers_len);
	else
		kw_varint(w, 0);
}

/*
 * The batch's last offset: the last record's, or last_offset if that is
 * beyond it (a trailing gap), within what an int32 delta can reach.
 */
static int64_t
batch_last_offset(int64_t base_offset, const KRecordOut *recs, int n, int64_t last_offset)
{
	int64_t		last = n > 0 ? recs[n - 1].offset : base_offset;

	if (last_offset > last)
		last = last_offset;
	if (last - base_offset > INT32_MAX)
		last = base_offset + INT32_MAX;
	return last;
}

/* Appends one uncompressed batch with these attributes (see records_encode). */
static void
encode_batch(KWriter *w, int16_t attributes, int64_t base_offset, const KRecordOut *recs,
			 int n, int64_t last_offset)
{
	int64_t		last;
	int64_t		base_timestamp = n > 0 ? recs[0].timestamp : -1;
	int64_t		max_timestamp = base_timestamp;
	size_t		len_at;
	size_t		crc_at;
	size_t		crc_from;
	int			i;

	if (n <= 0 && last_offset < base_offset)
		return;
	last = batch_last_offset(base_offset, recs, n, last_offset);
	for (i = 1; i < n; i++)
		if (recs[i].timestamp > max_timestamp)
			max_timestamp = recs[i].timestamp;

	kw_i64(w, base_offset);
	len_at = kw_reserve_i32(w);
	kw_i32(w, -1);				/* partitionLeaderEpoch: none (no KIP-320 checks) */
	kw_i8(w, BATCH_MAGIC);
	crc_at = kw_reserve_i32(w);
	crc_from = w->len;
	kw_i16(w, attributes);		/* uncompressed, CreateTime */
	kw_i32(w, (int32_t) (last - base_offset));
	kw_i64(w, base_timestamp);
	kw_i64(w, max_timestamp);
	kw_i64(w, -1);				/* producerId */
	kw_i16(w, -1);				/* producerEpoch */
	kw_i32(w, -1);				/* baseSequence */
	kw_i32(w, n > 0 ? n : 0);
	for (i = 0; i < n; i++)
		encode_record(w, &recs[i], base_offset, base_timestamp);
	if (w->err || w->len - len_at - 4 > INT32_MAX)
	{
		w->err = true;
		return;
	}
	kw_patch_i32(w, len_at, (int32_t) (w->len - len_at - 4));
	kw_patch_i32(w, crc_at, (int32_t) records_crc32c(w->data + crc_from, w->len - crc_from));
}

void
records_encode(KWriter *w, int64_t base_offset, const KRecordOut *recs, int n,
			   int64_t last_offset)
{
	encode_batch(w, 0, base_offset, recs, n, last_offset);
}

/*
 * A control batch is how Kafka itself marks offsets that hold no record
 * for the consumer (a transaction's end), so every client moves past one:
 * librdkafka, as with any batch, to its last offset + 1; kafkajs to the
 * offset of its last record, which is why the marker is at last_offset
 * (kafkajs does not move on an empty batch: it would fetch the same
 * offset again at once, forever).  The marker's key is version 0, type 1
 * (COMMIT), which clients ignore: ABORT would make a read_committed
 * librdkafka look for an aborted transaction.  Its value is version 0 and
 * coordinator epoch 0.
 */
void
records_encode_gap_marker(KWriter *w, int64_t base_offset, int64_t last_offset)
{
	static const uint8_t key[] = {0, 0, 0, 1};
	static const uint8_t value[] = {0, 0, 0, 0, 0, 0};
	KRecordOut	marker = {0};

	if (last_offset < base_offset)
		return;
	marker.offset = last_offset - base_offset > INT32_MAX ? base_offset + INT32_MAX : last_offset;
	marker.timestamp = -1;
	marker.key = key;
	marker.key_len = sizeof(key);
	marker.value = value;
	marker.value_len = sizeof(value);
	encode_batch(w, ATTR_TRANSACTIONAL | ATTR_CONTROL, base_offset, &marker, 1, last_offset);
}
