/*-------------------------------------------------------------------------
 *
 * fuzz_records.c
 *	  A mutation fuzzer for records_decode() and the kbuf readers, built
 *	  with AddressSanitizer and UBSan (gateway/test/Makefile).
 *
 *	  fuzz_records [SECONDS [SEED]]     default 10 seconds, a random seed
 *
 * It starts from valid batches (every codec, several batches in a row, an
 * idempotent one) and feeds records_decode mutations of them: bit flips,
 * random bytes, truncations, lengths and counts set to huge, negative and
 * off-by-one values, varints that overflow, deleted and repeated spans;
 * with the CRC fixed afterwards most of the time, so that the mutations
 * reach the decompressors and the record parser rather than stop at the
 * CRC.  Mutations are also made to a batch's records before they are
 * compressed, so that malformed records come out of every codec.  Every
 * input is in a buffer of its exact size, so a read past it is a
 * sanitizer report, and every record decoded is read whole.  The same
 * inputs go through random sequences of kbuf reads.  Decompression bombs
 * (gzip and zstd streams of 256 MB, a gzip stream of a gzip bomb, a zstd
 * frame lying about its size, many frames that together exceed the cap)
 * must be refused, and the process's peak memory must stay under
 * MAX_RSS_MB.  Any sanitizer report aborts with a non-zero status; the
 * seed printed first reproduces the run (the inputs depend only on it).
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <zlib.h>
#include <zstd.h>

#include "gateway.h"
#include "kbuf.h"
#include "records.h"
#include "compress.h"
#include "testlib.h"

#define CAP			(1024 * 1024)
#define MAX_RSS_MB	128			/* ASan's shadow and a small quarantine included */
#define NSEEDS		10

/*
 * Sanitizer settings the fuzzer always wants: no single allocation above
 * 64 MB (a bomb that got through would be one), and a hard RSS limit.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "max_allocation_size_mb=64:allocator_may_return_null=0:hard_rss_limit_mb=1024:"
		"quarantine_size_mb=16";
}

/* ---------------------------------------------------------- randomness */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static size_t
rnd_below(size_t n)
{
	return n ? (size_t) (rnd() % n) : 0;
}

/* --------------------------------------------------------------- seeds */

typedef struct Seed
{
	KWriter		batch;			/* the valid batch (or batches) */
	KWriter		plain;			/* its records, uncompressed (one batch) */
	int			codec;
} Seed;

static Seed seeds[NSEEDS];
static KWriter headers;

static void
make_seeds(void)
{
	static const char *values[] = {"", "v", "a longer value, a longer value, a longer value", NULL};
	KRecordOut	recs[12];
	int			i;

	kw_init(&headers);
	kw_varint(&headers, 2);
	kw_varbytes(&headers, "k", 1);
	kw_varbytes(&headers, "v", 1);
	kw_varbytes(&headers, "k", 1);
	kw_varbytes(&headers, NULL, -1);
	for (i = 0; i < 12; i++)
	{
		recs[i].offset = i;
		recs[i].timestamp = 1700000000000LL + i;
		recs[i].key = i % 4 == 1 ? NULL : (const uint8_t *) "key";
		recs[i].key_len = i % 4 == 1 ? -1 : 3;
		recs[i].value = (const uint8_t *) values[i % 4];
		recs[i].value_len = values[i % 4] ? (int32_t) strlen(values[i % 4]) : -1;
		recs[i].headers = i % 3 == 0 ? headers.data : NULL;
		recs[i].headers_len = (int32_t) headers.len;
	}
	for (i = 0; i < NSEEDS; i++)
	{
		Seed	   *s = &seeds[i];

		s->codec = i < 6 ? i : (int) rnd_below(6);
		kw_init(&s->batch);
		kw_init(&s->plain);
		test_build_batch(&s->batch, s->codec, 0, recs, 12);
		records_encode(&s->plain, 0, recs, 12, 11);
	}
	/* two seeds of several batches, one with a producer id and sequence */
	test_build_batch(&seeds[6].batch, KCODEC_ZSTD, 12, recs, 3);
	test_build_batch(&seeds[7].batch, KCODEC_NONE, 12, recs, 1);
	test_build_batch(&seeds[7].batch, KCODEC_GZIP, 13, recs, 2);
	test_put_i64(seeds[8].batch.data + B_PRODUCER_ID, 42);
	test_put_i32(seeds[8].batch.data + B_BASE_SEQUENCE, 7);
	test_fix_crc(seeds[8].batch.data, seeds[8].batch.len);
}

/* ------------------------------------------------------------ mutations */

static const int64_t interesting[] = {
	0, 1, -1, 2, -2, 7, 61, 127, 128, 255, 0x7fff, 0x8000, 0xffff,
	INT32_MAX, INT32_MIN, INT32_MAX - 1, (int64_t) INT32_MAX + 1, INT64_MAX, INT64_MIN
};
#define NINTERESTING (sizeof(interesting) / sizeof(interesting[0]))

/* One random change to w's bytes. */
static void
mutate(KWriter *w)
{
	size_t		at = rnd_below(w->len);
	size_t		n;
	int64_t		v = interesting[rnd_below(NINTERESTING)];

	if (w->len == 0)
	{
		kw_i8(w, (int8_t) rnd());
		return;
	}
	switch (rnd_below(9))
	{
		case 0:					/* flip a bit */
			w->data[at] ^= (uint8_t) (1 << rnd_below(8));
			break;
		case 1:					/* a random byte */
			w->data[at] = (uint8_t) rnd();
			break;
		case 2:					/* truncate */
			w->len = at;
			break;
		case 3:					/* an int32 field set to an interesting value */
			if (at + 4 <= w->len)
				test_put_i32(w->data + at, (int32_t) v);
			break;
		case 4:					/* a varint set to an interesting value */
			{
				KWriter		vw;

				kw_init(&vw);
				kw_varlong(&vw, v);
				if (at + vw.len <= w->len)
					memcpy(w->data + at, vw.data, vw.len);
				kw_free(&vw);
			}
			break;
		case 5:					/* a varint that never ends */
			n = 5 + rnd_below(8);
			while (n-- > 0 && at < w->len)
				w->data[at++] = 0xff;
			break;
		case 6:					/* delete a span */
			n = rnd_below(w->len - at) + 1;
			memmove(w->data + at, w->data + at + n, w->len - at - n);
			w->len -= n;
			break;
		case 7:					/* repeat a span */
			{
				size_t		len = w->len;

				n = rnd_below(len - at > 64 ? 64 : len - at) + 1;
				if (kw_extend(w, n) != NULL)
				{
					memmove(w->data + at + n, w->data + at, len - at);
				}
			}
			break;
		default:				/* an int64 field */
			if (at + 8 <= w->len)
				test_put_i64(w->data + at, v);
			break;
	}
}

/*
 * Keeps the first batch's CRC right after the mutations (over what its
 * batchLength says, if the data holds that much), and its length too if
 * fix_length.
 */
static void
fix_batch(KWriter *w, bool fix_length)
{
	uint32_t	batch_len;

	if (w->len < B_RECORDS)
		return;
	if (fix_length)
		test_put_i32(w->data + B_BATCH_LENGTH, (int32_t) (w->len - 12));
	batch_len = ((uint32_t) w->data[B_BATCH_LENGTH] << 24) | (w->data[B_BATCH_LENGTH + 1] << 16) |
		(w->data[B_BATCH_LENGTH + 2] << 8) | w->data[B_BATCH_LENGTH + 3];
	test_fix_crc(w->data, batch_len <= w->len - 12 ? batch_len + 12 : w->len);
}

/* Builds this iteration's input into w. */
static void
make_input(KWriter *w)
{
	Seed	   *s = &seeds[rnd_below(NSEEDS)];
	int			nmut = 1 + (int) rnd_below(4);
	int			i;

	kw_reset(w);
	switch (rnd_below(4))
	{
		case 0:					/* the batch's bytes, CRC left as it falls */
			kw_raw(w, s->batch.data, s->batch.len);
			for (i = 0; i < nmut; i++)
				mutate(w);
			break;
		case 1:					/* the batch's bytes, CRC (and maybe length) fixed */
			kw_raw(w, s->batch.data, s->batch.len);
			for (i = 0; i < nmut; i++)
				mutate(w);
			fix_batch(w, rnd_below(2) == 0);
			break;
		case 2:					/* the header's fields only, CRC fixed */
			kw_raw(w, s->batch.data, s->batch.len);
			for (i = 0; i < nmut; i++)
			{
				size_t		at = B_ATTRIBUTES + rnd_below(B_RECORDS - B_ATTRIBUTES - 3);

				test_put_i32(w->data + at, (int32_t) interesting[rnd_below(NINTERESTING)]);
			}
			fix_batch(w, false);
			break;
		default:				/* the records, before compression */
			{
				KWriter		records;

				kw_init(&records);
				kw_raw(&records, s->plain.data + B_RECORDS, s->plain.len - B_RECORDS);
				for (i = 0; i < nmut; i++)
					mutate(&records);
				test_rebuild_batch(w, s->plain.data, s->codec, records.data, records.len);
				kw_free(&records);
			}
			break;
	}
}

/* ------------------------------------------------------------- targets */

static volatile uint64_t sink;

/* Reads every byte a decoded batch points at. */
static void
touch_batches(const KRecordBatch *b, int nb)
{
	int			i,
				j;
	int32_t		k;

	for (i = 0; i < nb; i++)
		for (j = 0; j < b[i].count; j++)
		{
			const KRecord *r = &b[i].records[j];

			for (k = 0; r->key && k < r->key_len; k++)
				sink += r->key[k];
			for (k = 0; r->value && k < r->value_len; k++)
				sink += r->value[k];
			for (k = 0; k < r->headers_len; k++)
				sink += r->headers[k];
		}
}

/* A random sequence of kbuf reads over the input: never past its end. */
static void
fuzz_reader(const uint8_t *data, size_t len)
{
	KReader		r;
	int			steps = 0;

	kr_init(&r, data, len);
	while (!r.err && steps++ < 64)
	{
		const uint8_t *p = NULL;
		const char *s = NULL;
		int32_t		n = -1;
		size_t		before = kr_remaining(&r);

		switch (rnd_below(12))
		{
			case 0:
				sink += (uint64_t) kr_i8(&r) + (uint64_t) kr_i16(&r);
				break;
			case 1:
				sink += (uint64_t) kr_i32(&r) + (uint64_t) kr_i64(&r);
				break;
			case 2:
				sink += kr_uvarint(&r);
				break;
			case 3:
				sink += (uint64_t) kr_varint(&r) + (uint64_t) kr_varlong(&r);
				break;
			case 4:
				kr_string(&r, &s, &n);
				p = (const uint8_t *) s;
				break;
			case 5:
				kr_compact_string(&r, &s, &n);
				p = (const uint8_t *) s;
				break;
			case 6:
				kr_bytes(&r, &p, &n);
				break;
			case 7:
				kr_varbytes(&r, &p, &n);
				break;
			case 8:
				{
					size_t		min = 1 + rnd_below(16);

					n = kr_array_len(&r, min);
					if (!r.err && n > 0 && (size_t) n * min > before)
						abort();	/* a count the request cannot hold got through */
					n = -1;
				}
				break;
			case 9:
				n = kr_compact_array_len(&r, 4);
				n = -1;
				break;
			case 10:
				kr_skip_tagged_fields(&r);
				break;
			default:
				p = kr_take(&r, rnd_below(before + 2));
				n = -1;
				break;
		}
		if (p != NULL && n > 0)
			sink += p[0] + p[n - 1];	/* ASan: inside the input */
		if (r.pos > r.len)
			abort();
	}
	if (r.err && kr_remaining(&r) != 0)
		abort();
}

static int	outcomes[128];

static void
fuzz_one(const KWriter *w)
{
	/* a copy of the exact size: a read past it is a report */
	uint8_t    *data = malloc(w->len ? w->len : 1);
	KRecordBatch *b;
	int			nb;
	int16_t		err;
	size_t		cap = rnd_below(8) == 0 ? rnd_below(2000) : CAP;

	memcpy(data, w->data, w->len);
	err = records_decode(data, w->len, cap, &b, &nb);
	if (err == 0)
	{
		touch_batches(b, nb);
		records_free(b, nb);
	}
	else if (b != NULL || nb != 0)
		abort();
	outcomes[err >= 0 && err < 127 ? err : 127]++;
	fuzz_reader(data, w->len);
	free(data);
}

/* --------------------------------------------------------------- bombs */

/* gzip of total bytes of zeros, streamed: no buffer of that size exists */
static void
gzip_zeros(KWriter *z, size_t total)
{
	static uint8_t zeros[65536];
	z_stream	zs;
	size_t		done;

	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	for (done = 0; done < total; done += sizeof(zeros))
	{
		zs.next_in = zeros;
		zs.avail_in = sizeof(zeros);
		do
		{
			zs.next_out = kw_extend(z, 65536);
			zs.avail_out = 65536;
			deflate(&zs, done + sizeof(zeros) >= total ? Z_FINISH : Z_NO_FLUSH);
			z->len -= zs.avail_out;
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
}

static void
zstd_zeros(KWriter *z, size_t total)
{
	static uint8_t zeros[1 << 20];
	ZSTD_CCtx  *cctx = ZSTD_createCCtx();
	size_t		done;

	for (done = 0; done < total; done += sizeof(zeros))
	{
		ZSTD_inBuffer in = {zeros, sizeof(zeros), 0};
		bool		last = done + sizeof(zeros) >= total;
		size_t		left;

		do
		{
			ZSTD_outBuffer o = {kw_extend(z, 65536), 65536, 0};

			left = ZSTD_compressStream2(cctx, &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
			z->len -= 65536 - o.pos;
		} while (in.pos < in.size || (last && left != 0));
	}
	ZSTD_freeCCtx(cctx);
}

/* a batch whose records are the compressed stream z, claiming codec */
static int16_t
decode_bomb(const KWriter *z, int codec)
{
	KWriter		w;
	int16_t		err;

	kw_init(&w);
	test_rebuild_batch(&w, seeds[0].plain.data, KCODEC_NONE, z->data, z->len);
	w.data[B_ATTRIBUTES + 1] = (uint8_t) ((w.data[B_ATTRIBUTES + 1] & ~7) | codec);
	test_fix_crc(w.data, w.len);
	{
		KRecordBatch *b;
		int			nb;

		err = records_decode(w.data, w.len, CAP, &b, &nb);
		if (err == 0)
			records_free(b, nb);
	}
	kw_free(&w);
	return err;
}

static int
run_bombs(void)
{
	KWriter		z;
	KWriter		zz;
	int			failures = 0;
	uint8_t    *inner;
	size_t		n;

	kw_init(&z);
	kw_init(&zz);

	gzip_zeros(&z, (size_t) 256 << 20);
	failures += !test_check(decode_bomb(&z, KCODEC_GZIP) == KERR_MESSAGE_TOO_LARGE,
							"gzip bomb: %zu bytes of gzip, 256 MB of zeros: MESSAGE_TOO_LARGE", z.len);

	/* gzip of that gzip: the outer layer is small, the inner one is not undone */
	n = test_compress(KCODEC_GZIP, z.data, z.len, &inner);
	kw_reset(&zz);
	kw_raw(&zz, inner, n);
	free(inner);
	failures += !test_check(decode_bomb(&zz, KCODEC_GZIP) == KERR_INVALID_RECORD,
							"gzip of a gzip bomb: decompressed once, its bytes are not records");

	kw_reset(&z);
	zstd_zeros(&z, (size_t) 256 << 20);
	failures += !test_check(decode_bomb(&z, KCODEC_ZSTD) == KERR_MESSAGE_TOO_LARGE,
							"zstd bomb: %zu bytes of zstd, 256 MB of zeros: MESSAGE_TOO_LARGE", z.len);

	/* zstd of the zstd bomb */
	n = test_compress(KCODEC_ZSTD, z.data, z.len, &inner);
	kw_reset(&zz);
	kw_raw(&zz, inner, n);
	free(inner);
	failures += !test_check(decode_bomb(&zz, KCODEC_ZSTD) == KERR_INVALID_RECORD,
							"zstd of a zstd bomb: decompressed once, its bytes are not records");

	/*
	 * A frame written by hand whose header says it holds 300 bytes and
	 * whose blocks (RLE blocks of 128 kB of zeros, 4 bytes each) hold
	 * 256 MB: the declared size passes the cap, the content must not.
	 */
	kw_reset(&zz);
	{
		static const uint8_t head[] = {
			0x28, 0xb5, 0x2f, 0xfd,	/* magic */
			0x40,				/* descriptor: a 2-byte content size, a window */
			0x38,				/* window: 2^17 */
			0x2c, 0x00			/* content size: 256 + 44 = 300 */
		};
		int			blocks = 2048;

		kw_raw(&zz, head, sizeof(head));
		while (blocks-- > 0)
		{
			/* block header: last?, type 1 (RLE), size 128 kB; then the byte */
			uint32_t	bh = (blocks == 0 ? 1 : 0) | (1 << 1) | (131072 << 3);
			uint8_t		block[4] = {(uint8_t) bh, (uint8_t) (bh >> 8), (uint8_t) (bh >> 16), 0};

			kw_raw(&zz, block, sizeof(block));
		}
		test_check(ZSTD_getFrameContentSize(zz.data, zz.len) == 300,
				   "the lying zstd frame declares 300 bytes");
		failures += !test_check(decode_bomb(&zz, KCODEC_ZSTD) != 0,
								"a zstd frame that declares 300 bytes and holds 256 MB is refused (%d)",
								decode_bomb(&zz, KCODEC_ZSTD));
	}

	/* the same bomb 20 times over: 20 frames */
	kw_reset(&zz);
	for (n = 0; n < 20; n++)
		kw_raw(&zz, z.data, z.len);
	failures += !test_check(decode_bomb(&zz, KCODEC_ZSTD) == KERR_MESSAGE_TOO_LARGE,
							"20 zstd bombs one after the other: MESSAGE_TOO_LARGE");

	/* 64 gzip members of 64 kB each: 4 MB from members each under the cap */
	kw_reset(&zz);
	for (n = 0; n < 64; n++)
	{
		kw_reset(&z);
		gzip_zeros(&z, 65536);
		kw_raw(&zz, z.data, z.len);
	}
	failures += !test_check(decode_bomb(&zz, KCODEC_GZIP) == KERR_MESSAGE_TOO_LARGE,
							"64 gzip members of 64 kB (4 MB, cap 1 MB): MESSAGE_TOO_LARGE");
	kw_free(&z);
	kw_free(&zz);
	return failures;
}

static long
max_rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

int
main(int argc, char **argv)
{
	double		seconds = argc > 1 ? atof(argv[1]) : 10;
	uint64_t	seed = argc > 2 ? strtoull(argv[2], NULL, 10) : (uint64_t) time(NULL);
	time_t		end;
	KWriter		w;
	long		iterations = 0;
	int			i;

	printf("# fuzz_records: %.0f seconds, seed %llu (fuzz_records %.0f %llu repeats this run)\n",
		   seconds, (unsigned long long) seed, seconds, (unsigned long long) seed);
	rng_state = seed * 2 + 1;
	make_seeds();
	kw_init(&w);

	run_bombs();
	test_check(max_rss_mb() < MAX_RSS_MB, "after the bombs, peak memory %ld MB (bound %d MB)",
			   max_rss_mb(), MAX_RSS_MB);

	/* the seeds themselves decode */
	for (i = 0; i < NSEEDS; i++)
	{
		KRecordBatch *b;
		int			nb;
		int16_t		err = records_decode(seeds[i].batch.data, seeds[i].batch.len, CAP, &b, &nb);

		test_check(err == 0, "seed %d (codec %d) decodes (error %d)", i, seeds[i].codec, err);
		if (err == 0)
			records_free(b, nb);
	}

	end = time(NULL) + (time_t) seconds;
	while (time(NULL) < end)
	{
		for (i = 0; i < 256; i++)
		{
			make_input(&w);
			fuzz_one(&w);
			iterations++;
		}
	}
	printf("# %ld inputs; outcomes:", iterations);
	for (i = 0; i < 128; i++)
		if (outcomes[i])
			printf(" error %d: %d", i == 127 ? -1 : i, outcomes[i]);
	printf("\n");
	test_check(outcomes[0] > 0 && outcomes[KERR_CORRUPT_MESSAGE] > 0 && outcomes[KERR_INVALID_RECORD] > 0,
			   "the mutations reach every outcome: accepted, CORRUPT_MESSAGE, INVALID_RECORD");
	test_check(iterations > 0, "%ld mutated inputs decoded without a sanitizer report", iterations);
	test_check(max_rss_mb() < MAX_RSS_MB, "peak memory %ld MB (bound %d MB)", max_rss_mb(), MAX_RSS_MB);
	kw_free(&w);
	return test_done();
}
