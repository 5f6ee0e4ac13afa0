/*-------------------------------------------------------------------------
 *
 * kbuf.c
 *	  Reading and writing Kafka's protocol primitives; see kbuf.h.
 *
 *-------------------------------------------------------------------------
 */
#include "kbuf.h"

#include <stdlib.h>
#include <string.h>

void
kr_init(KReader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->err = false;
}

size_t
kr_remaining(const KReader *r)
{
	return r->err ? 0 : r->len - r->pos;
}

const uint8_t *
kr_take(KReader *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->pos)
	{
		r->err = true;
		return NULL;
	}
	p = r->data + r->pos;
	r->pos += n;
	return p;
}

int8_t
kr_i8(KReader *r)
{
	const uint8_t *p = kr_take(r, 1);

	return p ? (int8_t) p[0] : 0;
}

int16_t
kr_i16(KReader *r)
{
	const uint8_t *p = kr_take(r, 2);

	return p ? (int16_t) ((p[0] << 8) | p[1]) : 0;
}

uint32_t
kr_u32(KReader *r)
{
	const uint8_t *p = kr_take(r, 4);

	return p ? ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3] : 0;
}

int32_t
kr_i32(KReader *r)
{
	return (int32_t) kr_u32(r);
}

int64_t
kr_i64(KReader *r)
{
	uint64_t	hi = kr_u32(r);
	uint64_t	lo = kr_u32(r);

	return (int64_t) ((hi << 32) | lo);
}

/* an unsigned varint of at most max_bytes bytes (5 for 32 bits, 10 for 64) */
static uint64_t
kr_uvarint_n(KReader *r, int max_bytes)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < max_bytes; i++)
	{
		const uint8_t *p = kr_take(r, 1);

		if (p == NULL)
			return 0;
		v |= (uint64_t) (p[0] & 0x7f) << (7 * i);
		if ((p[0] & 0x80) == 0)
		{
			/* the last byte may not carry bits beyond the type */
			if (max_bytes == 5 && i == 4 && p[0] > 0x0f)
				break;
			if (max_bytes == 10 && i == 9 && p[0] > 0x01)
				break;
			return v;
		}
	}
	r->err = true;				/* too long: an overflow */
	return 0;
}

uint32_t
kr_uvarint(KReader *r)
{
	return (uint32_t) kr_uvarint_n(r, 5);
}

int32_t
kr_varint(KReader *r)
{
	uint32_t	v = (uint32_t) kr_uvarint_n(r, 5);

	return (int32_t) ((v >> 1) ^ (~(v & 1) + 1));
}

int64_t
kr_varlong(KReader *r)
{
	uint64_t	v = kr_uvarint_n(r, 10);

	return (int64_t) ((v >> 1) ^ (~(v & 1) + 1));
}

static bool
kr_span(KReader *r, int64_t len, const uint8_t **p, int32_t *lenp)
{
	if (len < -1 || len > INT32_MAX)
		r->err = true;
	if (r->err)
	{
		*p = NULL;
		*lenp = -1;
		return false;
	}
	*lenp = (int32_t) len;
	*p = len < 0 ? NULL : kr_take(r, (size_t) len);
	return !r->err;
}

bool
kr_string(KReader *r, const char **s, int32_t *len)
{
	int16_t		n = kr_i16(r);

	return kr_span(r, n, (const uint8_t **) s, len);
}

bool
kr_compact_string(KReader *r, const char **s, int32_t *len)
{
	uint32_t	n = kr_uvarint(r);

	return kr_span(r, (int64_t) n - 1, (const uint8_t **) s, len);
}

bool
kr_bytes(KReader *r, const uint8_t **b, int32_t *len)
{
	int32_t		n = kr_i32(r);

	return kr_span(r, n, b, len);
}

bool
kr_varbytes(KReader *r, const uint8_t **b, int32_t *len)
{
	int32_t		n = kr_varint(r);

	return kr_span(r, n, b, len);
}

static int32_t
array_len_check(KReader *r, int64_t n, size_t min_elem_size)
{
	if (r->err || n < -1 || n > INT32_MAX ||
		(n > 0 && (uint64_t) n * (min_elem_size ? min_elem_size : 1) > kr_remaining(r)))
	{
		r->err = true;
		return 0;
	}
	return (int32_t) n;
}

int32_t
kr_array_len(KReader *r, size_t min_elem_size)
{
	int32_t		n = kr_i32(r);

	return array_len_check(r, n, min_elem_size);
}

int32_t
kr_compact_array_len(KReader *r, size_t min_elem_size)
{
	uint32_t	n = kr_uvarint(r);

	return array_len_check(r, (int64_t) n - 1, min_elem_size);
}

void
kr_skip_tagged_fields(KReader *r)
{
	uint32_t	n = kr_uvarint(r);
	uint32_t	i;

	for (i = 0; i < n && !r->err; i++)
	{
		(void) kr_uvarint(r);	/* tag */
		(void) kr_take(r, kr_uvarint(r));
	}
}

/* ---------------------------------------------------------------- writer */

void
kw_init(KWriter *w)
{
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
	w->err = false;
}

void
kw_free(KWriter *w)
{
	free(w->data);
	kw_init(w);
}

void
kw_reset(KWriter *w)
{
	w->len = 0;
	w->err = false;
}

void *
kw_extend(KWriter *w, size_t n)
{
	void	   *p;

	if (w->err)
		return NULL;
	if (n > w->cap - w->len)
	{
		size_t		cap = w->cap ? w->cap : 256;
		uint8_t    *data;

		while (cap - w->len < n)
		{
			if (cap > SIZE_MAX / 2)
			{
				w->err = true;
				return NULL;
			}
			cap *= 2;
		}
		data = realloc(w->data, cap);
		if (data == NULL)
		{
			w->err = true;
			return NULL;
		}
		w->data = data;
		w->cap = cap;
	}
	p = w->data + w->len;
	w->len += n;
	return p;
}

void
kw_raw(KWriter *w, const void *data, size_t n)
{
	uint8_t    *p = kw_extend(w, n);

	if (p != NULL && n > 0)
		memcpy(p, data, n);
}

void
kw_i8(KWriter *w, int8_t v)
{
	uint8_t    *p = kw_extend(w, 1);

	if (p)
		p[0] = (uint8_t) v;
}

void
kw_i16(KWriter *w, int16_t v)
{
	uint8_t    *p = kw_extend(w, 2);

	if (p)
	{
		p[0] = (uint8_t) ((uint16_t) v >> 8);
		p[1] = (uint8_t) v;
	}
}

void
kw_u32(KWriter *w, uint32_t v)
{
	uint8_t    *p = kw_extend(w, 4);

	if (p)
	{
		p[0] = (uint8_t) (v >> 24);
		p[1] = (uint8_t) (v >> 16);
		p[2] = (uint8_t) (v >> 8);
		p[3] = (uint8_t) v;
	}
}

void
kw_i32(KWriter *w, int32_t v)
{
	kw_u32(w, (uint32_t) v);
}

void
kw_i64(KWriter *w, int64_t v)
{
	kw_u32(w, (uint32_t) ((uint64_t) v >> 32));
	kw_u32(w, (uint32_t) v);
}

static void
kw_uvarint64(KWriter *w, uint64_t v)
{
	uint8_t		tmp[10];
	int			n = 0;

	do
	{
		tmp[n] = (uint8_t) (v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	kw_raw(w, tmp, n);
}

void
kw_uvarint(KWriter *w, uint32_t v)
{
	kw_uvarint64(w, v);
}

void
kw_varint(KWriter *w, int32_t v)
{
	kw_uvarint64(w, (uint32_t) (((uint32_t) v << 1) ^ (uint32_t) (v >> 31)));
}

void
kw_varlong(KWriter *w, int64_t v)
{
	kw_uvarint64(w, ((uint64_t) v << 1) ^ (uint64_t) (v >> 63));
}

int
k_varint_size(int64_t v)
{
	uint64_t	u = ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
	int			n = 1;

	while (u >= 0x80)
	{
		u >>= 7;
		n++;
	}
	return n;
}

void
kw_string(KWriter *w, const char *s, int32_t len)
{
	if (s == NULL)
	{
		kw_i16(w, -1);
		return;
	}
	if (len < 0)
		len = (int32_t) strlen(s);
	if (len > INT16_MAX)
	{
		/* an int16 length cannot say it: a short one would corrupt the rest */
		w->err = true;
		return;
	}
	kw_i16(w, (int16_t) len);
	kw_raw(w, s, len);
}

void
kw_compact_string(KWriter *w, const char *s, int32_t len)
{
	if (s == NULL)
	{
		kw_uvarint(w, 0);
		return;
	}
	if (len < 0)
		len = (int32_t) strlen(s);
	kw_uvarint(w, (uint32_t) len + 1);
	kw_raw(w, s, len);
}

void
kw_bytes(KWriter *w, const void *b, int32_t len)
{
	if (b == NULL || len < 0)
	{
		kw_i32(w, -1);
		return;
	}
	kw_i32(w, len);
	kw_raw(w, b, len);
}

void
kw_varbytes(KWriter *w, const void *b, int32_t len)
{
	if (b == NULL || len < 0)
	{
		kw_varint(w, -1);
		return;
	}
	kw_varint(w, len);
	kw_raw(w, b, len);
}

size_t
kw_reserve_i32(KWriter *w)
{
	size_t		at = w->len;

	kw_i32(w, 0);
	return at;
}

void
kw_patch_i32(KWriter *w, size_t at, int32_t v)
{
	if (w->err || at + 4 > w->len)
		return;
	w->data[at] = (uint8_t) ((uint32_t) v >> 24);
	w->data[at + 1] = (uint8_t) ((uint32_t) v >> 16);
	w->data[at + 2] = (uint8_t) ((uint32_t) v >> 8);
	w->data[at + 3] = (uint8_t) v;
}

void
kw_empty_tagged_fields(KWriter *w)
{
	kw_uvarint(w, 0);
}
