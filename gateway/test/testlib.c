/*-------------------------------------------------------------------------
 *
 * testlib.c
 *	  Building compressed batches and TAP-style checks for the RecordBatch
 *	  tests; see testlib.h.
 *
 * The compressors here are the libraries' own (zlib's gzip, snappy's raw
 * format with the xerial framing written by hand the way snappy-java
 * writes it, LZ4F frames, zstd frames), so a batch they build is what a
 * client would send.
 *
 *-------------------------------------------------------------------------
 */
#include "testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

int			test_failures = 0;
static int	test_count = 0;

bool
test_check(bool cond, const char *fmt,...)
{
	va_list		ap;

	printf("%sok %d - ", cond ? "" : "not ", ++test_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		test_failures++;
	return cond;
}

int
test_done(void)
{
	printf("1..%d\n", test_count);
	if (test_failures)
		printf("# %d of %d checks failed\n", test_failures, test_count);
	return test_failures ? 1 : 0;
}

void
test_put_i16(uint8_t *p, int16_t v)
{
	p[0] = (uint8_t) ((uint16_t) v >> 8);
	p[1] = (uint8_t) v;
}

void
test_put_i32(uint8_t *p, int32_t v)
{
	p[0] = (uint8_t) ((uint32_t) v >> 24);
	p[1] = (uint8_t) ((uint32_t) v >> 16);
	p[2] = (uint8_t) ((uint32_t) v >> 8);
	p[3] = (uint8_t) v;
}

void
test_put_i64(uint8_t *p, int64_t v)
{
	test_put_i32(p, (int32_t) ((uint64_t) v >> 32));
	test_put_i32(p + 4, (int32_t) v);
}

void
test_fix_crc(uint8_t *b, size_t len)
{
	if (len >= B_RECORDS)
		test_put_i32(b + B_CRC, (int32_t) records_crc32c(b + B_ATTRIBUTES, len - B_ATTRIBUTES));
}

static size_t
compress_gzip(const uint8_t *src, size_t len, uint8_t **out)
{
	z_stream	zs;
	size_t		bound;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	bound = deflateBound(&zs, len) + 32;
	*out = malloc(bound);
	zs.next_in = (Bytef *) src;
	zs.avail_in = (uInt) len;
	zs.next_out = *out;
	zs.avail_out = (uInt) bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
	return bound - zs.avail_out;
}

/* snappy-java's framing: magic, version 1, compatible version 1, blocks */
static size_t
compress_xerial(const uint8_t *src, size_t len, uint8_t **out)
{
	static const uint8_t header[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
	const size_t block = 1000;	/* small blocks, so that tests see several */
	size_t		cap = sizeof(header) + (len / block + 1) * (4 + snappy_max_compressed_length(block));
	size_t		pos = 0;
	size_t		at = sizeof(header);

	*out = malloc(cap);
	memcpy(*out, header, sizeof(header));
	do
	{
		size_t		n = len - pos < block ? len - pos : block;
		size_t		clen = cap - at - 4;

		if (snappy_compress((const char *) src + pos, n, (char *) *out + at + 4, &clen) != SNAPPY_OK)
			abort();
		test_put_i32(*out + at, (int32_t) clen);
		at += 4 + clen;
		pos += n;
	} while (pos < len);
	return at;
}

size_t
test_compress(int codec, const uint8_t *src, size_t len, uint8_t **out)
{
	size_t		n;

	switch (codec)
	{
		case KCODEC_GZIP:
			return compress_gzip(src, len, out);
		case KCODEC_SNAPPY:
			n = snappy_max_compressed_length(len);
			*out = malloc(n);
			if (snappy_compress((const char *) src, len, (char *) *out, &n) != SNAPPY_OK)
				abort();
			return n;
		case TCODEC_XERIAL:
			return compress_xerial(src, len, out);
		case KCODEC_LZ4:
			n = LZ4F_compressFrameBound(len, NULL);
			*out = malloc(n);
			n = LZ4F_compressFrame(*out, n, src, len, NULL);
			if (LZ4F_isError(n))
				abort();
			return n;
		case KCODEC_ZSTD:
			n = ZSTD_compressBound(len);
			*out = malloc(n);
			n = ZSTD_compress(*out, n, src, len, 3);
			if (ZSTD_isError(n))
				abort();
			return n;
		default:
			*out = malloc(len ? len : 1);
			memcpy(*out, src, len);
			return len;
	}
}

void
test_rebuild_batch(KWriter *w, const uint8_t *b, int codec,
				   const uint8_t *records, size_t records_len)
{
	uint8_t    *z;
	size_t		zlen = test_compress(codec, records, records_len, &z);
	size_t		start = w->len;
	uint8_t    *p;
	int16_t		attributes = (int16_t) ((b[B_ATTRIBUTES] << 8) | b[B_ATTRIBUTES + 1]);

	kw_raw(w, b, B_RECORDS);
	kw_raw(w, z, zlen);
	free(z);
	p = w->data + start;
	test_put_i32(p + B_BATCH_LENGTH, (int32_t) (B_RECORDS - 12 + zlen));
	test_put_i16(p + B_ATTRIBUTES,
				 (int16_t) ((attributes & ~7) | (codec == TCODEC_XERIAL ? KCODEC_SNAPPY : codec)));
	test_fix_crc(p, B_RECORDS + zlen);
}

void
test_build_batch(KWriter *w, int codec, int64_t base_offset, const KRecordOut *recs, int n)
{
	KWriter		plain;
	KRecordOut *copy = malloc(sizeof(KRecordOut) * (n > 0 ? n : 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		copy[i] = recs[i];
		copy[i].offset = base_offset + i;
	}
	kw_init(&plain);
	records_encode(&plain, base_offset, copy, n, base_offset + n - 1);
	free(copy);
	test_rebuild_batch(w, plain.data, codec, plain.data + B_RECORDS, plain.len - B_RECORDS);
	kw_free(&plain);
}
