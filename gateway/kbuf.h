/*-------------------------------------------------------------------------
 *
 * kbuf.h
 *	  Reading and writing Kafka's protocol primitives (kbuf.c).
 *
 * A KReader reads a received request: every read is bounds-checked, and a
 * read past the end (or a malformed value) sets err and returns zero, so a
 * handler reads its whole request and checks err once.  Nothing read is
 * copied: strings and bytes point into the request.  A KWriter builds a
 * response in a growing buffer; a failed allocation sets err and the writes
 * after it do nothing.
 *
 * The encodings are Kafka's (https://kafka.apache.org/protocol): big-endian
 * integers, zigzag varints for records, unsigned varints for the compact
 * (flexible-version) types.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_KBUF_H
#define PGQK_KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct KReader
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	bool		err;
} KReader;

extern void kr_init(KReader *r, const void *data, size_t len);
extern size_t kr_remaining(const KReader *r);
extern const uint8_t *kr_take(KReader *r, size_t n);
extern int8_t kr_i8(KReader *r);
extern int16_t kr_i16(KReader *r);
extern int32_t kr_i32(KReader *r);
extern int64_t kr_i64(KReader *r);
extern uint32_t kr_u32(KReader *r);
extern uint32_t kr_uvarint(KReader *r);
extern int32_t kr_varint(KReader *r);
extern int64_t kr_varlong(KReader *r);
/* int16 length, -1 null (*s NULL); false on error */
extern bool kr_string(KReader *r, const char **s, int32_t *len);
/* uvarint length + 1, 0 null */
extern bool kr_compact_string(KReader *r, const char **s, int32_t *len);
/* int32 length, -1 null */
extern bool kr_bytes(KReader *r, const uint8_t **b, int32_t *len);
/* zigzag varint length, -1 null (records and their headers) */
extern bool kr_varbytes(KReader *r, const uint8_t **b, int32_t *len);
/*
 * An array's element count (int32, -1 null; compact: uvarint count + 1),
 * refused (err) if the rest of the request could not hold that many
 * elements of at least min_elem_size bytes: a length never makes a
 * handler allocate more than the request's size.
 */
extern int32_t kr_array_len(KReader *r, size_t min_elem_size);
extern int32_t kr_compact_array_len(KReader *r, size_t min_elem_size);
extern void kr_skip_tagged_fields(KReader *r);

typedef struct KWriter
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	bool		err;
} KWriter;

extern void kw_init(KWriter *w);
extern void kw_free(KWriter *w);
extern void kw_reset(KWriter *w);
extern void *kw_extend(KWriter *w, size_t n);
extern void kw_raw(KWriter *w, const void *data, size_t n);
extern void kw_i8(KWriter *w, int8_t v);
extern void kw_i16(KWriter *w, int16_t v);
extern void kw_i32(KWriter *w, int32_t v);
extern void kw_i64(KWriter *w, int64_t v);
extern void kw_u32(KWriter *w, uint32_t v);
extern void kw_uvarint(KWriter *w, uint32_t v);
extern void kw_varint(KWriter *w, int32_t v);
extern void kw_varlong(KWriter *w, int64_t v);
/* NULL s: null; len < 0: strlen(s) */
extern void kw_string(KWriter *w, const char *s, int32_t len);
extern void kw_compact_string(KWriter *w, const char *s, int32_t len);
extern void kw_bytes(KWriter *w, const void *b, int32_t len);
extern void kw_varbytes(KWriter *w, const void *b, int32_t len);
/* reserves an int32 to fill in later (a length, a count) */
extern size_t kw_reserve_i32(KWriter *w);
extern void kw_patch_i32(KWriter *w, size_t at, int32_t v);
extern void kw_empty_tagged_fields(KWriter *w);

/* sizes of varints, for computing a record's length before writing it */
extern int	k_varint_size(int64_t v);

#endif							/* PGQK_KBUF_H */
