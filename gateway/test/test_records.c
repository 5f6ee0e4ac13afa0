/*-------------------------------------------------------------------------
 *
 * test_records.c
 *	  Unit tests of RecordBatch v2 (records.c, compress.c) and of the
 *	  protocol primitives (kbuf.c).  Prints TAP-style lines; exits 1 if a
 *	  check failed.
 *
 *	  test_records [--dump DIR]
 *	  test_records --decode FILE
 *
 * - CRC-32C of the check string;
 * - kbuf: varint limits and overflows, lengths, the writer's refusals;
 * - encode -> decode round trips: keys, values, nulls, empty values,
 *   headers (a repeated key, a null value), every codec (snappy raw and
 *   xerial-framed), several batches in one request;
 * - Fetch batches: gaps, a last offset stretched over a trailing gap, the
 *   empty batch, the gap marker (a control batch), checked field by field
 *   here; with --dump they are also
 *   written to DIR (NAME.bin and NAME.expect) for kafka_python_batches.py,
 *   which decodes them with python3-kafka, an independent client;
 * - every refusal's Kafka error code: CRC, magic, lengths, codec, control
 *   and transactional batches, counts and offset deltas, records that do
 *   not parse, decompression bombs;
 * - batches made by librdkafka with each codec: a librdkafka producer
 *   sends through a TCP proxy (this program) to librdkafka's mock cluster;
 *   the proxy keeps the records bytes of every Produce request, which must
 *   decode to exactly what was produced.
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <zlib.h>
#include <zstd.h>

#include "gateway.h"
#include "kbuf.h"
#include "records.h"
#include "compress.h"
#include "testlib.h"

#define CAP (4 * 1024 * 1024)

static const char *codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd", "snappy-xerial"};

/* --------------------------------------------------------------- helpers */

/* Kafka's header encoding of n (key, value) pairs; a NULL value is null */
static void
make_headers(KWriter *w, int n, const char *const *kv)
{
	int			i;

	kw_varint(w, n);
	for (i = 0; i < n; i++)
	{
		kw_varbytes(w, kv[2 * i], (int32_t) strlen(kv[2 * i]));
		kw_varbytes(w, kv[2 * i + 1], kv[2 * i + 1] ? (int32_t) strlen(kv[2 * i + 1]) : -1);
	}
}

static bool
same_bytes(const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen)
{
	if (a == NULL || b == NULL)
		return a == NULL && b == NULL;
	return alen == blen && (alen == 0 || memcmp(a, b, (size_t) alen) == 0);
}

/* the records every round trip sends: the cases that matter, then bulk */
#define NRECS 40
static KRecordOut recs[NRECS];
static KWriter hdr_dup;
static KWriter hdr_one;
static char values[NRECS][160];
static char keys[NRECS][16];

static void
make_records(void)
{
	static const char *const dup[] = {"trace", "a", "trace", NULL, "h\xc3\xa9", "\x00\x01"};
	static const char *const one[] = {"k", "v"};
	int			i;

	kw_init(&hdr_dup);
	kw_init(&hdr_one);
	make_headers(&hdr_dup, 3, dup);
	make_headers(&hdr_one, 1, one);
	for (i = 0; i < NRECS; i++)
	{
		snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
		snprintf(values[i], sizeof(values[i]),
				 "value %d: the same words again and again, the same words again and again", i);
		recs[i].offset = i;
		recs[i].timestamp = 1700000000000LL + i * 7;
		recs[i].key = (const uint8_t *) keys[i];
		recs[i].key_len = (int32_t) strlen(keys[i]);
		recs[i].value = (const uint8_t *) values[i];
		recs[i].value_len = (int32_t) strlen(values[i]);
		recs[i].headers = i % 3 == 0 ? hdr_one.data : NULL;
		recs[i].headers_len = i % 3 == 0 ? (int32_t) hdr_one.len : 0;
	}
	recs[1].key = NULL;			/* a null key */
	recs[1].key_len = -1;
	recs[2].value = NULL;		/* a tombstone */
	recs[2].value_len = -1;
	recs[3].value_len = 0;		/* an empty value is not a null one */
	recs[3].key_len = 0;
	recs[4].headers = hdr_dup.data;
	recs[4].headers_len = (int32_t) hdr_dup.len;
	recs[5].timestamp = 1600000000000LL;	/* before the batch's base */
}

/* checks that a decoded record is r (headers: an absent one is count 0) */
static bool
record_equals(const KRecord *d, const KRecordOut *r, int64_t delta)
{
	static const uint8_t no_headers[] = {0};
	const uint8_t *h = r->headers ? r->headers : no_headers;
	int32_t		hlen = r->headers ? r->headers_len : 1;

	return d->offset_delta == delta && d->timestamp == r->timestamp &&
		same_bytes(d->key, d->key_len, r->key, r->key_len) &&
		same_bytes(d->value, d->value_len, r->value, r->value_len) &&
		same_bytes(d->headers, d->headers_len, h, hlen);
}

/* ------------------------------------------------------------------ CRC */

static void
test_crc(void)
{
	test_check(records_crc32c("123456789", 9) == 0xE3069283,
			   "CRC-32C of \"123456789\" is 0xE3069283");
	test_check(records_crc32c("", 0) == 0, "CRC-32C of nothing is 0");
}

/* ----------------------------------------------------------------- kbuf */

static void
test_kbuf(void)
{
	static const uint8_t over5[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
	static const uint8_t max5[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	static const uint8_t long6[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t over10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03};
	static const uint8_t cut[] = {0x80};
	static const uint8_t neg2[] = {0x03};	/* zigzag -2 */
	static const uint8_t bytes_huge[] = {0x7f, 0xff, 0xff, 0xff, 0x00};
	static const uint8_t array_huge[] = {0x00, 0x10, 0x00, 0x00, 0x01, 0x02};
	int64_t		longs[] = {0, -1, 1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
	KReader		r;
	KWriter		w;
	const uint8_t *p;
	int32_t		len;
	bool		ok = true;
	size_t		i;
	char		big[40000];

	kr_init(&r, max5, sizeof(max5));
	test_check(kr_uvarint(&r) == UINT32_MAX && !r.err, "kbuf: the largest 5-byte uvarint");
	kr_init(&r, over5, sizeof(over5));
	(void) kr_uvarint(&r);
	test_check(r.err, "kbuf: a uvarint beyond 32 bits is refused");
	kr_init(&r, long6, sizeof(long6));
	(void) kr_varint(&r);
	test_check(r.err, "kbuf: a 6-byte varint is refused");
	kr_init(&r, over10, sizeof(over10));
	(void) kr_varlong(&r);
	test_check(r.err, "kbuf: a varlong beyond 64 bits is refused");
	kr_init(&r, cut, sizeof(cut));
	(void) kr_varint(&r);
	test_check(r.err, "kbuf: a varint cut short is refused");
	kr_init(&r, neg2, sizeof(neg2));
	test_check(!kr_varbytes(&r, &p, &len) && r.err, "kbuf: a varint length of -2 is refused");
	kr_init(&r, bytes_huge, sizeof(bytes_huge));
	test_check(!kr_bytes(&r, &p, &len) && r.err, "kbuf: bytes longer than what remains are refused");
	kr_init(&r, array_huge, sizeof(array_huge));
	(void) kr_array_len(&r, 1);
	test_check(r.err, "kbuf: an array count the request cannot hold is refused");

	kw_init(&w);
	for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
	{
		kw_varlong(&w, longs[i]);
		if (longs[i] >= INT32_MIN && longs[i] <= INT32_MAX)
			kw_varint(&w, (int32_t) longs[i]);
	}
	kr_init(&r, w.data, w.len);
	for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
	{
		size_t		at = r.pos;

		ok &= kr_varlong(&r) == longs[i] && (int) (r.pos - at) == k_varint_size(longs[i]);
		if (longs[i] >= INT32_MIN && longs[i] <= INT32_MAX)
			ok &= kr_varint(&r) == longs[i];
	}
	test_check(ok && !r.err && kr_remaining(&r) == 0,
			   "kbuf: zigzag varints round trip at their limits, sized by k_varint_size");

	/* every writer's output read back by its reader, random values */
	{
		uint64_t	x = 88172645463325252ULL;
		int			k;

		ok = true;
		for (k = 0; k < 20000 && ok; k++)
		{
			int64_t		v;
			uint32_t	u;
			const char *s;
			int32_t		slen;
			int			shift;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			shift = (int) (x % 64);
			v = (int64_t) (x >> shift) * ((x & 1) ? -1 : 1);
			u = (uint32_t) (x >> (x % 33 + 31 > 63 ? 63 : x % 33 + 31));
			kw_reset(&w);
			kw_varlong(&w, v);
			kw_varint(&w, (int32_t) v);
			kw_uvarint(&w, u);
			kw_i64(&w, v);
			kw_i32(&w, (int32_t) v);
			kw_i16(&w, (int16_t) v);
			kw_compact_string(&w, k % 5 ? "abc" : NULL, 3);
			kw_string(&w, k % 7 ? "" : NULL, 0);
			kw_bytes(&w, "xy", k % 3 ? 2 : -1);
			kw_varbytes(&w, k % 4 ? "z" : NULL, 1);
			kw_empty_tagged_fields(&w);
			kr_init(&r, w.data, w.len);
			ok &= kr_varlong(&r) == v;
			ok &= kr_varint(&r) == (int32_t) v;
			ok &= kr_uvarint(&r) == u;
			ok &= kr_i64(&r) == v;
			ok &= kr_i32(&r) == (int32_t) v;
			ok &= kr_i16(&r) == (int16_t) v;
			ok &= kr_compact_string(&r, &s, &slen) &&
				(k % 5 ? slen == 3 && memcmp(s, "abc", 3) == 0 : s == NULL && slen == -1);
			ok &= kr_string(&r, &s, &slen) && (k % 7 ? s != NULL && slen == 0 : s == NULL);
			ok &= kr_bytes(&r, &p, &len) && (k % 3 ? len == 2 && p[1] == 'y' : p == NULL);
			ok &= kr_varbytes(&r, &p, &len) && (k % 4 ? len == 1 && p[0] == 'z' : p == NULL);
			kr_skip_tagged_fields(&r);
			ok &= !r.err && kr_remaining(&r) == 0;
			if (!ok)
				fprintf(stderr, "# round trip %d failed: %lld %u\n", k, (long long) v, u);
		}
		test_check(ok, "kbuf: 20000 random values of every type read back as written");
	}

	kw_reset(&w);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kw_string(&w, big, -1);
	test_check(w.err, "kbuf: a string too long for an int16 length is refused by the writer");
	kw_free(&w);
}

/* ------------------------------------------------------------ round trips */

static void
test_round_trip(int codec)
{
	KWriter		w;
	KRecordBatch *b;
	int			nb;
	int16_t		err;
	bool		ok = true;
	int			i;

	kw_init(&w);
	test_build_batch(&w, codec, 0, recs, NRECS);
	err = records_decode(w.data, w.len, CAP, &b, &nb);
	if (test_check(err == 0 && nb == 1, "%s: a batch decodes (error %d)", codec_names[codec], err))
	{
		ok = b[0].count == NRECS && b[0].last_offset_delta == NRECS - 1 &&
			b[0].base_timestamp == recs[0].timestamp && b[0].producer_id == -1 &&
			(b[0].attributes & 7) == (codec == TCODEC_XERIAL ? KCODEC_SNAPPY : codec);
		for (i = 0; ok && i < NRECS; i++)
			ok = record_equals(&b[0].records[i], &recs[i], i);
		test_check(ok, "%s: every record comes back: keys, values, nulls, headers, timestamps",
				   codec_names[codec]);
		records_free(b, nb);
	}
	kw_free(&w);
}

static void
test_several_batches(void)
{
	KWriter		w;
	KRecordBatch *b;
	int			nb;
	int16_t		err;

	kw_init(&w);
	test_build_batch(&w, KCODEC_NONE, 0, recs, 3);
	test_build_batch(&w, KCODEC_ZSTD, 3, recs + 3, 10);
	test_build_batch(&w, KCODEC_GZIP, 13, recs + 13, 1);
	err = records_decode(w.data, w.len, CAP, &b, &nb);
	test_check(err == 0 && nb == 3 && b[0].count == 3 && b[1].count == 10 && b[2].count == 1 &&
			   record_equals(&b[1].records[9], &recs[12], 9) &&
			   record_equals(&b[2].records[0], &recs[13], 0),
			   "three batches one after the other decode, each with its records");
	if (err == 0)
		records_free(b, nb);
	kw_free(&w);
}

/* ------------------------------------------------------- Fetch's batches */

/*
 * An independent reading of an encoded batch: its fields, its CRC, and
 * each record's offset delta, key and value compared with what was sent.
 */
static bool
check_encoded(const uint8_t *data, size_t len, int64_t base, int64_t last,
			  const KRecordOut *sent, int n)
{
	KReader		r;
	int32_t		batch_len;
	uint32_t	crc;
	int			i;

	kr_init(&r, data, len);
	if (kr_i64(&r) != base)
		return false;
	batch_len = kr_i32(&r);
	if ((size_t) batch_len != len - 12 || kr_i32(&r) != -1 || kr_i8(&r) != 2)
		return false;
	crc = kr_u32(&r);
	if (crc != records_crc32c(data + 21, len - 21))
		return false;
	if (kr_i16(&r) != 0 || kr_i32(&r) != last - base)
		return false;
	if (kr_i64(&r) != (n ? sent[0].timestamp : -1))
		return false;
	(void) kr_i64(&r);
	if (kr_i64(&r) != -1 || kr_i16(&r) != -1 || kr_i32(&r) != -1 || kr_i32(&r) != n)
		return false;
	for (i = 0; i < n; i++)
	{
		int32_t		rlen = kr_varint(&r);
		size_t		end = r.pos + (size_t) rlen;
		const uint8_t *k,
				   *v;
		int32_t		klen,
					vlen;

		(void) kr_i8(&r);
		if (kr_varlong(&r) + sent[0].timestamp != sent[i].timestamp ||
			kr_varint(&r) != sent[i].offset - base)
			return false;
		kr_varbytes(&r, &k, &klen);
		kr_varbytes(&r, &v, &vlen);
		if (!same_bytes(k, klen, sent[i].key, sent[i].key_len) ||
			!same_bytes(v, vlen, sent[i].value, sent[i].value_len))
			return false;
		if (r.err || end > len)
			return false;
		r.pos = end;
	}
	return !r.err && kr_remaining(&r) == 0;
}

static void
dump_hex(FILE *f, const uint8_t *p, int32_t len)
{
	int32_t		i;

	if (p == NULL)
	{
		fprintf(f, "null");
		return;
	}
	fprintf(f, "x");
	for (i = 0; i < len; i++)
		fprintf(f, "%02x", p[i]);
}

/*
 * Prints a record as the .expect files have it: "OFFSET TIMESTAMP KEY
 * VALUE HEADERS", bytes in hex after an x (or null), headers as
 * KEY=VALUE,... (or -).
 */
static void
dump_record(FILE *f, int64_t offset, int64_t timestamp, const uint8_t *key, int32_t key_len,
			const uint8_t *value, int32_t value_len, const uint8_t *headers, int32_t headers_len)
{
	KReader		hr;
	int32_t		nh = 0;

	fprintf(f, "%lld %lld ", (long long) offset, (long long) timestamp);
	dump_hex(f, key, key_len);
	fprintf(f, " ");
	dump_hex(f, value, value_len);
	fprintf(f, " ");
	if (headers)
	{
		kr_init(&hr, headers, (size_t) headers_len);
		nh = kr_varint(&hr);
	}
	if (nh == 0)
		fprintf(f, "-");
	while (nh-- > 0)
	{
		const uint8_t *p;
		int32_t		plen;

		kr_varbytes(&hr, &p, &plen);
		dump_hex(f, p, plen);
		fprintf(f, "=");
		kr_varbytes(&hr, &p, &plen);
		dump_hex(f, p, plen);
		fprintf(f, nh > 0 ? "," : "");
	}
	fprintf(f, "\n");
}

/*
 * Appends a batch to DIR/NAME.bin and what python3-kafka must read from it
 * to DIR/NAME.expect: "batch BASE LAST COUNT", then its records.
 */
static void
dump_batch(const char *dir, const char *name, const uint8_t *data, size_t len,
		   int64_t base, int64_t last, const KRecordOut *sent, int n)
{
	char		path[1024];
	FILE	   *f;
	int			i;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	f = fopen(path, "ab");
	fwrite(data, 1, len, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.expect", dir, name);
	f = fopen(path, "a");
	fprintf(f, "batch %lld %lld %d\n", (long long) base, (long long) last, n);
	for (i = 0; i < n; i++)
		dump_record(f, sent[i].offset, sent[i].timestamp, sent[i].key, sent[i].key_len,
					sent[i].value, sent[i].value_len, sent[i].headers, sent[i].headers_len);
	fclose(f);
}

/*
 * test_records --decode FILE: prints what records_decode reads from a
 * Produce records file (python3-kafka's batches), in the .expect format,
 * or "error N".
 */
static int
decode_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	KWriter		w;
	uint8_t		buf[65536];
	size_t		n;
	KRecordBatch *b;
	int			nb;
	int			i,
				j;
	int16_t		err;

	if (f == NULL)
		return 2;
	kw_init(&w);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		kw_raw(&w, buf, n);
	fclose(f);
	err = records_decode(w.data, w.len, CAP, &b, &nb);
	if (err != 0)
	{
		printf("error %d\n", err);
		kw_free(&w);
		return 1;
	}
	for (i = 0; i < nb; i++)
	{
		printf("batch %lld %lld %d\n", (long long) b[i].base_offset,
			   (long long) (b[i].base_offset + b[i].last_offset_delta), b[i].count);
		if (b[i].producer_id >= 0)
			printf("producer %lld %d %d\n", (long long) b[i].producer_id, b[i].producer_epoch,
				   b[i].base_sequence);
		for (j = 0; j < b[i].count; j++)
		{
			const KRecord *r = &b[i].records[j];

			dump_record(stdout, b[i].base_offset + r->offset_delta, r->timestamp, r->key, r->key_len,
						r->value, r->value_len, r->headers, r->headers_len);
		}
	}
	records_free(b, nb);
	kw_free(&w);
	return 0;
}

/*
 * Whether data is records_encode_gap_marker's batch over [base, last]:
 * attributes transactional and control, one record at last whose key is
 * the control key version 0 type COMMIT, no timestamps, the CRC right.
 */
static bool
check_gap_marker(const uint8_t *data, size_t len, int64_t base, int64_t last)
{
	KReader		r;
	const uint8_t *k,
			   *v;
	int32_t		klen,
				vlen;

	kr_init(&r, data, len);
	if (kr_i64(&r) != base || kr_i32(&r) != (int32_t) (len - 12) || kr_i32(&r) != -1 ||
		kr_i8(&r) != 2 || kr_u32(&r) != records_crc32c(data + 21, len - 21))
		return false;
	if (kr_i16(&r) != 0x30 || kr_i32(&r) != last - base || kr_i64(&r) != -1 ||
		kr_i64(&r) != -1 || kr_i64(&r) != -1 || kr_i16(&r) != -1 || kr_i32(&r) != -1 ||
		kr_i32(&r) != 1)
		return false;
	(void) kr_varint(&r);		/* the record's length */
	if (kr_i8(&r) != 0 || kr_varlong(&r) != 0 || kr_varint(&r) != last - base)
		return false;
	kr_varbytes(&r, &k, &klen);
	kr_varbytes(&r, &v, &vlen);
	if (klen != 4 || memcmp(k, "\0\0\0\1", 4) != 0 || vlen != 6 || kr_varint(&r) != 0)
		return false;
	return !r.err && kr_remaining(&r) == 0;
}

static void
test_encode(const char *dir)
{
	static const uint8_t marker_key[] = {0, 0, 0, 1};
	static const uint8_t marker_value[6] = {0};
	KRecordOut	marker = {209, -1, marker_key, 4, marker_value, 6, NULL, 0};
	KWriter		w;
	KRecordOut	gaps[4];
	KRecordBatch *b;
	int			nb;
	int			i;

	kw_init(&w);

	/* contiguous: also what records_decode accepts */
	records_encode(&w, 0, recs, NRECS, NRECS - 1);
	test_check(check_encoded(w.data, w.len, 0, NRECS - 1, recs, NRECS),
			   "encode: a contiguous batch reads back field by field, CRC included");
	test_check(records_decode(w.data, w.len, CAP, &b, &nb) == 0 && nb == 1,
			   "encode: records_decode accepts it");
	if (nb == 1)
		records_free(b, nb);
	dump_batch(dir, "contiguous", w.data, w.len, 0, NRECS - 1, recs, NRECS);

	/* gaps (rolled-back offsets) between records and after the last */
	for (i = 0; i < 4; i++)
		gaps[i] = recs[i + 3];
	gaps[0].offset = 100;
	gaps[1].offset = 101;
	gaps[2].offset = 105;
	gaps[3].offset = 109;
	kw_reset(&w);
	records_encode(&w, 100, gaps, 4, 120);
	test_check(check_encoded(w.data, w.len, 100, 120, gaps, 4),
			   "encode: gaps keep each record's offset; the last offset is stretched to 120");
	dump_batch(dir, "gaps", w.data, w.len, 100, 120, gaps, 4);

	kw_reset(&w);
	records_encode(&w, 100, gaps, 4, 50);
	test_check(check_encoded(w.data, w.len, 100, 109, gaps, 4),
			   "encode: a last_offset before the last record's is ignored");

	/* a batch whose base is before its first record (a leading gap) */
	kw_reset(&w);
	records_encode(&w, 98, gaps, 2, 101);
	test_check(check_encoded(w.data, w.len, 98, 101, gaps, 2),
			   "encode: a leading gap: the base offset is before the first record");
	dump_batch(dir, "leading_gap", w.data, w.len, 98, 101, gaps, 2);

	/* the empty batch: a gap with no record in it at all */
	kw_reset(&w);
	records_encode(&w, 200, NULL, 0, 209);
	test_check(w.len == 61 && check_encoded(w.data, w.len, 200, 209, NULL, 0),
			   "encode: an empty batch covers 200..209 in 61 bytes");
	dump_batch(dir, "empty", w.data, w.len, 200, 209, NULL, 0);
	kw_reset(&w);
	records_encode(&w, 200, NULL, 0, 199);
	test_check(w.len == 0, "encode: no records and no range writes nothing");

	/* a gap alone as a control batch with a COMMIT marker at its end */
	kw_reset(&w);
	records_encode_gap_marker(&w, 200, 209);
	test_check(check_gap_marker(w.data, w.len, 200, 209),
			   "encode: a gap marker covers 200..209, a control batch with a COMMIT record at 209");
	test_check(records_decode(w.data, w.len, CAP, &b, &nb) == KERR_INVALID_RECORD,
			   "encode: records_decode refuses it in a Produce (a control batch)");
	dump_batch(dir, "gap_marker", w.data, w.len, 200, 209, &marker, 1);
	kw_reset(&w);
	records_encode_gap_marker(&w, 200, 199);
	test_check(w.len == 0, "encode: a gap marker for no range writes nothing");

	/* three batches in one response, as a Fetch sends them */
	kw_reset(&w);
	records_encode(&w, 0, recs, 5, 4);
	dump_batch(dir, "three", w.data, w.len, 0, 4, recs, 5);
	kw_reset(&w);
	records_encode(&w, 5, NULL, 0, 7);
	dump_batch(dir, "three", w.data, w.len, 5, 7, NULL, 0);
	kw_reset(&w);
	gaps[0].offset = 8;
	records_encode(&w, 8, gaps, 1, 8);
	dump_batch(dir, "three", w.data, w.len, 8, 8, gaps, 1);
	kw_free(&w);
}

/* ---------------------------------------------------------------- errors */

static int16_t
decode_status(const uint8_t *data, size_t len, size_t cap)
{
	KRecordBatch *b;
	int			nb;
	int16_t		err = records_decode(data, len, cap, &b, &nb);

	if (err == 0)
		records_free(b, nb);
	return err;
}

/* a mutation of a valid batch, its CRC fixed, and the error it must get */
static void
expect_error(const char *what, int16_t want, void (*mutate) (KWriter *w), bool fix_crc)
{
	KWriter		w;
	int16_t		err;

	kw_init(&w);
	test_build_batch(&w, KCODEC_NONE, 0, recs, 5);
	mutate(&w);
	if (fix_crc)
		test_fix_crc(w.data, w.len);
	err = decode_status(w.data, w.len, CAP);
	test_check(err == want, "refused: %s: error %d (got %d)", what, want, err);
	kw_free(&w);
}

static void m_crc(KWriter *w) { w->data[w->len - 1] ^= 1; }
static void m_magic(KWriter *w) { w->data[B_MAGIC] = 1; }
static void m_codec(KWriter *w) { w->data[B_ATTRIBUTES + 1] |= 5; }
static void m_txn(KWriter *w) { w->data[B_ATTRIBUTES + 1] |= 0x10; }
static void m_control(KWriter *w) { w->data[B_ATTRIBUTES + 1] |= 0x20; }
static void m_count(KWriter *w) { test_put_i32(w->data + B_COUNT, 4); }
static void m_count_huge(KWriter *w) { test_put_i32(w->data + B_COUNT, INT32_MAX);
	test_put_i32(w->data + B_LAST_DELTA, INT32_MAX - 1); }
static void m_count_zero(KWriter *w) { test_put_i32(w->data + B_COUNT, 0);
	test_put_i32(w->data + B_LAST_DELTA, -1); }
static void m_last_delta(KWriter *w) { test_put_i32(w->data + B_LAST_DELTA, 5); }
static void m_batch_len(KWriter *w) { test_put_i32(w->data + B_BATCH_LENGTH, (int32_t) w->len); }
static void m_batch_neg(KWriter *w) { test_put_i32(w->data + B_BATCH_LENGTH, -1); }
static void m_truncate(KWriter *w) { w->len -= 3; }
static void m_header_cut(KWriter *w) { w->len = 40; }
static void m_trailing(KWriter *w) { kw_i8(w, 0); test_put_i32(w->data + B_BATCH_LENGTH,
	(int32_t) w->len - 12); }
static void m_sequence(KWriter *w) { test_put_i64(w->data + B_PRODUCER_ID, 7); }

/* the first record's length, beyond the batch */
static void m_record_len(KWriter *w) { w->data[B_RECORDS] = 0x7e; }
/* the first record's key length: -2 */
static void m_key_len(KWriter *w) { w->data[B_RECORDS + 4] = 0x03; }

static void
test_errors(void)
{
	KWriter		w;
	KRecordBatch *b;
	int			nb;

	expect_error("a flipped bit, CRC not fixed", KERR_CORRUPT_MESSAGE, m_crc, false);
	expect_error("magic 1", KERR_CORRUPT_MESSAGE, m_magic, true);
	expect_error("codec 5", KERR_UNSUPPORTED_COMPRESSION_TYPE, m_codec, true);
	expect_error("a transactional batch", KERR_INVALID_RECORD, m_txn, true);
	expect_error("a control batch", KERR_INVALID_RECORD, m_control, true);
	expect_error("a count below the records", KERR_INVALID_RECORD, m_count, true);
	expect_error("a count of INT32_MAX", KERR_INVALID_RECORD, m_count_huge, true);
	expect_error("a count of 0", KERR_INVALID_RECORD, m_count_zero, true);
	expect_error("lastOffsetDelta beyond count - 1", KERR_INVALID_RECORD, m_last_delta, true);
	expect_error("a batchLength beyond the data", KERR_CORRUPT_MESSAGE, m_batch_len, true);
	expect_error("a negative batchLength", KERR_CORRUPT_MESSAGE, m_batch_neg, true);
	expect_error("a batch cut short", KERR_CORRUPT_MESSAGE, m_truncate, true);
	expect_error("a header cut short", KERR_CORRUPT_MESSAGE, m_header_cut, false);
	expect_error("bytes after the last record", KERR_INVALID_RECORD, m_trailing, true);
	expect_error("a producer id without a sequence", KERR_INVALID_RECORD, m_sequence, true);
	expect_error("a record length beyond the batch", KERR_INVALID_RECORD, m_record_len, true);
	expect_error("a key length of -2", KERR_INVALID_RECORD, m_key_len, true);
	test_check(decode_status((const uint8_t *) "", 0, CAP) == KERR_INVALID_RECORD,
			   "refused: no batch at all");

	/* a second batch that is broken fails the whole request */
	kw_init(&w);
	test_build_batch(&w, KCODEC_NONE, 0, recs, 5);
	test_build_batch(&w, KCODEC_NONE, 5, recs, 5);
	w.data[w.len - 1] ^= 0x40;
	test_check(records_decode(w.data, w.len, CAP, &b, &nb) == KERR_CORRUPT_MESSAGE &&
			   b == NULL && nb == 0, "refused: a good batch then a corrupt one");

	/* offset deltas 0, 2, 1: count 3 and lastOffsetDelta 2 agree, the order not */
	{
		KRecordOut	r[3] = {recs[0], recs[1], recs[2]};

		r[1].offset = 2;
		r[2].offset = 1;
		kw_reset(&w);
		records_encode(&w, 0, r, 3, 2);
		test_check(decode_status(w.data, w.len, CAP) == KERR_INVALID_RECORD,
				   "refused: offset deltas 0, 2, 1");
		r[1].offset = 1;
		r[2].offset = 3;
		kw_reset(&w);
		records_encode(&w, 0, r, 3, 3);
		test_put_i32(w.data + B_LAST_DELTA, 2);
		test_fix_crc(w.data, w.len);
		test_check(decode_status(w.data, w.len, CAP) == KERR_INVALID_RECORD,
				   "refused: offset deltas 0, 1, 3 (a gap)");
	}

	/* a header key may not be null */
	{
		KWriter		h;
		KRecordOut	r = recs[0];

		kw_init(&h);
		kw_varint(&h, 1);
		kw_varint(&h, -1);
		kw_varint(&h, -1);
		r.headers = h.data;
		r.headers_len = (int32_t) h.len;
		kw_reset(&w);
		test_build_batch(&w, KCODEC_NONE, 0, &r, 1);
		test_check(decode_status(w.data, w.len, CAP) == KERR_INVALID_RECORD,
				   "refused: a header with a null key");
		kw_free(&h);
	}
	kw_free(&w);
}

/* ------------------------------------------------------------ compression */

static void
test_compression_errors(void)
{
	KWriter		w;
	int			codec;

	/* each codec's stream cut in half, with a correct CRC */
	for (codec = KCODEC_GZIP; codec <= TCODEC_XERIAL; codec++)
	{
		int16_t		err;

		kw_init(&w);
		test_build_batch(&w, codec, 0, recs, NRECS);
		w.len = B_RECORDS + (w.len - B_RECORDS) / 2;
		test_put_i32(w.data + B_BATCH_LENGTH, (int32_t) w.len - 12);
		test_fix_crc(w.data, w.len);
		err = decode_status(w.data, w.len, CAP);
		test_check(err == KERR_CORRUPT_MESSAGE, "%s: a stream cut in half is CORRUPT_MESSAGE (got %d)",
				   codec_names[codec], err);
		kw_free(&w);
	}

	/* a batch just under and just over the cap */
	kw_init(&w);
	{
		size_t		plain_len;
		KWriter		p;

		kw_init(&p);
		records_encode(&p, 0, recs, NRECS, NRECS - 1);
		plain_len = p.len - B_RECORDS;
		kw_free(&p);
		for (codec = KCODEC_GZIP; codec <= TCODEC_XERIAL; codec++)
		{
			kw_reset(&w);
			test_build_batch(&w, codec, 0, recs, NRECS);
			test_check(decode_status(w.data, w.len, plain_len) == 0 &&
					   decode_status(w.data, w.len, plain_len - 1) == KERR_MESSAGE_TOO_LARGE,
					   "%s: records of exactly the cap decode, one byte over is MESSAGE_TOO_LARGE",
					   codec_names[codec]);
		}
	}
	kw_free(&w);
}

/* A gzip or zstd stream of 256 MB of zeros: refused, quickly, within the cap. */
static void
test_bombs(void)
{
	const size_t total = 256 * 1024 * 1024;
	const size_t chunk = 1024 * 1024;
	uint8_t    *zeros = calloc(1, chunk);
	KWriter		z;
	KWriter		w;
	uint8_t    *out;
	size_t		outlen;
	size_t		done;
	int16_t		err;
	z_stream	zs;
	ZSTD_CCtx  *cctx = ZSTD_createCCtx();
	KWriter		plain;

	kw_init(&z);
	kw_init(&w);
	kw_init(&plain);
	records_encode(&plain, 0, recs, 1, 0);

	/* gzip */
	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	for (done = 0; done < total; done += chunk)
	{
		zs.next_in = zeros;
		zs.avail_in = (uInt) chunk;
		do
		{
			uint8_t    *p = kw_extend(&z, 65536);

			zs.next_out = p;
			zs.avail_out = 65536;
			deflate(&zs, done + chunk >= total ? Z_FINISH : Z_NO_FLUSH);
			z.len -= zs.avail_out;
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
	err = decompress_records(KCODEC_GZIP, z.data, z.len, CAP, &out, &outlen);
	test_check(err == KERR_MESSAGE_TOO_LARGE && out == NULL,
			   "gzip bomb (%zu bytes -> 256 MB): MESSAGE_TOO_LARGE", z.len);
	test_rebuild_batch(&w, plain.data, KCODEC_NONE, z.data, z.len);
	w.data[B_ATTRIBUTES + 1] |= KCODEC_GZIP;
	test_fix_crc(w.data, w.len);
	test_check(decode_status(w.data, w.len, CAP) == KERR_MESSAGE_TOO_LARGE,
			   "gzip bomb in a batch: MESSAGE_TOO_LARGE");

	/* zstd, streamed (no content size in the frame) */
	kw_reset(&z);
	for (done = 0; done < total; done += chunk)
	{
		ZSTD_inBuffer in = {zeros, chunk, 0};
		size_t		left;

		do
		{
			ZSTD_outBuffer o;

			o.dst = kw_extend(&z, 65536);
			o.size = 65536;
			o.pos = 0;
			left = ZSTD_compressStream2(cctx, &o, &in,
										done + chunk >= total ? ZSTD_e_end : ZSTD_e_continue);
			z.len -= 65536 - o.pos;
		} while (in.pos < in.size || (done + chunk >= total && left != 0));
	}
	err = decompress_records(KCODEC_ZSTD, z.data, z.len, CAP, &out, &outlen);
	test_check(err == KERR_MESSAGE_TOO_LARGE && out == NULL,
			   "zstd bomb (%zu bytes -> 256 MB): MESSAGE_TOO_LARGE", z.len);

	/* zstd with the content size in its header: refused before decoding */
	kw_reset(&z);
	{
		uint8_t    *big = calloc(1, 8 * 1024 * 1024);
		size_t		n = ZSTD_compressBound(8 * 1024 * 1024);

		kw_extend(&z, n);
		z.len = ZSTD_compress(z.data, n, big, 8 * 1024 * 1024, 1);
		free(big);
	}
	err = decompress_records(KCODEC_ZSTD, z.data, z.len, CAP, &out, &outlen);
	test_check(err == KERR_MESSAGE_TOO_LARGE, "zstd frame declaring 8 MB: MESSAGE_TOO_LARGE");

	/* many small frames (or gzip members), each under the cap, together over it */
	{
		KWriter		frames;
		KWriter		members;
		uint8_t    *one;
		size_t		n;
		int			i;

		kw_init(&frames);
		kw_init(&members);
		for (i = 0; i < 64; i++)
		{
			n = test_compress(KCODEC_ZSTD, zeros, chunk / 8, &one);
			kw_raw(&frames, one, n);
			free(one);
			n = test_compress(KCODEC_GZIP, zeros, chunk / 8, &one);
			kw_raw(&members, one, n);
			free(one);
		}
		test_check(decompress_records(KCODEC_ZSTD, frames.data, frames.len, CAP, &out, &outlen) ==
				   KERR_MESSAGE_TOO_LARGE, "64 zstd frames of 128 kB with a 4 MB cap: MESSAGE_TOO_LARGE");
		test_check(decompress_records(KCODEC_GZIP, members.data, members.len, CAP, &out, &outlen) ==
				   KERR_MESSAGE_TOO_LARGE, "64 gzip members of 128 kB with a 4 MB cap: MESSAGE_TOO_LARGE");
		test_check(decompress_records(KCODEC_GZIP, members.data, members.len, 8 * chunk, &out, &outlen) == 0 &&
				   outlen == 8 * chunk, "the same 64 gzip members with an 8 MB cap: 8 MB");
		free(out);
		kw_free(&frames);
		kw_free(&members);
	}

	/* the cap is for the whole request: two batches of 3 MB each exceed 4 MB */
	{
		KWriter		two;
		uint8_t    *records = calloc(1, 3 * chunk);
		KRecordOut	r = recs[0];

		r.value = records;
		r.value_len = 3 * (int32_t) chunk;
		kw_init(&two);
		test_build_batch(&two, KCODEC_ZSTD, 0, &r, 1);
		test_build_batch(&two, KCODEC_ZSTD, 1, &r, 1);
		test_check(decode_status(two.data, two.len, CAP) == KERR_MESSAGE_TOO_LARGE &&
				   decode_status(two.data, two.len, 8 * chunk) == 0,
				   "two batches of 3 MB: refused with a 4 MB cap, decoded with 8 MB");
		kw_free(&two);
		free(records);
	}

	ZSTD_freeCCtx(cctx);
	free(zeros);
	kw_free(&z);
	kw_free(&w);
	kw_free(&plain);
}

/* ------------------------------------------------- librdkafka's batches */

/*
 * A TCP proxy between a librdkafka producer and librdkafka's mock cluster:
 * every connection the producer makes (its connect_cb points it here) is
 * forwarded to the mock broker, and the records of each Produce request
 * the producer sends are kept.
 */
typedef struct Proxy
{
	int			listen_fd;
	struct sockaddr_in listen_addr;
	struct sockaddr_in broker_addr;
	volatile bool stop;
	pthread_t	thread;
	pthread_mutex_t lock;
	KWriter		captured[64];	/* records of each Produce (partition 0) */
	int			ncaptured;
	int			produce_version;
} Proxy;

#define MAX_PIPES 8

typedef struct Pipe
{
	int			client;
	int			broker;
	KWriter		in;				/* the client's bytes not yet parsed */
} Pipe;

/* Keeps the records of a Produce request (v3+: RecordBatch v2). */
static void
proxy_frame(Proxy *px, const uint8_t *frame, size_t len)
{
	KReader		r;
	const char *s;
	int32_t		slen;
	int16_t		key;
	int16_t		version;
	int32_t		ntopics;

	kr_init(&r, frame, len);
	key = kr_i16(&r);
	version = kr_i16(&r);
	if (key != 0 || version < 3)
		return;
	(void) kr_i32(&r);			/* correlation id */
	kr_string(&r, &s, &slen);	/* client id */
	kr_string(&r, &s, &slen);	/* transactional id */
	(void) kr_i16(&r);			/* acks */
	(void) kr_i32(&r);			/* timeout */
	ntopics = kr_array_len(&r, 6);
	while (ntopics-- > 0 && !r.err)
	{
		int32_t		nparts;

		kr_string(&r, &s, &slen);
		nparts = kr_array_len(&r, 8);
		while (nparts-- > 0 && !r.err)
		{
			const uint8_t *records;
			int32_t		rlen;

			(void) kr_i32(&r);
			if (kr_bytes(&r, &records, &rlen) && records != NULL)
			{
				pthread_mutex_lock(&px->lock);
				if (px->ncaptured < 64)
				{
					kw_init(&px->captured[px->ncaptured]);
					kw_raw(&px->captured[px->ncaptured++], records, (size_t) rlen);
				}
				px->produce_version = version;
				pthread_mutex_unlock(&px->lock);
			}
		}
	}
}

static void
proxy_parse(Proxy *px, Pipe *p)
{
	size_t		pos = 0;

	while (p->in.len - pos >= 4)
	{
		uint32_t	n = ((uint32_t) p->in.data[pos] << 24) | (p->in.data[pos + 1] << 16) |
			(p->in.data[pos + 2] << 8) | p->in.data[pos + 3];

		if (p->in.len - pos - 4 < n)
			break;
		proxy_frame(px, p->in.data + pos + 4, n);
		pos += 4 + n;
	}
	memmove(p->in.data, p->in.data + pos, p->in.len - pos);
	p->in.len -= pos;
}

static bool
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t) k;
	}
	return true;
}

static void *
proxy_main(void *arg)
{
	Proxy	   *px = arg;
	Pipe		pipes[MAX_PIPES];
	int			npipes = 0;
	uint8_t		buf[65536];

	while (!px->stop)
	{
		struct pollfd fds[1 + 2 * MAX_PIPES];
		int			i;

		fds[0].fd = px->listen_fd;
		fds[0].events = POLLIN;
		for (i = 0; i < npipes; i++)
		{
			fds[1 + 2 * i].fd = pipes[i].client;
			fds[1 + 2 * i].events = POLLIN;
			fds[2 + 2 * i].fd = pipes[i].broker;
			fds[2 + 2 * i].events = POLLIN;
		}
		if (poll(fds, 1 + 2 * npipes, 100) <= 0)
			continue;
		for (i = npipes - 1; i >= 0; i--)
		{
			bool		closed = false;
			int			side;

			for (side = 0; side < 2 && !closed; side++)
			{
				int			from = side == 0 ? pipes[i].client : pipes[i].broker;
				int			to = side == 0 ? pipes[i].broker : pipes[i].client;
				ssize_t		n;

				if (!(fds[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				n = read(from, buf, sizeof(buf));
				if (n <= 0 || !write_all(to, buf, (size_t) n))
				{
					closed = true;
					break;
				}
				if (side == 0)
				{
					kw_raw(&pipes[i].in, buf, (size_t) n);
					proxy_parse(px, &pipes[i]);
				}
			}
			if (closed)
			{
				close(pipes[i].client);
				close(pipes[i].broker);
				kw_free(&pipes[i].in);
				pipes[i] = pipes[--npipes];
			}
		}
		if ((fds[0].revents & POLLIN) && npipes < MAX_PIPES)
		{
			int			c = accept(px->listen_fd, NULL, NULL);
			int			b = socket(AF_INET, SOCK_STREAM, 0);

			if (c >= 0 && b >= 0 &&
				connect(b, (struct sockaddr *) &px->broker_addr, sizeof(px->broker_addr)) == 0)
			{
				pipes[npipes].client = c;
				pipes[npipes].broker = b;
				kw_init(&pipes[npipes].in);
				npipes++;
			}
			else
			{
				if (c >= 0)
					close(c);
				if (b >= 0)
					close(b);
			}
		}
	}
	while (npipes-- > 0)
	{
		close(pipes[npipes].client);
		close(pipes[npipes].broker);
		kw_free(&pipes[npipes].in);
	}
	return NULL;
}

static Proxy proxy;

/* librdkafka's connect_cb: every broker connection goes to the proxy */
static int
connect_to_proxy(int sockfd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque)
{
	if (connect(sockfd, (struct sockaddr *) &proxy.listen_addr, sizeof(proxy.listen_addr)) != 0 &&
		errno != EINPROGRESS)
		return errno;
	return 0;
}

static int	delivered;
static int	delivery_errors;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
		delivery_errors++;
	else
		delivered++;
}

static bool
set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "%s=%s: %s\n", name, value, errstr);
		return false;
	}
	return true;
}

/* Produces recs to the mock through the proxy; the batches are captured. */
static bool
produce_with_librdkafka(const char *bootstraps, const char *codec, bool idempotent)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[256];
	rd_kafka_t *rk;
	int			i;

	if (!set(conf, "bootstrap.servers", bootstraps) ||
		!set(conf, "compression.codec", codec) ||
		!set(conf, "linger.ms", "200") ||
		!set(conf, "log_level", "3") ||
		!set(conf, "enable.idempotence", idempotent ? "true" : "false"))
		return false;
	rd_kafka_conf_set_connect_cb(conf, connect_to_proxy);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "rd_kafka_new: %s\n", errstr);
		return false;
	}
	delivered = delivery_errors = 0;
	for (i = 0; i < NRECS; i++)
	{
		const KRecordOut *r = &recs[i];
		rd_kafka_headers_t *hdrs = NULL;
		rd_kafka_resp_err_t err;

		if (r->headers != NULL)
		{
			/* the same headers the round trips use, through librdkafka's API */
			KReader		hr;
			int32_t		n;

			kr_init(&hr, r->headers, (size_t) r->headers_len);
			n = kr_varint(&hr);
			hdrs = rd_kafka_headers_new((size_t) n);
			while (n-- > 0)
			{
				const uint8_t *k,
						   *v;
				int32_t		klen,
							vlen;

				kr_varbytes(&hr, &k, &klen);
				kr_varbytes(&hr, &v, &vlen);
				rd_kafka_header_add(hdrs, (const char *) k, klen, v, v ? vlen : 0);
			}
		}
		/* the headers are the producer's after a successful producev */
		if (hdrs != NULL)
			err = rd_kafka_producev(rk,
									RD_KAFKA_V_TOPIC("records"),
									RD_KAFKA_V_PARTITION(0),
									RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									RD_KAFKA_V_KEY(r->key, r->key ? (size_t) r->key_len : 0),
									RD_KAFKA_V_VALUE((void *) r->value, r->value ? (size_t) r->value_len : 0),
									RD_KAFKA_V_TIMESTAMP(r->timestamp),
									RD_KAFKA_V_HEADERS(hdrs),
									RD_KAFKA_V_END);
		else
			err = rd_kafka_producev(rk,
									RD_KAFKA_V_TOPIC("records"),
									RD_KAFKA_V_PARTITION(0),
									RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									RD_KAFKA_V_KEY(r->key, r->key ? (size_t) r->key_len : 0),
									RD_KAFKA_V_VALUE((void *) r->value, r->value ? (size_t) r->value_len : 0),
									RD_KAFKA_V_TIMESTAMP(r->timestamp),
									RD_KAFKA_V_END);
		if (err)
		{
			fprintf(stderr, "producev: %s\n", rd_kafka_err2str(err));
			if (hdrs != NULL)
				rd_kafka_headers_destroy(hdrs);
			rd_kafka_destroy(rk);
			return false;
		}
	}
	rd_kafka_flush(rk, 15000);
	rd_kafka_destroy(rk);
	return delivered == NRECS && delivery_errors == 0;
}

/*
 * What librdkafka sent must decode to the records produced, in order, with
 * the codec asked for (so librdkafka did compress), and with a producer id
 * and consecutive sequences when idempotent.  librdkafka encodes headers
 * as we do, so their bytes are compared as they are.
 */
static bool
captured_equals(int codec, bool idempotent, int *nbatches_out)
{
	int			c;
	int			next = 0;
	bool		ok = true;

	*nbatches_out = 0;
	for (c = 0; ok && c < proxy.ncaptured; c++)
	{
		KRecordBatch *b;
		int			nb;
		int			i;
		int16_t		err = records_decode(proxy.captured[c].data, proxy.captured[c].len, CAP, &b, &nb);

		if (err != 0)
		{
			fprintf(stderr, "# captured request %d: error %d\n", c, err);
			return false;
		}
		for (i = 0; ok && i < nb; i++)
		{
			int			j;

			(*nbatches_out)++;
			ok = (b[i].attributes & 7) == codec &&
				(idempotent ? b[i].producer_id >= 0 && b[i].base_sequence == next :
				 b[i].producer_id == -1);
			for (j = 0; ok && j < b[i].count; j++)
			{
				const KRecord *d = &b[i].records[j];
				const KRecordOut *r = &recs[next++];

				ok = next <= NRECS && d->timestamp == r->timestamp &&
					same_bytes(d->key, d->key_len, r->key, r->key_len) &&
					same_bytes(d->value, d->value_len, r->value, r->value_len) &&
					(r->headers ? same_bytes(d->headers, d->headers_len, r->headers, r->headers_len) :
					 d->headers_len == 1 && d->headers[0] == 0);
				if (!ok)
					fprintf(stderr, "# record %d differs\n", next - 1);
			}
		}
		records_free(b, nb);
	}
	return ok && next == NRECS;
}

static void
test_librdkafka(void)
{
	static const struct
	{
		const char *name;
		int			codec;
		bool		idempotent;
	}			runs[] = {
		{"none", KCODEC_NONE, false},
		{"gzip", KCODEC_GZIP, false},
		{"snappy", KCODEC_SNAPPY, false},
		{"lz4", KCODEC_LZ4, false},
		{"zstd", KCODEC_ZSTD, false},
		{"none", KCODEC_NONE, true},
		{"zstd", KCODEC_ZSTD, true},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[256];
	rd_kafka_t *mrk;
	rd_kafka_mock_cluster_t *mcluster;
	const char *bootstraps;
	socklen_t	alen = sizeof(proxy.listen_addr);
	size_t		i;
	int			port;

	set(conf, "log_level", "3");
	mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	mcluster = rd_kafka_mock_cluster_new(mrk, 1);
	if (!test_check(mcluster != NULL, "librdkafka's mock cluster starts"))
		return;
	rd_kafka_mock_topic_create(mcluster, "records", 1, 1);
	bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
	/* "127.0.0.1:PORT" (one broker) */
	port = atoi(strrchr(bootstraps, ':') + 1);
	memset(&proxy.broker_addr, 0, sizeof(proxy.broker_addr));
	proxy.broker_addr.sin_family = AF_INET;
	proxy.broker_addr.sin_port = htons((uint16_t) port);
	proxy.broker_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	proxy.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&proxy.listen_addr, 0, sizeof(proxy.listen_addr));
	proxy.listen_addr.sin_family = AF_INET;
	proxy.listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(proxy.listen_fd, (struct sockaddr *) &proxy.listen_addr, sizeof(proxy.listen_addr));
	getsockname(proxy.listen_fd, (struct sockaddr *) &proxy.listen_addr, &alen);
	listen(proxy.listen_fd, 16);
	pthread_mutex_init(&proxy.lock, NULL);
	pthread_create(&proxy.thread, NULL, proxy_main, &proxy);

	for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
	{
		int			nbatches = 0;
		int			c;
		bool		sent;

		pthread_mutex_lock(&proxy.lock);
		for (c = 0; c < proxy.ncaptured; c++)
			kw_free(&proxy.captured[c]);
		proxy.ncaptured = 0;
		pthread_mutex_unlock(&proxy.lock);

		sent = produce_with_librdkafka(bootstraps, runs[i].name, runs[i].idempotent);
		pthread_mutex_lock(&proxy.lock);
		sent = sent && proxy.ncaptured > 0 &&
			captured_equals(runs[i].codec, runs[i].idempotent, &nbatches);
		test_check(sent,
				   "librdkafka %s, codec %s%s: %d Produce v%d requests, %d batches: every record decodes, CRC checked",
				   rd_kafka_version_str(), runs[i].name, runs[i].idempotent ? ", idempotent" : "",
				   proxy.ncaptured, proxy.produce_version, nbatches);
		pthread_mutex_unlock(&proxy.lock);
	}

	proxy.stop = true;
	pthread_join(proxy.thread, NULL);
	close(proxy.listen_fd);
	rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(mrk);
}

int
main(int argc, char **argv)
{
	const char *dump = NULL;
	int			codec;

	if (argc == 3 && strcmp(argv[1], "--decode") == 0)
		return decode_file(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		dump = argv[2];
	make_records();
	test_crc();
	test_kbuf();
	for (codec = KCODEC_NONE; codec <= TCODEC_XERIAL; codec++)
		test_round_trip(codec);
	test_several_batches();
	test_encode(dump);
	test_errors();
	test_compression_errors();
	test_bombs();
	test_librdkafka();
	return test_done();
}
