/*-------------------------------------------------------------------------
 *
 * murmur2.h
 *	  Kafka's default partitioner (murmur2.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQ_MURMUR2_H
#define PGQ_MURMUR2_H

extern int32 pgq_murmur2_hash(const unsigned char *data, int len);
extern int32 pgq_key_partition(const unsigned char *key, int len, int32 partitions);

#endif							/* PGQ_MURMUR2_H */
