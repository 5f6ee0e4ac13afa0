/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Running catalog work as the catalog owner (catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_CATALOG_H
#define PGQ_CATALOG_H

#include "executor/spi.h"

typedef struct PgqCatalogContext
{
	Oid			userid;
	int			sec_context;
	int			guc_nest_level;
} PgqCatalogContext;

extern Oid	catalog_owner(void);
extern void catalog_owner_switch(PgqCatalogContext *save);
extern void catalog_owner_restore(PgqCatalogContext *save);
extern int	catalog_query(const char *sql, int nargs, Oid *argtypes, Datum *args,
						  const char *nulls, bool read_only);
extern int	catalog_query_saved(SPIPlanPtr *plan, const char *sql, int nargs,
								Oid *argtypes, Datum *args);
extern bool catalog_layout_ok(void);
extern void catalog_check_layout(void);

#endif							/* PGQ_CATALOG_H */
