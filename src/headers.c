/*-------------------------------------------------------------------------
 *
 * headers.c
 *	  A record's headers: the two jsonb forms a send takes them in, the
 *	  canonical form stored, and the mapping to and from Kafka's headers
 *	  (pgq_headers_to_kafka, pgq_headers_from_kafka, pgq_headers_list).
 *
 * Kafka's headers are an ordered list of (key, value): the key a string,
 * the value bytes or null; keys may repeat.  pgqueue keeps a record's
 * headers in one jsonb column, in one of two forms:
 *
 *	object form	{"key": "value", ...}: string values only.  The common
 *				case, and pgqueue's only form before 0.4.0.  It denotes the
 *				list of its members in jsonb's key order (shorter keys first,
 *				then bytewise), since jsonb does not keep the order written;
 *				a value is the UTF-8 bytes of the string.
 *	list form	[["key", value], ...]: a value is a string (its UTF-8
 *				bytes), null (Kafka's null value) or {"base64": "..."} (any
 *				bytes).  It denotes the list as written.
 *
 * A send accepts either form.  An object is stored as it is; a list is
 * stored canonically: a value is written as a string when its bytes are
 * text (valid UTF-8 without NUL in a UTF-8 database, ASCII without NUL in
 * another), else as {"base64": ...}; and the whole list is written in the
 * object form when that denotes the same list (every value a string, the
 * keys unique and already in jsonb's key order, which includes lists of one
 * header and the empty list), else in the list form.  So each list of
 * headers has exactly one stored form, the object form whenever it is
 * lossless, and readers (pgq_fetch, pgq_poll) get back what they would have
 * got for the object; nothing is lost either way.  docs/headers.md has the
 * mapping table.
 *
 * The conversions to Kafka's encoding of a record's headers (a varint count,
 * then per header a varint key length, the key, a varint value length, -1
 * for null, and the value; varints zigzag-encoded) serve the Kafka gateway,
 * which then copies bytes rather than parsing JSON.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "common/base64.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "headers.h"
#include "payload.h"

PG_FUNCTION_INFO_V1(pgq_headers_to_kafka);
PG_FUNCTION_INFO_V1(pgq_headers_from_kafka);
PG_FUNCTION_INFO_V1(pgq_headers_list);

/* One header of a list. */
typedef struct PgqHeader
{
	const char *key;			/* in the database encoding, as in jsonb */
	int			keylen;
	const char *value;			/* the bytes; NULL for Kafka's null value */
	int			vallen;
} PgqHeader;

#define HEADERS_FORMS_HINT \
	"Headers are a JSON object of string values, or a list [[\"key\", value], ...] whose values are strings, null or {\"base64\": \"...\"}."

/* the bytes a JSON string denotes: its UTF-8 form */
static void
string_bytes(const JsonbValue *v, const char **data, int *len)
{
	bytea	   *utf8;

	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
	{
		*data = v->val.string.val;
		*len = v->val.string.len;
		return;
	}
	utf8 = payload_from_text(v->val.string.val, v->val.string.len);
	*data = VARDATA(utf8);
	*len = VARSIZE(utf8) - VARHDRSZ;
}

/* The object form: a JSON object whose values are all strings. */
static void
headers_validate_object(Jsonb *headers)
{
	JsonbIterator *it = JsonbIteratorInit(&headers->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_VALUE && v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header values must be strings"),
					 errhint("Send null or binary values in the list form: [[\"key\", null], [\"key\", {\"base64\": \"...\"}]].")));
}

static void
headers_not_a_pair(int i)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("header %d of the list is not a [key, value] pair", i + 1),
			 errhint("%s", HEADERS_FORMS_HINT)));
}

/* A value of the list form: a string, null or {"base64": "..."}. */
static void
list_value(JsonbValue *v, PgqHeader *h, int i)
{
	JsonbValue *b64;
	char	   *bytes;
	int			len;

	if (v->type == jbvNull)
	{
		h->value = NULL;
		h->vallen = 0;
		return;
	}
	if (v->type == jbvString)
	{
		string_bytes(v, &h->value, &h->vallen);
		return;
	}
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) != 1 ||
		(b64 = getKeyJsonValueFromContainer(v->val.binary.data, "base64", 6, NULL)) == NULL ||
		b64->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the value of header %d must be a string, null or {\"base64\": \"...\"}", i + 1),
				 errhint("%s", HEADERS_FORMS_HINT)));
	bytes = palloc(pg_b64_dec_len(b64->val.string.len) + 1);
	len = pg_b64_decode(b64->val.string.val, b64->val.string.len, bytes,
						pg_b64_dec_len(b64->val.string.len));
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("the value of header %d is not valid base64", i + 1)));
	h->value = bytes;
	h->vallen = len;
}

/*
 * The list of headers either form denotes (see the file header); an error
 * for anything else.  Sets *n to their number.
 */
static PgqHeader *
headers_parse(Jsonb *headers, int *n)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	PgqHeader  *list;
	int			size;
	int			i = 0;

	if (JB_ROOT_IS_SCALAR(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object or array"),
				 errhint("%s", HEADERS_FORMS_HINT)));
	if (JB_ROOT_IS_OBJECT(headers))
		headers_validate_object(headers);
	size = JB_ROOT_COUNT(headers);
	list = palloc(sizeof(PgqHeader) * Max(size, 1));

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		PgqHeader  *h = &list[i];

		if (tok == WJB_KEY)
		{
			/* the object form: a key, then its (string) value */
			h->key = v.val.string.val;
			h->keylen = v.val.string.len;
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE && v.type == jbvString);
			string_bytes(&v, &h->value, &h->vallen);
			i++;
		}
		else if (tok == WJB_ELEM)
		{
			JsonbValue *key;
			JsonbValue *value;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data) ||
				JsonContainerSize(v.val.binary.data) != 2)
				headers_not_a_pair(i);
			key = getIthJsonbValueFromContainer(v.val.binary.data, 0);
			value = getIthJsonbValueFromContainer(v.val.binary.data, 1);
			if (key->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the key of header %d must be a string", i + 1),
						 errhint("%s", HEADERS_FORMS_HINT)));
			h->key = key->val.string.val;
			h->keylen = key->val.string.len;
			list_value(value, h, i);
			i++;
		}
	}
	*n = i;
	return list;
}

/* jsonb's order of object keys: shorter first, then bytewise */
static int
header_key_cmp(const PgqHeader *a, const PgqHeader *b)
{
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return memcmp(a->key, b->key, a->keylen);
}

static JsonbValue *
jsonb_string(JsonbValue *v, const char *data, int len)
{
	v->type = jbvString;
	v->val.string.val = (char *) data;
	v->val.string.len = len;
	return v;
}

/* Pushes a header's value as stored: a string, null or {"base64": ...}. */
static void
push_value(JsonbParseState **state, const PgqHeader *h, JsonbIteratorToken tok)
{
	JsonbValue	v;
	char	   *b64;
	int			len;

	if (h->value == NULL)
	{
		v.type = jbvNull;
		pushJsonbValue(state, tok, &v);
	}
	else if (payload_is_text(h->value, h->vallen))
		pushJsonbValue(state, tok, jsonb_string(&v, h->value, h->vallen));
	else
	{
		b64 = palloc(pg_b64_enc_len(h->vallen) + 1);
		len = pg_b64_encode(h->value, h->vallen, b64, pg_b64_enc_len(h->vallen));
		if (len < 0)
			elog(ERROR, "could not encode a header value in base64");
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		pushJsonbValue(state, WJB_KEY, jsonb_string(&v, "base64", 6));
		pushJsonbValue(state, WJB_VALUE, jsonb_string(&v, b64, len));
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
	}
}

/* The stored (canonical) form of a list of headers; see the file header. */
static Jsonb *
headers_canonical(const PgqHeader *list, int n)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *result;
	bool		object = true;
	int			i;

	for (i = 0; i < n && object; i++)
		object = list[i].value != NULL && payload_is_text(list[i].value, list[i].vallen) &&
			(i == 0 || header_key_cmp(&list[i - 1], &list[i]) < 0);

	if (object)
	{
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		for (i = 0; i < n; i++)
		{
			pushJsonbValue(&state, WJB_KEY, jsonb_string(&v, list[i].key, list[i].keylen));
			push_value(&state, &list[i], WJB_VALUE);
		}
		result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	else
	{
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
		{
			pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
			pushJsonbValue(&state, WJB_ELEM, jsonb_string(&v, list[i].key, list[i].keylen));
			push_value(&state, &list[i], WJB_ELEM);
			pushJsonbValue(&state, WJB_END_ARRAY, NULL);
		}
		result = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	return JsonbValueToJsonb(result);
}

/*
 * The headers argument of a send, as it is stored: an object as it is (the
 * common case costs a check of its values only), a list in its canonical
 * form.  An error for anything else.
 */
Jsonb *
headers_prepare(Jsonb *headers)
{
	PgqHeader  *list;
	int			n;

	if (JB_ROOT_IS_OBJECT(headers))
	{
		headers_validate_object(headers);
		return headers;
	}
	list = headers_parse(headers, &n);
	return headers_canonical(list, n);
}

/* ----------------------------------------------------------------
 * Kafka's encoding
 * ----------------------------------------------------------------
 */

/* a zigzag varint, as Kafka's records encode lengths and counts */
static void
append_varint(StringInfo buf, int32 value)
{
	uint32		z = ((uint32) value << 1) ^ (uint32) (value >> 31);

	while (z >= 0x80)
	{
		appendStringInfoChar(buf, (char) ((z & 0x7f) | 0x80));
		z >>= 7;
	}
	appendStringInfoChar(buf, (char) z);
}

static void
kafka_malformed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("malformed Kafka headers"),
			 errdetail("%s", detail)));
}

/* reads a zigzag varint of at most 5 bytes (a 32-bit value) */
static int32
read_varint(const unsigned char **p, const unsigned char *end)
{
	uint32		z = 0;
	int			shift;

	for (shift = 0; shift < 35; shift += 7)
	{
		unsigned char b;

		if (*p >= end)
			kafka_malformed("The data ends inside a varint.");
		b = *(*p)++;
		if (shift == 28 && (b & 0xf0) != 0)
			kafka_malformed("A varint is longer than 32 bits.");
		z |= (uint32) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return (int32) ((z >> 1) ^ (~(z & 1) + 1));
	}
	kafka_malformed("A varint is longer than 32 bits.");
	return 0;					/* keep the compiler quiet */
}

/*
 * pgq_headers_to_kafka(headers jsonb) returns bytea: the headers (either
 * form) in Kafka's encoding of a record's headers, count first.
 */
Datum
pgq_headers_to_kafka(PG_FUNCTION_ARGS)
{
	Jsonb	   *headers = PG_GETARG_JSONB_P(0);
	PgqHeader  *list;
	int			n;
	int			i;
	StringInfoData buf;

	list = headers_parse(headers, &n);
	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	append_varint(&buf, n);
	for (i = 0; i < n; i++)
	{
		const char *key = list[i].key;
		int			keylen = list[i].keylen;

		/* keys are strings in the database encoding; Kafka's are UTF-8 */
		if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII)
		{
			bytea	   *utf8 = payload_from_text(key, keylen);

			key = VARDATA(utf8);
			keylen = VARSIZE(utf8) - VARHDRSZ;
		}
		append_varint(&buf, keylen);
		appendBinaryStringInfo(&buf, key, keylen);
		append_varint(&buf, list[i].value == NULL ? -1 : list[i].vallen);
		if (list[i].value != NULL)
			appendBinaryStringInfo(&buf, list[i].value, list[i].vallen);
	}
	SET_VARSIZE(buf.data, buf.len);
	PG_RETURN_BYTEA_P((bytea *) buf.data);
}

/*
 * pgq_headers_from_kafka(data bytea) returns jsonb: Kafka's encoding of a
 * record's headers (count first) as pgqueue stores them, the canonical form.
 */
Datum
pgq_headers_from_kafka(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(data);
	const unsigned char *end = p + VARSIZE_ANY_EXHDR(data);
	PgqHeader  *list;
	int32		n;
	int			i;

	n = read_varint(&p, end);
	/* each header takes at least two bytes: no count can exceed that */
	if (n < 0 || n > (end - p) / 2)
		kafka_malformed("The header count is negative or larger than the data.");
	list = palloc(sizeof(PgqHeader) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int32		keylen = read_varint(&p, end);
		int32		vallen;

		if (keylen < 0 || keylen > end - p)
			kafka_malformed("A header key's length is negative or past the end of the data.");
		/* Kafka's keys are UTF-8 strings; jsonb's strings hold no NUL */
		if (pg_verify_mbstr_len(PG_UTF8, (const char *) p, keylen, true) < 0 ||
			memchr(p, '\0', keylen) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("the key of header %d is not valid UTF-8 text", i + 1)));
		list[i].key = pg_any_to_server((const char *) p, keylen, PG_UTF8);
		list[i].keylen = list[i].key == (const char *) p ? keylen : (int) strlen(list[i].key);
		p += keylen;
		vallen = read_varint(&p, end);
		if (vallen < -1 || vallen > end - p)
			kafka_malformed("A header value's length is below -1 or past the end of the data.");
		list[i].value = vallen < 0 ? NULL : (const char *) p;
		list[i].vallen = Max(vallen, 0);
		p += list[i].vallen;
	}
	if (p != end)
		kafka_malformed("There are bytes after the last header.");
	PG_RETURN_JSONB_P(headers_canonical(list, n));
}

/*
 * pgq_headers_list(headers jsonb) returns table(key text, value bytea): the
 * headers (either form) as rows, in their order, each value as its bytes.
 */
Datum
pgq_headers_list(PG_FUNCTION_ARGS)
{
	Jsonb	   *headers = PG_GETARG_JSONB_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgqHeader  *list;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	list = headers_parse(headers, &n);
	for (i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, list[i].value == NULL};

		values[0] = PointerGetDatum(cstring_to_text_with_len(list[i].key, list[i].keylen));
		if (list[i].value != NULL)
		{
			bytea	   *b = palloc(VARHDRSZ + list[i].vallen);

			SET_VARSIZE(b, VARHDRSZ + list[i].vallen);
			memcpy(VARDATA(b), list[i].value, list[i].vallen);
			values[1] = PointerGetDatum(b);
		}
		else
			values[1] = (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
