/*-------------------------------------------------------------------------
 *
 * testlib.h
 *	  What the RecordBatch test and fuzzer share (testlib.c): building
 *	  batches compressed with each codec, patching a batch's fields with
 *	  its CRC kept right, and TAP-style checks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_TESTLIB_H
#define PGQK_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbuf.h"
#include "records.h"

/* byte offsets of a batch's fields */
#define B_BATCH_LENGTH		8
#define B_MAGIC				16
#define B_CRC				17
#define B_ATTRIBUTES		21
#define B_LAST_DELTA		23
#define B_BASE_TIMESTAMP	27
#define B_PRODUCER_ID		43
#define B_BASE_SEQUENCE		53
#define B_COUNT				57
#define B_RECORDS			61

/* a codec for the tests: KCODEC_* or this, snappy in xerial framing */
#define TCODEC_XERIAL		5

/*
 * Compresses src with codec (KCODEC_NONE copies) into a new buffer; returns
 * its length.
 */
extern size_t test_compress(int codec, const uint8_t *src, size_t len, uint8_t **out);

/*
 * Appends to w a batch of these records (offsets base_offset, +1, ...)
 * compressed with codec, CRC set.
 */
extern void test_build_batch(KWriter *w, int codec, int64_t base_offset,
							 const KRecordOut *recs, int n);

/* Rebuilds a batch (at b, len bytes) around new records bytes, compressed. */
extern void test_rebuild_batch(KWriter *w, const uint8_t *b, int codec,
							   const uint8_t *records, size_t records_len);

extern void test_put_i16(uint8_t *p, int16_t v);
extern void test_put_i32(uint8_t *p, int32_t v);
extern void test_put_i64(uint8_t *p, int64_t v);
/* recomputes the CRC of the batch at b of len bytes */
extern void test_fix_crc(uint8_t *b, size_t len);

/* TAP-style checks: "ok N - what" or "not ok N - what" */
extern int	test_failures;
extern bool test_check(bool cond, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* prints the plan; the exit status: 1 if a check failed */
extern int	test_done(void);

#endif							/* PGQK_TESTLIB_H */
