/*-------------------------------------------------------------------------
 *
 * headers.h
 *	  A record's headers: the object and list forms of the headers jsonb
 *	  and their mapping to Kafka's headers (headers.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_HEADERS_H
#define PGQ_HEADERS_H

#include "postgres.h"

#include "utils/jsonb.h"

/* the headers jsonb as a send stores it: validated, the list form canonical */
extern Jsonb *headers_prepare(Jsonb *headers);

#endif							/* PGQ_HEADERS_H */
