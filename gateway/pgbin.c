/*-------------------------------------------------------------------------
 *
 * pgbin.c
 *	  Statement parameters and results in Postgres's binary format; see
 *	  pgbin.h.
 *
 * The formats are those of the types' send and receive functions: integers
 * big-endian, a timestamptz as int64 microseconds since 2000-01-01 UTC, a
 * one-dimensional array as (ndim 1, has-nulls flag, element type, length,
 * lower bound 1) followed by each element as an int32 length (-1: null)
 * and its bytes.  An empty array is written with ndim 0.
 *
 *-------------------------------------------------------------------------
 */
#include "pgbin.h"

#include <stdlib.h>
#include <string.h>

void
pgp_init(PgParams *p)
{
	p->n = 0;
	p->err = false;
}

void
pgp_free(PgParams *p)
{
	int			i;

	for (i = 0; i < p->n; i++)
		kw_free(&p->data[i]);
	p->n = 0;
}

/* the next parameter's buffer, or NULL (err) if there are too many */
static KWriter *
pgp_next(PgParams *p, Oid type, bool isnull)
{
	KWriter    *w;

	if (p->n >= PGP_MAX_PARAMS)
	{
		p->err = true;
		return NULL;
	}
	w = &p->data[p->n];
	kw_init(w);
	p->types[p->n] = type;
	p->isnull[p->n] = isnull;
	p->n++;
	return w;
}

void
pgp_null(PgParams *p, Oid type)
{
	(void) pgp_next(p, type, true);
}

void
pgp_int4(PgParams *p, int32_t v)
{
	KWriter    *w = pgp_next(p, PGB_INT4_OID, false);

	if (w)
		kw_i32(w, v);
}

void
pgp_int8(PgParams *p, int64_t v)
{
	KWriter    *w = pgp_next(p, PGB_INT8_OID, false);

	if (w)
		kw_i64(w, v);
}

void
pgp_text(PgParams *p, const char *s, int32_t len)
{
	KWriter    *w = pgp_next(p, PGB_TEXT_OID, s == NULL);

	if (w && s)
		kw_raw(w, s, len < 0 ? strlen(s) : (size_t) len);
}

void
pgp_bytea(PgParams *p, const void *b, int32_t len)
{
	KWriter    *w = pgp_next(p, PGB_BYTEA_OID, b == NULL);

	if (w && b)
		kw_raw(w, b, (size_t) len);
}

KWriter *
pgp_array(PgParams *p, Oid array_type, Oid elemtype, int n)
{
	KWriter    *w = pgp_next(p, array_type, false);

	if (w == NULL)
		return NULL;
	if (n == 0)
	{
		kw_i32(w, 0);			/* ndim */
		kw_i32(w, 0);			/* flags */
		kw_u32(w, elemtype);
		return w;
	}
	kw_i32(w, 1);
	/* array_recv ignores the has-nulls flag: it finds the nulls itself */
	kw_i32(w, 0);
	kw_u32(w, elemtype);
	kw_i32(w, n);
	kw_i32(w, 1);				/* lower bound */
	return w;
}

void
pga_null(KWriter *w)
{
	kw_i32(w, -1);
}

void
pga_int4(KWriter *w, int32_t v)
{
	kw_i32(w, 4);
	kw_i32(w, v);
}

void
pga_int8(KWriter *w, int64_t v)
{
	kw_i32(w, 8);
	kw_i64(w, v);
}

void
pga_bytes(KWriter *w, const void *b, int32_t len)
{
	if (b == NULL || len < 0)
	{
		kw_i32(w, -1);
		return;
	}
	kw_i32(w, len);
	kw_raw(w, b, (size_t) len);
}

/* ms must be within PGB_MIN_TIMESTAMP_MS .. PGB_MAX_TIMESTAMP_MS */
void
pga_timestamptz_ms(KWriter *w, int64_t ms)
{
	kw_i32(w, 8);
	kw_i64(w, (ms - PGB_EPOCH_DIFF_MS) * 1000);
}

bool
pgp_submit(PgParams *p, PgPoolKind pool, const char *sql, bool result_binary,
		   PgCallback cb, void *arg)
{
	const char *values[PGP_MAX_PARAMS];
	int			lengths[PGP_MAX_PARAMS];
	int			formats[PGP_MAX_PARAMS];
	int			i;

	for (i = 0; i < p->n; i++)
	{
		if (p->data[i].err)
			p->err = true;
		/* a non-null parameter of no bytes still needs a non-NULL pointer */
		values[i] = p->isnull[i] ? NULL : (p->data[i].data ? (const char *) p->data[i].data : "");
		lengths[i] = (int) p->data[i].len;
		formats[i] = 1;
	}
	if (p->err)
	{
		pgp_free(p);
		return false;
	}
	pg_submit(pool, sql, p->n, p->types, values, lengths, formats, result_binary, cb, arg);
	pgp_free(p);
	return true;
}

/* ------------------------------------------------------------- results */

bool
pgr_isnull(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col);
}

/* the field's bytes if it is not null and has exactly size bytes */
static const uint8_t *
pgr_field(const PGresult *res, int row, int col, int size)
{
	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != size)
		return NULL;
	return (const uint8_t *) PQgetvalue(res, row, col);
}

int32_t
pgr_int4(const PGresult *res, int row, int col, int32_t ifnull)
{
	const uint8_t *p = pgr_field(res, row, col, 4);
	KReader		r;

	if (p == NULL)
		return ifnull;
	kr_init(&r, p, 4);
	return kr_i32(&r);
}

int64_t
pgr_int8(const PGresult *res, int row, int col, int64_t ifnull)
{
	const uint8_t *p = pgr_field(res, row, col, 8);
	KReader		r;

	if (p == NULL)
		return ifnull;
	kr_init(&r, p, 8);
	return kr_i64(&r);
}

int64_t
pgr_timestamptz_ms(const PGresult *res, int row, int col, int64_t ifnull)
{
	int64_t		us = pgr_int8(res, row, col, INT64_MIN);
	int64_t		ms;

	if (us == INT64_MIN)
		return ifnull;
	/* -infinity and infinity are INT64_MIN and INT64_MAX: no Kafka time */
	if (us == INT64_MAX)
		return ifnull;
	/* floor division, so that times before 2000 round down too */
	ms = us / 1000 - (us % 1000 < 0 ? 1 : 0);
	return ms + PGB_EPOCH_DIFF_MS;
}
