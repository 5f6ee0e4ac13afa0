/*-------------------------------------------------------------------------
 *
 * api_meta.h
 *	  The handlers of api_meta.c: ApiVersions and Metadata.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_API_META_H
#define PGQK_API_META_H

#include "gateway.h"

extern void api_versions(Request *req);
extern void api_metadata(Request *req);

/* Kafka's topic naming rule (pgqueue's too): also for the admin APIs */
extern bool topic_name_legal(const char *s, int32_t len);

#endif							/* PGQK_API_META_H */
