/*-------------------------------------------------------------------------
 *
 * payload.c
 *	  The types pgq_send and pgq_send_batch take keys and values in:
 *	  pgq_payload (one key or value) and pgq_payloads (a batch of them).
 *
 * A payload is the bytes a record stores: text as its UTF-8 bytes (whatever
 * the database encoding), bytes as they are.
 *
 * Why types of our own rather than overloads for text and bytea: a typed
 * driver sends a parameter untyped (OID 0) and leaves its type to the
 * server, which fixes it once, when the statement is parsed, from the
 * function's overloads; only the format of each value (text or binary) may
 * differ between executions.  node-postgres sends a string untyped in text
 * format and a Buffer untyped in binary format.  No built-in type reads both
 * as meant: text's binary input rejects bytes that are not valid UTF-8, and
 * bytea's text input decodes escapes in a string (the string \x41 would be
 * stored as the byte 'A').  pgq_payload's text input takes the string as
 * text, its binary input takes the bytes as they are.
 *
 * Arrays have the same problem one level down: node-postgres writes every
 * array as a text literal, a string element quoted ("\\x41" for the string
 * \x41) and a Buffer element unquoted in bytea's hex format (\\x41), and
 * array_in forgets the quotes before it calls the element type's input.  So
 * pgq_payloads reads the literal itself: an element written without quotes
 * that reads \x followed by hex digits is bytes, every other element text.
 * (psycopg quotes every element holding a backslash, so its strings are
 * text too.)
 *
 * Both types are in the string category, so that an untyped argument
 * resolves to them rather than to the jsonb overloads (see the install
 * script); implicit casts let text, varchar, json and bytea arguments and
 * arrays of them in.
 *
 * Representation: pgq_payload is a varlena of the bytes, like bytea (so
 * bytea casts to it binary-coercibly).  pgq_payloads is a one-dimensional
 * array, of bytea elements when it comes from its own input functions, of
 * text, varchar, json or bytea elements when cast from those arrays, which
 * are passed on unchanged (send.c converts the elements as it reads them).
 *
 * Output is for display only (EXPLAIN, psql): a payload that is valid UTF-8
 * in a UTF-8 database, or ASCII in another, is shown as text, any other in
 * bytea's hex format.  Values of these types are not meant to be stored.
 *
 *-------------------------------------------------------------------------
 */
#include "pgqueue.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "parser/scansup.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "payload.h"

PG_FUNCTION_INFO_V1(pgq_payload_in);
PG_FUNCTION_INFO_V1(pgq_payload_out);
PG_FUNCTION_INFO_V1(pgq_payload_recv);
PG_FUNCTION_INFO_V1(pgq_payload_send);
PG_FUNCTION_INFO_V1(pgq_payload_from_text);
PG_FUNCTION_INFO_V1(pgq_payloads_in);
PG_FUNCTION_INFO_V1(pgq_payloads_out);
PG_FUNCTION_INFO_V1(pgq_payloads_recv);
PG_FUNCTION_INFO_V1(pgq_payloads_send);
PG_FUNCTION_INFO_V1(pgq_payloads_from_array);

bytea *
payload_from_text(const char *data, int len)
{
	char	   *utf8;
	bytea	   *result;

	utf8 = (char *) pg_do_encoding_conversion((unsigned char *) data, len,
											  GetDatabaseEncoding(), PG_UTF8);
	if (utf8 != data)
		len = strlen(utf8);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), utf8, len);
	return result;
}

/*
 * Whether bytes can be shown as text: valid UTF-8 without NUL bytes that
 * reads the same in the database encoding.
 */
bool
payload_is_text(const char *data, int len)
{
	int			i;

	if (GetDatabaseEncoding() == PG_UTF8)
		return pg_encoding_verifymbstr(PG_UTF8, data, len) == len;
	for (i = 0; i < len; i++)
		if (data[i] == '\0' || IS_HIGHBIT_SET(data[i]))
			return false;
	return true;
}

/* appends bytes in bytea's hex format, \x and two digits a byte */
static void
append_hex(StringInfo buf, const char *data, int len)
{
	enlargeStringInfo(buf, 2 + 2 * len);
	appendStringInfoString(buf, "\\x");
	buf->len += hex_encode(data, len, buf->data + buf->len);
	buf->data[buf->len] = '\0';
}

/* pgq_payload's text input: the string is text, stored as UTF-8 */
Datum
pgq_payload_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);

	PG_RETURN_BYTEA_P(payload_from_text(str, strlen(str)));
}

Datum
pgq_payload_out(PG_FUNCTION_ARGS)
{
	bytea	   *payload = PG_GETARG_BYTEA_PP(0);
	const char *data = VARDATA_ANY(payload);
	int			len = VARSIZE_ANY_EXHDR(payload);
	StringInfoData buf;

	initStringInfo(&buf);
	if (payload_is_text(data, len))
		appendBinaryStringInfo(&buf, data, len);
	else
		append_hex(&buf, data, len);
	PG_RETURN_CSTRING(buf.data);
}

/* pgq_payload's binary input: the bytes as they are */
Datum
pgq_payload_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			len = buf->len - buf->cursor;
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	pq_copymsgbytes(buf, VARDATA(result), len);
	PG_RETURN_BYTEA_P(result);
}

Datum
pgq_payload_send(PG_FUNCTION_ARGS)
{
	bytea	   *payload = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* the cast from text, varchar and json: the UTF-8 bytes of the text */
Datum
pgq_payload_from_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
		PG_RETURN_BYTEA_P((bytea *) t); /* text and bytea share a layout */
	PG_RETURN_BYTEA_P(payload_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

static void
payloads_malformed(const char *str, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("malformed pgq_payloads literal: \"%s\"", str),
			 errdetail("%s", detail)));
}

/*
 * pgq_payloads's text input: a one-dimensional array literal, read as
 * array_in reads one (quotes, backslash escapes, NULL, white space around
 * elements), except that an element written without quotes whose text
 * begins with \x is bytes in hex (node-postgres writes a Buffer so).
 */
Datum
pgq_payloads_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	const char *p = str;
	int			n = 0;
	int			size = 8;
	Datum	   *elems = palloc(sizeof(Datum) * size);
	bool	   *nulls = palloc(sizeof(bool) * size);
	int			dims[1];
	int			lbs[1] = {1};
	StringInfoData elem;

	initStringInfo(&elem);
	while (scanner_isspace(*p))
		p++;
	if (*p != '{')
		payloads_malformed(str, "A batch is written as an array literal, {a,b,...}.");
	p++;
	while (scanner_isspace(*p))
		p++;
	if (*p == '}')
		p++;
	else
		for (;;)
		{
			bool		quoted = false;
			bool		escaped = false;
			bool		isnull = false;

			resetStringInfo(&elem);
			while (scanner_isspace(*p))
				p++;
			if (*p == '{')
				payloads_malformed(str, "A batch is a one-dimensional array.");
			if (*p == '"')
			{
				quoted = true;
				for (p++; *p != '"'; p++)
				{
					if (*p == '\\')
						p++;
					if (*p == '\0')
						payloads_malformed(str, "Unexpected end of input.");
					appendStringInfoChar(&elem, *p);
				}
				p++;
			}
			else
			{
				int			keep = 0;	/* up to the last unescaped non-space */

				for (; *p != ',' && *p != '}'; p++)
				{
					if (*p == '\0')
						payloads_malformed(str, "Unexpected end of input.");
					if (*p == '"' || *p == '{')
						payloads_malformed(str, "Unexpected character in an unquoted element.");
					if (*p == '\\')
					{
						p++;
						if (*p == '\0')
							payloads_malformed(str, "Unexpected end of input.");
						escaped = true;
						appendStringInfoChar(&elem, *p);
						keep = elem.len;
						continue;
					}
					appendStringInfoChar(&elem, *p);
					if (!scanner_isspace(*p))
						keep = elem.len;
				}
				elem.len = keep;
				elem.data[keep] = '\0';
				if (elem.len == 0)
					payloads_malformed(str, "An unquoted element is empty.");
				isnull = !escaped && pg_strcasecmp(elem.data, "NULL") == 0;
			}
			while (scanner_isspace(*p))
				p++;
			if (*p != ',' && *p != '}')
				payloads_malformed(str, "Expected \",\" or \"}\" after an element.");

			if (n == size)
			{
				size *= 2;
				elems = repalloc(elems, sizeof(Datum) * size);
				nulls = repalloc(nulls, sizeof(bool) * size);
			}
			nulls[n] = isnull;
			if (isnull)
				elems[n] = (Datum) 0;
			else if (!quoted && elem.len >= 2 && elem.data[0] == '\\' && elem.data[1] == 'x')
			{
				bytea	   *bytes = palloc(VARHDRSZ + (elem.len - 2) / 2);

				SET_VARSIZE(bytes, VARHDRSZ + hex_decode(elem.data + 2, elem.len - 2, VARDATA(bytes)));
				elems[n] = PointerGetDatum(bytes);
			}
			else
				elems[n] = PointerGetDatum(payload_from_text(elem.data, elem.len));
			n++;

			if (*p++ == '}')
				break;
		}
	while (scanner_isspace(*p))
		p++;
	if (*p != '\0')
		payloads_malformed(str, "Junk after the closing right brace.");

	dims[0] = n;
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(BYTEAOID));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, 1, dims, lbs,
											 BYTEAOID, -1, false, TYPALIGN_INT));
}

/*
 * pgq_payloads's text output, which its input reads back to the same bytes:
 * text elements quoted, bytes that are not text unquoted in hex.
 */
Datum
pgq_payloads_out(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Oid			elemtype = ARR_ELEMTYPE(array);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	StringInfoData buf;

	deconstruct_array(array, elemtype, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
	{
		const char *data;
		int			len;

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		if (nulls[i])
		{
			appendStringInfoString(&buf, "NULL");
			continue;
		}
		data = VARDATA_ANY(DatumGetPointer(elems[i]));
		len = VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i]));
		if (elemtype == BYTEAOID && !payload_is_text(data, len))
		{
			/* the backslash escaped, as node-postgres writes it */
			appendStringInfoChar(&buf, '\\');
			append_hex(&buf, data, len);
			continue;
		}
		appendStringInfoChar(&buf, '"');
		for (; len > 0; data++, len--)
		{
			if (*data == '"' || *data == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *data);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/*
 * pgq_payloads's binary input: an array in array_send's format, of bytea,
 * text, varchar or json elements (as a client sends a typed array).
 */
Datum
pgq_payloads_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	uint32		elemtype_n;
	Oid			elemtype;
	FmgrInfo	flinfo;

	/* the header is ndim, has-nulls flag, element type */
	if (buf->len - buf->cursor < 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("insufficient data left in message")));
	memcpy(&elemtype_n, buf->data + buf->cursor + 8, sizeof(elemtype_n));
	elemtype = pg_ntoh32(elemtype_n);
	if (elemtype != BYTEAOID && elemtype != TEXTOID && elemtype != VARCHAROID &&
		elemtype != JSONOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("binary pgq_payloads must be an array of bytea, text, varchar or json, not %s",
						format_type_be(elemtype))));
	fmgr_info(F_ARRAY_RECV, &flinfo);
	PG_RETURN_DATUM(ReceiveFunctionCall(&flinfo, buf, elemtype, -1));
}

Datum
pgq_payloads_send(PG_FUNCTION_ARGS)
{
	FmgrInfo	flinfo;

	fmgr_info(F_ARRAY_SEND, &flinfo);
	PG_RETURN_BYTEA_P(SendFunctionCall(&flinfo, PG_GETARG_DATUM(0)));
}

/*
 * The cast from text[], varchar[], json[] and bytea[]: the array as it is;
 * send.c reads each element by the array's element type.
 */
Datum
pgq_payloads_from_array(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}
