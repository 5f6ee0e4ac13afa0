/*-------------------------------------------------------------------------
 *
 * api_data.h
 *	  The handlers of the APIs that move records: Produce and InitProducerId
 *	  (api_produce.c), Fetch and ListOffsets (api_fetch.c), for api.c's
 *	  table.  Each serves the versions below; older advertised ones answer
 *	  UNSUPPORTED_VERSION (see the research notes: librdkafka needs them
 *	  advertised).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_API_DATA_H
#define PGQK_API_DATA_H

#include "gateway.h"

#define API_PRODUCE				0
#define API_FETCH				1
#define API_LIST_OFFSETS		2
#define API_INIT_PRODUCER_ID	22

/* the served ranges: api.c advertises from 0 */
#define PRODUCE_MIN_SERVED			3
#define PRODUCE_MAX_VERSION			7
#define FETCH_MIN_SERVED			4
#define FETCH_MAX_VERSION			11
#define LIST_OFFSETS_MIN_SERVED		1
#define LIST_OFFSETS_MAX_VERSION	3
#define INIT_PRODUCER_ID_MAX_VERSION 1

extern void api_produce(Request *req);
extern void api_init_producer_id(Request *req);
extern void api_fetch(Request *req);
extern void api_list_offsets(Request *req);

#endif							/* PGQK_API_DATA_H */
