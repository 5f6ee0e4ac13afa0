// pg_send.js: sends every kind of key and value through pgq_send and
// pgq_send_batch the way node-postgres (pg) sends JavaScript values (every
// parameter untyped, no casts in the SQL), reads each record back with
// pgq_fetch and checks that the stored bytes are exactly the ones meant.
// Prints "ok <what>" or "not ok <what>: ..." per check, then "done"; run by
// test/t/030_drivers.pl.  Connects with the usual PG* environment variables.
'use strict'

const { Client } = require('pg')

const TOPIC = 'node'

const hex = (b) => (b == null ? null : b.toString('hex'))
const utf8 = (s) => Buffer.from(s, 'utf8')

async function main() {
  const client = new Client()
  await client.connect()
  await client.query('SELECT pgq_create_topic($1, 4)', [TOPIC])
  let failed = false

  const fetch = async (row) =>
    (await client.query('SELECT key, value FROM pgq_fetch($1, $2, $3, 1)', [TOPIC, row.partition, row.msg_offset]))
      .rows[0]

  const check = (what, got, want) => {
    const g = JSON.stringify(got)
    const w = JSON.stringify(want)
    if (g === w) {
      console.log(`ok ${what}`)
    } else {
      failed = true
      console.log(`not ok ${what}: stored ${g}, meant ${w}`)
    }
  }

  // runs a sending check; a failed statement is a failed check
  const failing = (call) => async (what, ...args) => {
    try {
      return await call(what, ...args)
    } catch (err) {
      failed = true
      console.log(`not ok ${what}: ${err.code} ${err.message}`)
    }
  }

  // pgq_send(topic, value[, key]) (text or a prepared statement's name) and what it stored
  const send = failing(async (what, value, storedValue, key, storedKey, name) => {
    const text = key === undefined ? 'SELECT * FROM pgq_send($1, $2)' : 'SELECT * FROM pgq_send($1, $2, $3)'
    const values = key === undefined ? [TOPIC, value] : [TOPIC, value, key]
    const row = (await client.query({ text, values, name })).rows[0]
    const rec = await fetch(row)
    check(`pgq_send ${what}: value`, hex(rec.value), hex(storedValue))
    if (key !== undefined) check(`pgq_send ${what}: key`, hex(rec.key), hex(storedKey))
    return row.partition
  })

  const sendBatch = failing(async (what, values, storedValues, keys, storedKeys) => {
    const text = keys === undefined ? 'SELECT * FROM pgq_send_batch($1, $2)' : 'SELECT * FROM pgq_send_batch($1, $2, $3)'
    const params = keys === undefined ? [TOPIC, values] : [TOPIC, values, keys]
    const rows = (await client.query(text, params)).rows
    const recs = []
    for (const row of rows) recs.push(await fetch(row))
    check(`pgq_send_batch ${what}: values`, recs.map((r) => hex(r.value)), storedValues.map(hex))
    if (keys !== undefined) check(`pgq_send_batch ${what}: keys`, recs.map((r) => hex(r.key)), storedKeys.map(hex))
    return rows.map((r) => r.partition)
  })

  // string: untyped, text format
  for (const s of ['héllo', '\\x41', '\\\\x41', '']) await send(`string ${JSON.stringify(s)}`, s, utf8(s))
  // Buffer: untyped, binary format
  for (const b of [Buffer.from([0x00, 0xff, 0xfe]), utf8('\\x41'), Buffer.alloc(0)]) {
    await send(`Buffer ${hex(b)}`, b, b)
  }
  // object: untyped, text format (JSON.stringify)
  const obj = { id: 1, name: 'é', list: [1, 'x'] }
  await send('object', obj, utf8(JSON.stringify(obj)))
  await send('null (a tombstone)', null, null, 'k', utf8('k'))
  // one prepared statement, its parameter types fixed, for a string and a Buffer
  await send('string, prepared', '\\xff', utf8('\\xff'), undefined, undefined, 'send_prepared')
  await send('Buffer, prepared', Buffer.from([0xff]), Buffer.from([0xff]), undefined, undefined, 'send_prepared')

  // keys: a string and the same bytes land on the same partition
  const pString = await send('string key', 'v', utf8('v'), 'clé-1', utf8('clé-1'))
  const pBuffer = await send('Buffer key', Buffer.from('v'), utf8('v'), utf8('clé-1'), utf8('clé-1'))
  await send('object value, Buffer key', { a: 1 }, utf8('{"a":1}'), Buffer.from([0xff, 0]), Buffer.from([0xff, 0]))
  check('a string key and its bytes go to the same partition', pBuffer, pString)

  // string[]: one untyped text literal, each element quoted
  const strs = ['a', '\\x41', '\\\\x41', 'a,b', '"q"', ' sp ', '', 'NULL', '{x}', 'é', null]
  await sendBatch('string[]', strs, strs.map((s) => (s === null ? null : utf8(s))))
  // Buffer[]: the same literal, each element unquoted \\x<hex>
  const bufs = [Buffer.from([0x00, 0xff]), Buffer.from([0xff, 0xff, 0xff]), Buffer.alloc(0), utf8('\\x41'), null]
  await sendBatch('Buffer[]', bufs, bufs)
  await sendBatch('[string, Buffer] mixed', ['\\x41', utf8('\\x41'), Buffer.from([0xff])],
    [utf8('\\x41'), utf8('\\x41'), Buffer.from([0xff])])
  // (an array in the array would be a dimension, not JSON)
  const objs = [{ a: 1 }, { list: [1, 'x'] }, { s: 'quote " and \\ backslash' }]
  await sendBatch('object[]', objs, objs.map((o) => utf8(JSON.stringify(o))))

  // keys of either kind with values of either kind
  const ks = ['clé-1', 'k2', '\\x00']
  const pStrings = await sendBatch('Buffer[] values, string[] keys', [Buffer.from([0xff]), Buffer.from([0]), Buffer.alloc(0)],
    [Buffer.from([0xff]), Buffer.from([0]), Buffer.alloc(0)], ks, ks.map(utf8))
  const pBuffers = await sendBatch('string[] values, Buffer[] keys', ['x', 'y', 'z'], ['x', 'y', 'z'].map(utf8),
    ks.map(utf8), ks.map(utf8))
  check('string keys and their bytes go to the same partitions', pBuffers, pStrings)
  check("a batch key goes where pgq_send's key went", pStrings && pStrings[0], pString)

  await client.end()
  console.log('done')
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.log(`not ok the client: ${err.message} (SQLSTATE ${err.code})`)
    process.exit(1)
  }
)
