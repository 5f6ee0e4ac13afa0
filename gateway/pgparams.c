/*-------------------------------------------------------------------------
 *
 * pgparams.c
 *	  Statement parameters in binary format, arrays included; see
 *	  pgparams.h.
 *
 * Postgres's binary formats (the *recv functions of src/backend/utils/adt): integers are
 * big-endian, text is its bytes, bool one byte, and an array is
 *	  int32 ndim, int32 has_nulls, Oid element type,
 *	  per dimension int32 size and int32 lower bound,
 *	  per element int32 length (-1: NULL) and its bytes;
 * an empty array has ndim 0 and no dimensions.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "pgparams.h"

void
pgp_init(PgParams *p)
{
	memset(p, 0, sizeof(*p));
}

void
pgp_free(PgParams *p)
{
	int			i;

	for (i = 0; i < p->n; i++)
		kw_free(&p->bufs[i]);
	p->n = 0;
}

/* the next parameter's slot, or NULL (err set) when there are too many */
static KWriter *
pgp_next(PgParams *p, Oid type)
{
	KWriter    *w;

	if (p->n >= PGP_MAX_PARAMS)
	{
		p->err = true;
		return NULL;
	}
	w = &p->bufs[p->n];
	kw_init(w);
	p->types[p->n] = type;
	p->values[p->n] = NULL;
	p->lengths[p->n] = 0;
	p->formats[p->n] = 1;
	p->n++;
	return w;
}

/* the value of the parameter just written is its buffer */
static void
pgp_done(PgParams *p)
{
	KWriter    *w = &p->bufs[p->n - 1];

	if (w->err)
		p->err = true;
	/* a zero-length value must still not be NULL */
	p->values[p->n - 1] = w->data ? (const char *) w->data : "";
	p->lengths[p->n - 1] = (int) w->len;
}

void
pgp_text(PgParams *p, const char *s, int32_t len)
{
	KWriter    *w = pgp_next(p, PGP_TEXTOID);

	if (w == NULL || s == NULL)
		return;
	if (len < 0)
		len = (int32_t) strlen(s);
	kw_raw(w, s, len);
	pgp_done(p);
}

void
pgp_int4(PgParams *p, int32_t v)
{
	KWriter    *w = pgp_next(p, PGP_INT4OID);

	if (w == NULL)
		return;
	kw_i32(w, v);
	pgp_done(p);
}

void
pgp_int8(PgParams *p, int64_t v)
{
	KWriter    *w = pgp_next(p, PGP_INT8OID);

	if (w == NULL)
		return;
	kw_i64(w, v);
	pgp_done(p);
}

void
pgp_bool(PgParams *p, bool v)
{
	KWriter    *w = pgp_next(p, PGP_BOOLOID);

	if (w == NULL)
		return;
	kw_i8(w, v ? 1 : 0);
	pgp_done(p);
}

void
pgp_null(PgParams *p, Oid type)
{
	pgp_next(p, type);
}

void
pga_init(PgArray *a, Oid elem_type)
{
	a->elem_type = elem_type;
	a->count = 0;
	a->has_null = false;
	kw_init(&a->elems);
}

void
pga_text(PgArray *a, const char *s, int32_t len)
{
	a->count++;
	if (s == NULL)
	{
		a->has_null = true;
		kw_i32(&a->elems, -1);
		return;
	}
	if (len < 0)
		len = (int32_t) strlen(s);
	kw_i32(&a->elems, len);
	kw_raw(&a->elems, s, len);
}

void
pga_int4(PgArray *a, int32_t v)
{
	a->count++;
	kw_i32(&a->elems, 4);
	kw_i32(&a->elems, v);
}

void
pga_int8(PgArray *a, int64_t v)
{
	a->count++;
	kw_i32(&a->elems, 8);
	kw_i64(&a->elems, v);
}

static Oid
array_type_of(Oid elem_type)
{
	switch (elem_type)
	{
		case PGP_INT4OID:
			return PGP_INT4ARRAYOID;
		case PGP_INT8OID:
			return PGP_INT8ARRAYOID;
		default:
			return PGP_TEXTARRAYOID;
	}
}

void
pgp_array(PgParams *p, PgArray *a)
{
	KWriter    *w = pgp_next(p, array_type_of(a->elem_type));

	if (w != NULL)
	{
		kw_i32(w, a->count > 0 ? 1 : 0);
		kw_i32(w, a->has_null ? 1 : 0);
		kw_i32(w, (int32_t) a->elem_type);
		if (a->count > 0)
		{
			kw_i32(w, a->count);
			kw_i32(w, 1);
			kw_raw(w, a->elems.data, a->elems.len);
		}
		if (a->elems.err)
			w->err = true;
		pgp_done(p);
	}
	kw_free(&a->elems);
}

void
pg_submit_params(PgPoolKind pool, const char *sql, PgParams *p,
				 bool result_binary, PgCallback cb, void *arg)
{
	if (p->err)
	{
		cb(NULL, NULL, arg);
		return;
	}
	pg_submit(pool, sql, p->n, p->types, p->values, p->lengths, p->formats,
			  result_binary, cb, arg);
}
