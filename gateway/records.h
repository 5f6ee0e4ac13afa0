/*-------------------------------------------------------------------------
 *
 * records.h
 *	  Kafka's RecordBatch v2 (magic 2), decoded from Produce requests and
 *	  encoded into Fetch responses (records.c, compress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_RECORDS_H
#define PGQK_RECORDS_H

#include "kbuf.h"

/* One record of a decoded batch; the pointers point into the batch's data. */
typedef struct KRecord
{
	int64_t		offset_delta;
	int64_t		timestamp;		/* ms since the epoch: the batch's base + delta */
	const uint8_t *key;			/* NULL: null */
	int32_t		key_len;
	const uint8_t *value;		/* NULL: null (a tombstone) */
	int32_t		value_len;
	/*
	 * The record's headers as Kafka encodes them: a varint count, then each
	 * header's key and value (what pgq_headers_from_kafka() takes).
	 */
	const uint8_t *headers;
	int32_t		headers_len;
} KRecord;

typedef struct KRecordBatch
{
	int64_t		base_offset;
	int32_t		partition_leader_epoch;
	int16_t		attributes;		/* codec in bits 0-2, ... */
	int32_t		last_offset_delta;
	int64_t		base_timestamp;
	int64_t		max_timestamp;
	int64_t		producer_id;	/* -1: not idempotent */
	int16_t		producer_epoch;
	int32_t		base_sequence;
	int32_t		count;
	KRecord    *records;
	uint8_t    *owned;			/* the decompressed records, if compressed */
} KRecordBatch;

#define KCODEC_NONE		0
#define KCODEC_GZIP		1
#define KCODEC_SNAPPY	2
#define KCODEC_LZ4		3
#define KCODEC_ZSTD		4

/*
 * Decodes and validates the batches of a Produce request's records (one
 * partition's): magic 2, CRC-32C, lengths, record count and offset deltas,
 * no control batch, a known codec, decompressed size at most
 * max_decompressed.  Returns a Kafka error code (CORRUPT_MESSAGE,
 * INVALID_RECORD, UNSUPPORTED_COMPRESSION_TYPE, MESSAGE_TOO_LARGE...) or
 * 0 with *batches (free with records_free).
 *
 * max_decompressed bounds all the batches' decompressed records together;
 * no records at all (len 0) is INVALID_RECORD, as Kafka answers it.  The
 * records point into data and into the batches' owned buffers: data must
 * outlive *batches.
 */
extern int16_t records_decode(const uint8_t *data, size_t len, size_t max_decompressed,
							  KRecordBatch **batches, int *nbatches);
extern void records_free(KRecordBatch *batches, int nbatches);

/* A record to encode into a Fetch response's batch. */
typedef struct KRecordOut
{
	int64_t		offset;
	int64_t		timestamp;		/* ms since the epoch */
	const uint8_t *key;
	int32_t		key_len;
	const uint8_t *value;
	int32_t		value_len;
	const uint8_t *headers;		/* Kafka's encoding, as KRecord; NULL: none */
	int32_t		headers_len;
} KRecordOut;

/*
 * Appends one uncompressed RecordBatch v2 with these records (offsets
 * increasing, gaps allowed) to w, producer id -1, CRC-32C computed.  Its
 * last offset is last_offset if that is beyond the last record's (a batch
 * stretched over a trailing gap, so that a client moves past it), and
 * n == 0 with last_offset >= base_offset writes an empty batch covering
 * [base_offset, last_offset].
 */
extern void records_encode(KWriter *w, int64_t base_offset, const KRecordOut *recs, int n,
						   int64_t last_offset);

/*
 * Appends a control batch covering [base_offset, last_offset] whose one
 * record, at last_offset, is a transaction COMMIT marker: offsets that hold
 * no record (a gap alone), in the form every client moves past.
 */
extern void records_encode_gap_marker(KWriter *w, int64_t base_offset, int64_t last_offset);

/* CRC-32C (Castagnoli), as a batch's crc field: 0xE3069283 for "123456789" */
extern uint32_t records_crc32c(const void *data, size_t len);

#endif							/* PGQK_RECORDS_H */
