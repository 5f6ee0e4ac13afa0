/*-------------------------------------------------------------------------
 *
 * payload.h
 *	  The types pgq_send and pgq_send_batch take keys and values in (see
 *	  payload.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_PAYLOAD_H
#define PGQ_PAYLOAD_H

#include "postgres.h"

/* text in the database encoding -> its UTF-8 bytes, as a bytea */
extern bytea *payload_from_text(const char *data, int len);
/* whether bytes read as the same text in the database encoding */
extern bool payload_is_text(const char *data, int len);

#endif							/* PGQ_PAYLOAD_H */
