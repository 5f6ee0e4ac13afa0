// gw_kafkajs_admin.js BOOTSTRAP
//	kafkajs 2.2.4's admin client (the project's node_modules) through the
//	gateway, for test/t/061_gateway_admin.pl: creates, alters, describes
//	and deletes topics, and prints what kafkajs answered, for the test to
//	compare with SQL:
//	  created NAME true|false         createTopics' answer for one topic
//	  error STEP TYPE                 a step that failed: kafkajs's error type
//	  config NAME KEY VALUE DEFAULT SOURCE
//	                                  describeConfigs of a topic
//	  broker KEY VALUE READONLY       describeConfigs of broker 0
//	  topics NAME,...                 listTopics, sorted
//	  partitions NAME N               fetchTopicMetadata
//	and "done" at its end.  Whatever happens, it exits within 55 seconds.
'use strict'

const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')

const [bootstrap] = process.argv.slice(2)

setTimeout(() => {
  console.log('not ok admin ended in time')
  process.exit(3)
}, 55000)

const kafka = new Kafka({
  clientId: 'gw-kafkajs-admin',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 5000,
  requestTimeout: 10000,
  retry: { retries: 2, initialRetryTime: 100 },
})

// runs a step; a failure prints its error type and the run goes on
async function step(name, fn) {
  try {
    return await fn()
  } catch (e) {
    // the cause: of each topic (an aggregate), or of the last retry
    const causes = e.errors ? e.errors.map((x) => x.type) : e.cause ? [e.cause.type] : []
    console.log(`error ${name} ${[e.type || e.name, ...causes].join(' ')}`)
    return undefined
  }
}

async function describe(a, topic) {
  const r = await a.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false,
  })
  for (const res of r.resources) {
    if (res.errorCode !== 0) {
      console.log(`error describe-${topic} ${res.errorCode}`)
      continue
    }
    for (const c of res.configEntries)
      console.log(`config ${topic} ${c.configName} ${c.configValue} ${c.isDefault} ${c.configSource}`)
  }
}

async function main() {
  const a = kafka.admin()
  await a.connect()

  const created = await step('create', () =>
    a.createTopics({
      topics: [
        { topic: 'kjs_a', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
        { topic: 'kjs_b' },
      ],
    })
  )
  console.log(`created kjs_a,kjs_b ${created}`)
  // an existing topic: kafkajs answers false instead of throwing
  const again = await step('create-again', () => a.createTopics({ topics: [{ topic: 'kjs_b' }] }))
  console.log(`created kjs_b ${again}`)
  const validated = await step('validate', () =>
    // (waitForLeaders would wait for a topic that validateOnly did not create)
    a.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'kjs_v', numPartitions: 3 }] })
  )
  console.log(`created kjs_v ${validated}`)
  await step('create-bad-config', () =>
    a.createTopics({ topics: [{ topic: 'kjs_c', configEntries: [{ name: 'compression.type', value: 'lz4' }] }] })
  )
  await step('create-bad-name', () => a.createTopics({ topics: [{ topic: 'kjs bad' }] }))

  await step('partitions', () => a.createPartitions({ topicPartitions: [{ topic: 'kjs_a', count: 4 }] }))
  await step('partitions-fewer', () => a.createPartitions({ topicPartitions: [{ topic: 'kjs_a', count: 3 }] }))
  const md = await step('metadata', () => a.fetchTopicMetadata({ topics: ['kjs_a'] }))
  if (md) console.log(`partitions kjs_a ${md.topics[0].partitions.length}`)

  await step('describe', () => describe(a, 'kjs_a'))
  await step('describe-missing', () => describe(a, 'kjs_missing'))
  const broker = await step('describe-broker', () =>
    a.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '0' }], includeSynonyms: false })
  )
  for (const c of broker ? broker.resources[0].configEntries : [])
    console.log(`broker ${c.configName} ${c.configValue} ${c.readOnly}`)

  // AlterConfigs replaces the set keys: retention.ms goes back to its default
  await step('alter', () =>
    a.alterConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: 'kjs_a', configEntries: [{ name: 'segment.ms', value: '60000' }] }],
    })
  )
  await step('alter-bad', () =>
    a.alterConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: 'kjs_a', configEntries: [{ name: 'segment.ms', value: 'soon' }] }],
    })
  )
  await step('describe-altered', () => describe(a, 'kjs_a'))

  await step('delete', () => a.deleteTopics({ topics: ['kjs_b'] }))
  await step('delete-missing', () => a.deleteTopics({ topics: ['kjs_missing'] }))
  const topics = await step('list', () => a.listTopics())
  console.log(`topics ${(topics || []).sort().join(',')}`)
  await a.disconnect()
}

main().then(
  () => {
    console.log('done')
    process.exit(0)
  },
  (e) => {
    console.log(`not ok admin: ${e.name}: ${e.message}`)
    process.exit(2)
  }
)
