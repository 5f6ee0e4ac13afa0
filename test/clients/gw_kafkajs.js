// gw_kafkajs.js BOOTSTRAP MODE [ARG...]
//	kafkajs 2.2.4 (npm, the project's node_modules) through the gateway, for
//	test/t/059_gateway_kafkajs.pl.  Prints data lines for the test to compare
//	with SQL, and "ok ..." / "not ok ...: why" lines for the checks it can
//	make itself; every run ends with "done" if it got to its end.  kafkajs
//	logs only its errors, to stderr.  Whatever happens, the program exits
//	within 55 seconds.
//
//	Records are printed as
//	  record TOPIC PARTITION OFFSET KEY VALUE TIMESTAMP HEADERS
//	with KEY and VALUE in hex ("-" for null, "" stays empty: then the field
//	is "~"), TIMESTAMP in ms, and HEADERS as "key=hex;key=hex" in order
//	("-" for none).
//
//	produce            sends records with keys, headers (a repeated key, a
//	                   binary value) and explicit timestamps: with acks -1
//	                   (the default), with acks 1 and gzip, and with
//	                   sendBatch to two topics; prints each record with the
//	                   offset its RecordMetadata gave, and "keyed KEY
//	                   PARTITION" for records kafkajs's default partitioner
//	                   placed
//	more N             sends N records "more-i" (no key) to orders with
//	                   acks -1, printed as above
//	consume GROUP N [auto]
//	                   a consumer of GROUP on orders (or $TOPIC) with
//	                   fromBeginning and autoCommit false, that prints every
//	                   record and commits each with commitOffsets (with
//	                   "auto": kafkajs's autoCommit instead, after every
//	                   offset it resolves: autoCommitThreshold 1);
//	                   stops once it has N records and no other came for
//	                   2 s (or none came for 8 s)
//	share GROUP        the same (commitOffsets) until SIGTERM, then disconnects; prints
//	                   "assigned P,..." when its assignment changes
//	admin GROUP        listTopics, fetchTopicMetadata, fetchTopicOffsets,
//	                   fetchTopicOffsetsByTimestamp, fetchOffsets of GROUP,
//	                   listGroups, describeGroups, describeCluster
//	idempotent PROXY GATEWAY
//	                   an idempotent producer whose first connection to
//	                   the broker goes through a proxy on 127.0.0.1:PROXY
//	                   (the address a second gateway advertises) that
//	                   forwards to 127.0.0.1:GATEWAY and drops the
//	                   connection instead of passing on the first Produce
//	                   response: kafkajs retries the batch with the same
//	                   sequence, which must not append it twice
'use strict'

const net = require('net')
const { Kafka, logLevel, CompressionTypes, Partitioners } = require('kafkajs')

const [bootstrap, mode, ...args] = process.argv.slice(2)

setTimeout(() => {
  console.log(`not ok ${mode} ended in time`)
  process.exit(3)
}, 55000)

// kafkajs's errors only, to stderr, so that stdout has our lines alone
const logCreator = () => ({ namespace, level, log }) => {
  if (level <= logLevel.ERROR) console.error(`kafkajs ${namespace}: ${log.message} ${JSON.stringify(log)}`)
}

const kafka = new Kafka({
  clientId: process.env.CLIENT_ID || 'gw-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 10000,
  retry: { retries: 5, initialRetryTime: 100 },
})

let failed = false
const check = (what, ok, why) => {
  console.log(ok ? `ok ${what}` : `not ok ${what}: ${why}`)
  if (!ok) failed = true
}

const hex = (b) => {
  if (b == null) return '-'
  const h = Buffer.from(b).toString('hex')
  return h === '' ? '~' : h
}

// headers in sent form ({key: value or [values]}) or received form (the
// same, values Buffers): "key=hex;..." in order
const headerText = (headers) => {
  const parts = []
  for (const [k, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${Buffer.from(one).toString('hex')}`)
  }
  return parts.length ? parts.join(';') : '-'
}

const recordLine = (topic, partition, offset, m) =>
  `record ${topic} ${partition} ${offset} ${hex(m.key == null ? null : Buffer.from(m.key))} ` +
  `${hex(m.value == null ? null : Buffer.from(m.value))} ${m.timestamp} ${headerText(m.headers)}`

// kafkajs's default partitioner (Java's murmur2), remembering where it put
// each message: RecordMetadata gives one base offset per partition
function trackingPartitioner(placed) {
  return () => {
    const inner = Partitioners.DefaultPartitioner()
    return (a) => {
      const p = inner(a)
      placed.set(a.message, p)
      return p
    }
  }
}

// Prints each message of a send with its offset: the base offset of its
// partition's RecordMetadata plus its rank among that partition's messages.
function printSent(topic, messages, placed, metadata) {
  const rank = new Map()
  for (const m of messages) {
    const p = placed.get(m)
    const md = metadata.find((r) => r.topicName === topic && r.partition === p)
    if (!md || md.errorCode !== 0) {
      check(`${topic} partition ${p} acknowledged`, false, JSON.stringify(md))
      continue
    }
    const i = rank.get(p) || 0
    rank.set(p, i + 1)
    console.log(recordLine(topic, p, BigInt(md.baseOffset) + BigInt(i), m))
    if (m.partition == null && m.key != null) console.log(`keyed ${hex(Buffer.from(m.key))} ${p}`)
  }
}

async function produce() {
  const placed = new Map()
  const producer = kafka.producer({ createPartitioner: trackingPartitioner(placed) })
  await producer.connect()

  const first = [
    { key: 'k-alpha', value: 'first', headers: { trace: 'abc', n: '1' }, timestamp: '1700000000001' },
    {
      key: Buffer.from([0, 1, 2, 255]),
      value: Buffer.from([0xff, 0x00, 0x80]),
      headers: { rep: ['one', 'two'], bin: Buffer.from([0, 255, 10]) },
      timestamp: '1700000000002',
    },
    { key: null, value: 'no key, partition 1', partition: 1, timestamp: '1700000000003' },
    { key: 'k-alpha', value: 'second', timestamp: '1700000000004' },
    { key: 'k-empty', value: '', headers: { empty: '' }, timestamp: '1700000000005' },
    { key: 'k-tomb', value: null, timestamp: '1700000000006' },
  ]
  printSent('orders', first, placed, await producer.send({ topic: 'orders', messages: first }))

  const gz = []
  for (let i = 0; i < 20; i++) gz.push({ key: `k${i}`, value: `gz-${i} ${'x'.repeat(30)}`, timestamp: `${1700000001000 + i}` })
  printSent(
    'orders',
    gz,
    placed,
    await producer.send({ topic: 'orders', acks: 1, compression: CompressionTypes.GZIP, messages: gz })
  )

  const toOrders = [{ key: 'k-batch', value: 'batch to orders', timestamp: '1700000002000' }]
  const toEvents = [
    { value: 'event one', headers: { kind: 'a' }, timestamp: '1700000002001' },
    { value: 'event two', timestamp: '1700000002002' },
  ]
  const md = await producer.sendBatch({
    topicMessages: [
      { topic: 'orders', messages: toOrders },
      { topic: 'events', messages: toEvents },
    ],
  })
  printSent('orders', toOrders, placed, md)
  printSent('events', toEvents, placed, md)
  await producer.disconnect()
}

async function more(n) {
  const placed = new Map()
  const producer = kafka.producer({ createPartitioner: trackingPartitioner(placed) })
  await producer.connect()
  const messages = []
  for (let i = 0; i < n; i++) messages.push({ value: `more-${i}`, timestamp: `${1700000003000 + i}` })
  printSent('orders', messages, placed, await producer.send({ topic: 'orders', messages }))
  await producer.disconnect()
}

// A group consumer of orders that commits each record after printing it.
async function consumer(group, onAssign) {
  const c = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
  await c.connect()
  c.on(c.events.GROUP_JOIN, (e) => onAssign && onAssign(e.payload.memberAssignment))
  c.on(c.events.CRASH, (e) => check('the consumer does not crash', false, e.payload.error && e.payload.error.stack))
  await c.subscribe({ topic: process.env.TOPIC || 'orders', fromBeginning: true })
  return c
}

async function consume(group, n, auto) {
  let got = 0
  let last = Date.now()
  const started = Date.now()
  const c = await consumer(group)
  await c.run({
    autoCommit: auto,
    autoCommitThreshold: 1,
    eachMessage: async ({ topic, partition, message }) => {
      console.log(recordLine(topic, partition, message.offset, message))
      if (!auto) await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      got++
      last = Date.now()
    },
  })
  const idle = () => Date.now() - Math.max(last, started)
  while (!(got >= n && idle() > 2000) && idle() < 8000) await new Promise((r) => setTimeout(r, 100))
  await c.disconnect()
  check(`consumer of ${group} read ${n} records`, got === n, `it read ${got}`)
}

async function share(group) {
  let c
  const stop = new Promise((resolve) => process.on('SIGTERM', resolve))
  c = await consumer(group, (a) => console.log(`assigned ${(a.orders || []).join(',')}`))
  await c.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      console.log(recordLine(topic, partition, message.offset, message))
      await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
    },
  })
  console.log('running')
  await stop
  await c.disconnect()
}

async function admin(group) {
  const a = kafka.admin()
  await a.connect()
  console.log(`topics ${(await a.listTopics()).sort().join(',')}`)
  const meta = await a.fetchTopicMetadata({ topics: ['orders', 'events'] })
  for (const t of meta.topics.sort((x, y) => x.name.localeCompare(y.name)))
    console.log(`metadata ${t.name} ${t.partitions.length} ${t.partitions.map((p) => p.leader).join(',')}`)
  const offsets = await a.fetchTopicOffsets('orders')
  console.log(
    `offsets orders ${offsets
      .sort((x, y) => x.partition - y.partition)
      .map((o) => `${o.partition}:${o.low}-${o.high}`)
      .join(' ')}`
  )
  const byTime = await a.fetchTopicOffsetsByTimestamp('orders', 1700000001010)
  console.log(
    `offsets-by-time orders ${byTime
      .sort((x, y) => x.partition - y.partition)
      .map((o) => `${o.partition}:${o.offset}`)
      .join(' ')}`
  )
  const committed = await a.fetchOffsets({ groupId: group, topics: ['orders'] })
  for (const t of committed)
    console.log(
      `committed ${group} ${t.topic} ${t.partitions
        .sort((x, y) => x.partition - y.partition)
        .map((p) => `${p.partition}:${p.offset}`)
        .join(' ')}`
    )
  const { groups } = await a.listGroups()
  for (const g of groups.sort((x, y) => x.groupId.localeCompare(y.groupId)))
    console.log(`group ${g.groupId} ${g.protocolType}`)
  const described = await a.describeGroups([group])
  for (const g of described.groups) console.log(`described ${g.groupId} ${g.state} ${g.members.length}`)
  const cluster = await a.describeCluster()
  console.log(`cluster ${cluster.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`).join(',')} ${cluster.controller}`)
  await a.disconnect()
}

// A proxy that passes bytes both ways, and, while armed, drops the
// connection when the response to a Produce request arrives (the request
// was appended: the client must retry it without duplicating it).
function proxy(port, target) {
  const state = { produces: 0, dropped: 0, armed: true }
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1')
    const pending = [] // api keys of the requests in flight, in order
    let inBuf = Buffer.alloc(0)
    let outBuf = Buffer.alloc(0)
    client.on('data', (d) => {
      inBuf = Buffer.concat([inBuf, d])
      while (inBuf.length >= 6 && inBuf.length >= 4 + inBuf.readInt32BE(0)) {
        const key = inBuf.readInt16BE(4)
        if (key === 0) state.produces++
        pending.push(key)
        inBuf = inBuf.subarray(4 + inBuf.readInt32BE(0))
      }
      upstream.write(d)
    })
    upstream.on('data', (d) => {
      outBuf = Buffer.concat([outBuf, d])
      while (outBuf.length >= 4 && outBuf.length >= 4 + outBuf.readInt32BE(0)) {
        const frame = outBuf.subarray(0, 4 + outBuf.readInt32BE(0))
        outBuf = outBuf.subarray(frame.length)
        if (pending.shift() === 0 && state.armed) {
          state.armed = false
          state.dropped++
          client.destroy()
          upstream.destroy()
          return
        }
        client.write(frame)
      }
    })
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, state })))
}

async function idempotent(proxyPort, gatewayPort) {
  const { server, state } = await proxy(Number(proxyPort), Number(gatewayPort))
  const placed = new Map()
  const producer = kafka.producer({ idempotent: true, createPartitioner: trackingPartitioner(placed) })
  await producer.connect()
  for (let round = 0; round < 3; round++) {
    const messages = []
    for (let i = 0; i < 5; i++) messages.push({ value: `idem-${round}-${i}`, partition: i % 3, timestamp: `${1700000004000 + i}` })
    printSent('orders', messages, placed, await producer.send({ topic: 'orders', messages }))
  }
  await producer.disconnect()
  server.close()
  check('the proxy dropped the connection instead of a Produce response', state.dropped === 1, `dropped ${state.dropped}`)
  check('kafkajs sent that Produce request again', state.produces === 4, `${state.produces} Produce requests`)
}

async function main() {
  switch (mode) {
    case 'produce':
      return produce()
    case 'more':
      return more(Number(args[0]))
    case 'consume':
      return consume(args[0], Number(args[1]), args[2] === 'auto')
    case 'share':
      return share(args[0])
    case 'admin':
      return admin(args[0])
    case 'idempotent':
      return idempotent(args[0], args[1])
    default:
      throw new Error(`unknown mode ${mode}`)
  }
}

main().then(
  () => {
    console.log('done')
    process.exit(failed ? 1 : 0)
  },
  (e) => {
    console.log(`not ok ${mode}: ${e.name}: ${e.message}`)
    console.error(e.stack)
    process.exit(2)
  }
)
