/*-------------------------------------------------------------------------
 *
 * compress.c
 *	  Decompressing a RecordBatch's records: gzip (zlib), snappy (raw, as
 *	  librdkafka writes it, or in the xerial framing Java's clients write),
 *	  lz4 (the LZ4F frame format) and zstd.
 *
 * The input comes from the network, so the output is bounded before it is
 * produced: every codec writes into an OutBuf that grows by doubling up to
 * cap + 1 bytes, and reaching cap + 1 ends the decompression with
 * MESSAGE_TOO_LARGE.  The sizes a stream declares (snappy's length,
 * zstd's frame content size) are checked against cap before anything is
 * allocated for them, and never trusted beyond that: the decompressors
 * write only into the space they are given.  zstd's window, the one piece
 * of codec state whose size the stream chooses, is limited too.
 *
 *-------------------------------------------------------------------------
 */
#include "compress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "gateway.h"
#include "records.h"

/* The output of a decompression: at most limit = cap + 1 bytes. */
typedef struct OutBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		size;			/* allocated */
	size_t		limit;
} OutBuf;

/* first allocation: a guess from the input's size, at most the limit */
#define OUTBUF_MIN		(64 * 1024)

/*
 * zstd's window: large enough for any honest producer (Java's zstd-jni
 * streams use up to 8 MB at its default level), small enough that a frame
 * cannot make the decoder allocate more than 2^ZSTD_WLOG_MAX bytes.
 */
#define ZSTD_WLOG_FLOOR	23
#define ZSTD_WLOG_MAX	27

/* the framing Java's snappy-java (xerial) adds around raw snappy blocks */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16	/* the magic, a version and a compatible version */

static bool
outbuf_init(OutBuf *o, size_t cap, size_t hint)
{
	o->len = 0;
	o->limit = cap + 1;
	o->size = hint < OUTBUF_MIN ? OUTBUF_MIN : hint;
	if (o->size > o->limit)
		o->size = o->limit;
	o->data = malloc(o->size);
	return o->data != NULL;
}

/*
 * Makes room for more output.  False when the buffer already holds limit
 * bytes (*too_large set: the output exceeds cap) or memory ran out.
 */
static bool
outbuf_grow(OutBuf *o, bool *too_large)
{
	size_t		size;
	uint8_t    *data;

	if (o->len < o->size)
		return true;
	if (o->size >= o->limit)
	{
		*too_large = true;
		return false;
	}
	size = o->size > o->limit / 2 ? o->limit : o->size * 2;
	data = realloc(o->data, size);
	if (data == NULL)
		return false;
	o->data = data;
	o->size = size;
	return true;
}

/* Ends a decompression: hands the buffer over on success, else frees it. */
static int16_t
outbuf_finish(OutBuf *o, int16_t err, uint8_t **out, size_t *outlen)
{
	if (err == 0 && o->len >= o->limit)
		err = KERR_MESSAGE_TOO_LARGE;
	if (err != 0)
	{
		free(o->data);
		*out = NULL;
		*outlen = 0;
		return err;
	}
	*out = o->data;
	*outlen = o->len;
	return 0;
}

/*
 * gzip: one or more gzip members one after the other (Java's
 * GZIPInputStream reads concatenated members, so we do too).
 */
static int16_t
decompress_gzip(const uint8_t *src, size_t len, OutBuf *o)
{
	z_stream	zs;
	int16_t		err = 0;
	bool		too_large = false;
	int			rc;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return KERR_UNKNOWN_SERVER_ERROR;
	zs.next_in = (Bytef *) src;
	zs.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt) len;
	for (;;)
	{
		if (!outbuf_grow(o, &too_large))
		{
			err = too_large ? KERR_MESSAGE_TOO_LARGE : KERR_UNKNOWN_SERVER_ERROR;
			break;
		}
		zs.next_out = o->data + o->len;
		zs.avail_out = (uInt) ((o->size - o->len) > UINT32_MAX ? UINT32_MAX : o->size - o->len);
		rc = inflate(&zs, Z_NO_FLUSH);
		o->len = (size_t) (zs.next_out - o->data);
		if (rc == Z_STREAM_END)
		{
			if (zs.avail_in == 0)
				break;
			if (inflateReset(&zs) != Z_OK)	/* the next member */
			{
				err = KERR_CORRUPT_MESSAGE;
				break;
			}
			continue;
		}
		if (rc == Z_OK)
			continue;
		/* Z_BUF_ERROR with output space left: the input ended early */
		if (rc == Z_BUF_ERROR && zs.avail_out == 0)
			continue;
		err = rc == Z_MEM_ERROR ? KERR_UNKNOWN_SERVER_ERROR : KERR_CORRUPT_MESSAGE;
		break;
	}
	inflateEnd(&zs);
	return err;
}

/* One raw snappy block appended to the output, its declared size checked. */
static int16_t
snappy_block(const uint8_t *src, size_t len, OutBuf *o)
{
	size_t		n;

	if (snappy_uncompressed_length((const char *) src, len, &n) != SNAPPY_OK)
		return KERR_CORRUPT_MESSAGE;
	if (n >= o->limit - o->len)
		return KERR_MESSAGE_TOO_LARGE;
	if (o->len + n > o->size)
	{
		uint8_t    *data = realloc(o->data, o->len + n);

		if (data == NULL)
			return KERR_UNKNOWN_SERVER_ERROR;
		o->data = data;
		o->size = o->len + n;
	}
	if (snappy_uncompress((const char *) src, len, (char *) o->data + o->len, &n) != SNAPPY_OK)
		return KERR_CORRUPT_MESSAGE;
	o->len += n;
	return 0;
}

/*
 * snappy: raw (librdkafka, kafkajs' snappy plugin) or xerial-framed (Java):
 * the magic, two int32 versions, then blocks of int32 length + raw snappy.
 */
static int16_t
decompress_snappy(const uint8_t *src, size_t len, OutBuf *o)
{
	KReader		r;
	int16_t		err = 0;

	if (len < XERIAL_HEADER_SIZE || memcmp(src, xerial_magic, sizeof(xerial_magic)) != 0)
		return snappy_block(src, len, o);

	kr_init(&r, src + XERIAL_HEADER_SIZE, len - XERIAL_HEADER_SIZE);
	while (err == 0 && kr_remaining(&r) > 0)
	{
		int32_t		n = kr_i32(&r);
		const uint8_t *block = n > 0 ? kr_take(&r, (size_t) n) : NULL;

		if (block == NULL)
			return KERR_CORRUPT_MESSAGE;
		err = snappy_block(block, (size_t) n, o);
	}
	return err;
}

/*
 * lz4: one or more LZ4F frames (Kafka's lz4 is the frame format).  The
 * input may be used up while decoded output still waits in LZ4F's buffer
 * (when ours was full), so the input has ended early only when a call
 * left room in our buffer unused.
 */
static int16_t
decompress_lz4(const uint8_t *src, size_t len, OutBuf *o)
{
	LZ4F_dctx  *dctx;
	size_t		pos = 0;
	int16_t		err = 0;
	bool		too_large = false;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return KERR_UNKNOWN_SERVER_ERROR;
	for (;;)
	{
		size_t		in = len - pos;
		size_t		room;
		size_t		out;
		size_t		hint;

		if (!outbuf_grow(o, &too_large))
		{
			err = too_large ? KERR_MESSAGE_TOO_LARGE : KERR_UNKNOWN_SERVER_ERROR;
			break;
		}
		room = out = o->size - o->len;
		hint = LZ4F_decompress(dctx, o->data + o->len, &out, src + pos, &in, NULL);
		if (LZ4F_isError(hint))
		{
			err = KERR_CORRUPT_MESSAGE;
			break;
		}
		pos += in;
		o->len += out;
		if (hint == 0 && pos >= len)
			break;				/* the last frame is complete */
		if ((pos >= len && out < room) || (in == 0 && out == 0))
		{
			err = KERR_CORRUPT_MESSAGE; /* cut short, or stuck */
			break;
		}
	}
	LZ4F_freeDecompressionContext(dctx);
	return err;
}

/* the window log allowed for a cap: the cap's size, within the bounds */
static int
zstd_window_log(size_t cap)
{
	int			wlog = ZSTD_WLOG_FLOOR;

	while (wlog < ZSTD_WLOG_MAX && ((size_t) 1 << wlog) < cap)
		wlog++;
	return wlog;
}

/* zstd: one or more frames, streamed. */
static int16_t
decompress_zstd(const uint8_t *src, size_t len, OutBuf *o)
{
	ZSTD_DCtx  *dctx;
	ZSTD_inBuffer in = {src, len, 0};
	unsigned long long declared = ZSTD_getFrameContentSize(src, len);
	size_t		rc;
	int16_t		err = 0;
	bool		too_large = false;

	/* an honest frame that says it is too large is refused at once */
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR &&
		declared >= o->limit)
		return KERR_MESSAGE_TOO_LARGE;

	dctx = ZSTD_createDCtx();
	if (dctx == NULL)
		return KERR_UNKNOWN_SERVER_ERROR;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
											zstd_window_log(o->limit - 1))))
	{
		ZSTD_freeDCtx(dctx);
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	for (;;)
	{
		ZSTD_outBuffer out;
		size_t		in_before = in.pos;
		size_t		out_before;

		if (!outbuf_grow(o, &too_large))
		{
			err = too_large ? KERR_MESSAGE_TOO_LARGE : KERR_UNKNOWN_SERVER_ERROR;
			break;
		}
		out.dst = o->data;
		out.size = o->size;
		out.pos = out_before = o->len;
		rc = ZSTD_decompressStream(dctx, &out, &in);
		if (ZSTD_isError(rc))
		{
			err = ZSTD_getErrorCode(rc) == ZSTD_error_memory_allocation ?
				KERR_UNKNOWN_SERVER_ERROR : KERR_CORRUPT_MESSAGE;
			break;
		}
		o->len = out.pos;
		if (rc == 0 && in.pos >= in.size)
			break;				/* the last frame is complete and flushed */
		/* zstd flushes all it can: room left over means the input ended early */
		if ((in.pos >= in.size && out.pos < out.size) ||
			(in.pos == in_before && out.pos == out_before))
		{
			err = KERR_CORRUPT_MESSAGE;
			break;
		}
	}
	ZSTD_freeDCtx(dctx);
	return err;
}

int16_t
decompress_records(int codec, const uint8_t *src, size_t len, size_t cap,
				   uint8_t **out, size_t *outlen)
{
	OutBuf		o;
	int16_t		err;

	if (codec < KCODEC_GZIP || codec > KCODEC_ZSTD)
		return KERR_UNSUPPORTED_COMPRESSION_TYPE;
	if (cap > SIZE_MAX / 4)
		cap = SIZE_MAX / 4;
	if (!outbuf_init(&o, cap, len > SIZE_MAX / 4 ? cap : len * 4))
		return KERR_UNKNOWN_SERVER_ERROR;
	switch (codec)
	{
		case KCODEC_GZIP:
			err = decompress_gzip(src, len, &o);
			break;
		case KCODEC_SNAPPY:
			err = decompress_snappy(src, len, &o);
			break;
		case KCODEC_LZ4:
			err = decompress_lz4(src, len, &o);
			break;
		default:
			err = decompress_zstd(src, len, &o);
			break;
	}
	return outbuf_finish(&o, err, out, outlen);
}
