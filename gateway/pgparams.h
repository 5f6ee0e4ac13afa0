/*-------------------------------------------------------------------------
 *
 * pgparams.h
 *	  Building the parameters of a statement for pg_submit (pgparams.c).
 *
 * Every parameter is sent in binary format with its type's OID: a Kafka
 * string is not NUL-terminated, and a text parameter in binary format is
 * taken with its length (the server still checks its encoding).  Arrays
 * are built element by element (PgArray) in Postgres's binary array
 * format, so that a NULL element or a quote in a string needs no escaping.
 *
 * A failed allocation sets err; pg_submit_params then runs nothing and
 * calls the callback with a NULL result, as for a lost connection.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_PGPARAMS_H
#define PGQK_PGPARAMS_H

#include "gateway.h"

#define PGP_MAX_PARAMS	12

/* the OIDs of the types the gateway sends (pg_type.dat) */
#define PGP_BOOLOID			16
#define PGP_INT8OID			20
#define PGP_INT4OID			23
#define PGP_TEXTOID			25
#define PGP_INT4ARRAYOID	1007
#define PGP_TEXTARRAYOID	1009
#define PGP_INT8ARRAYOID	1016

typedef struct PgParams
{
	int			n;
	Oid			types[PGP_MAX_PARAMS];
	const char *values[PGP_MAX_PARAMS];
	int			lengths[PGP_MAX_PARAMS];
	int			formats[PGP_MAX_PARAMS];
	KWriter		bufs[PGP_MAX_PARAMS];	/* the values' storage */
	bool		err;
} PgParams;

/* a one-dimensional array under construction */
typedef struct PgArray
{
	Oid			elem_type;
	int32_t		count;
	bool		has_null;
	KWriter		elems;			/* each element: int32 length (-1: NULL), bytes */
} PgArray;

extern void pgp_init(PgParams *p);
extern void pgp_free(PgParams *p);
/* s NULL: an SQL NULL; len < 0: strlen(s) */
extern void pgp_text(PgParams *p, const char *s, int32_t len);
extern void pgp_int4(PgParams *p, int32_t v);
extern void pgp_int8(PgParams *p, int64_t v);
extern void pgp_bool(PgParams *p, bool v);
extern void pgp_null(PgParams *p, Oid type);
/* adds the array as the next parameter and frees the PgArray's buffer */
extern void pgp_array(PgParams *p, PgArray *a);

extern void pga_init(PgArray *a, Oid elem_type);
extern void pga_text(PgArray *a, const char *s, int32_t len);
extern void pga_int4(PgArray *a, int32_t v);
extern void pga_int8(PgArray *a, int64_t v);

/*
 * pg_submit with these parameters (copied: p may be freed or reused once
 * this returns).
 */
extern void pg_submit_params(PgPoolKind pool, const char *sql, PgParams *p,
							 bool result_binary, PgCallback cb, void *arg);

#endif							/* PGQK_PGPARAMS_H */
