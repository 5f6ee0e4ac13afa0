/*-------------------------------------------------------------------------
 *
 * murmur2.c
 *	  Kafka's default partitioner for keyed records.
 *
 * Kafka's Java client places a record with a non-null key on partition
 * (murmur2(key) & 0x7fffffff) % partitions, where murmur2 is the 32-bit
 * MurmurHash2 with seed 0x9747b28c reading the key in little-endian 4-byte
 * words.  We compute exactly the same function so that a key lands on the
 * same partition in pgqueue as in Kafka (test/sql/murmur2.sql checks
 * Kafka's published test vectors).
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "utils/builtins.h"

#include "murmur2.h"

PG_FUNCTION_INFO_V1(pgq_murmur2);
PG_FUNCTION_INFO_V1(pgq_partition_for_key);

int32
pgq_murmur2_hash(const unsigned char *data, int len)
{
	const uint32 m = 0x5bd1e995;
	const int	r = 24;
	uint32		h = 0x9747b28c ^ (uint32) len;
	int			nwords = len / 4;
	int			i;
	int			tail = nwords * 4;

	for (i = 0; i < nwords; i++)
	{
		const unsigned char *p = data + i * 4;
		uint32		k = (uint32) p[0] | ((uint32) p[1] << 8) |
			((uint32) p[2] << 16) | ((uint32) p[3] << 24);

		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}

	switch (len % 4)
	{
		case 3:
			h ^= (uint32) data[tail + 2] << 16;
			/* FALLTHROUGH */
		case 2:
			h ^= (uint32) data[tail + 1] << 8;
			/* FALLTHROUGH */
		case 1:
			h ^= (uint32) data[tail];
			h *= m;
	}

	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;

	return (int32) h;
}

/* The partition Kafka's default partitioner picks for a non-null key. */
int32
pgq_key_partition(const unsigned char *key, int len, int32 partitions)
{
	uint32		positive = (uint32) pgq_murmur2_hash(key, len) & 0x7fffffff;

	return (int32) (positive % (uint32) partitions);
}

Datum
pgq_murmur2(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_INT32(pgq_murmur2_hash((unsigned char *) VARDATA_ANY(data),
									 VARSIZE_ANY_EXHDR(data)));
}

Datum
pgq_partition_for_key(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	int32		partitions = PG_GETARG_INT32(1);

	if (partitions <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partitions must be greater than zero")));

	PG_RETURN_INT32(pgq_key_partition((unsigned char *) VARDATA_ANY(key),
									  VARSIZE_ANY_EXHDR(key), partitions));
}
