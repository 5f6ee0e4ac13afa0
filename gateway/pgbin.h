/*-------------------------------------------------------------------------
 *
 * pgbin.h
 *	  Statement parameters and results in Postgres's binary format
 *	  (pgbin.c), for the handlers that pass bytes to pgqueue and read
 *	  bytes back: a bytea travels as it is (text format would double it
 *	  as hex), and arrays of many elements are built without quoting.
 *
 * A PgParams collects a statement's parameters, each its own buffer; a
 * one-dimensional array parameter is begun with its element count and
 * filled element by element.  pgp_submit hands them to pg_submit (which
 * copies them) and frees them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_PGBIN_H
#define PGQK_PGBIN_H

#include "gateway.h"

/* the OIDs of the types the gateway's statements pass (pg_type.dat) */
#define PGB_BYTEA_OID			17
#define PGB_INT8_OID			20
#define PGB_INT2_OID			21
#define PGB_INT4_OID			23
#define PGB_TEXT_OID			25
#define PGB_BYTEA_ARRAY_OID		1001
#define PGB_INT4_ARRAY_OID		1007
#define PGB_TEXT_ARRAY_OID		1009
#define PGB_INT8_ARRAY_OID		1016
#define PGB_TIMESTAMPTZ_OID		1184
#define PGB_TIMESTAMPTZ_ARRAY_OID 1185

#define PGP_MAX_PARAMS	16

typedef struct PgParams
{
	int			n;
	Oid			types[PGP_MAX_PARAMS];
	bool		isnull[PGP_MAX_PARAMS];
	KWriter		data[PGP_MAX_PARAMS];
	bool		err;			/* too many parameters, or out of memory */
} PgParams;

extern void pgp_init(PgParams *p);
extern void pgp_free(PgParams *p);
extern void pgp_null(PgParams *p, Oid type);
extern void pgp_int4(PgParams *p, int32_t v);
extern void pgp_int8(PgParams *p, int64_t v);
extern void pgp_text(PgParams *p, const char *s, int32_t len);
extern void pgp_bytea(PgParams *p, const void *b, int32_t len);

/*
 * Begins an array parameter of n elements of elemtype (an array's type is
 * array_type); returns its buffer, to which the n elements are then added
 * with pga_* in order.
 */
extern KWriter *pgp_array(PgParams *p, Oid array_type, Oid elemtype, int n);
extern void pga_null(KWriter *w);
extern void pga_int4(KWriter *w, int32_t v);
extern void pga_int8(KWriter *w, int64_t v);
extern void pga_bytes(KWriter *w, const void *b, int32_t len);	/* text or bytea */
extern void pga_timestamptz_ms(KWriter *w, int64_t ms);

/* pg_submit with these parameters (all binary), then pgp_free; false on err */
extern bool pgp_submit(PgParams *p, PgPoolKind pool, const char *sql, bool result_binary,
					   PgCallback cb, void *arg);

/*
 * Reading a binary result's fields.  A field of another size than its type
 * reads as null: the gateway never trusts a length it did not check.
 */
extern bool pgr_isnull(const PGresult *res, int row, int col);
extern int32_t pgr_int4(const PGresult *res, int row, int col, int32_t ifnull);
extern int64_t pgr_int8(const PGresult *res, int row, int col, int64_t ifnull);
/* a timestamptz as milliseconds since the Unix epoch */
extern int64_t pgr_timestamptz_ms(const PGresult *res, int row, int col, int64_t ifnull);

/* Kafka's milliseconds since 1970 and Postgres's microseconds since 2000 */
#define PGB_EPOCH_DIFF_MS	INT64_C(946684800000)

/* the timestamps that Postgres can hold and the conversion cannot overflow */
#define PGB_MIN_TIMESTAMP_MS	INT64_C(-62135596800000)	/* 0001-01-01 */
#define PGB_MAX_TIMESTAMP_MS	INT64_C(253402300799999)	/* 9999-12-31 */

#endif							/* PGQK_PGBIN_H */
