/*-------------------------------------------------------------------------
 *
 * compress.h
 *	  Decompressing the records of a compressed RecordBatch (compress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_COMPRESS_H
#define PGQK_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decompresses src, compressed with codec (KCODEC_GZIP...), into a new
 * buffer (*out, malloc'd, *outlen bytes; free it).  The output may not
 * exceed cap bytes: the decompressor is stopped as soon as it would, so a
 * decompression bomb costs at most cap bytes (plus the codec's own
 * bounded state).  Returns 0, or a Kafka error code: CORRUPT_MESSAGE for a
 * malformed or truncated stream, MESSAGE_TOO_LARGE above cap,
 * UNSUPPORTED_COMPRESSION_TYPE for an unknown codec.
 */
extern int16_t decompress_records(int codec, const uint8_t *src, size_t len, size_t cap,
								  uint8_t **out, size_t *outlen);

#endif							/* PGQK_COMPRESS_H */
