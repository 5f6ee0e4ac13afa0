#!/usr/bin/env node
// worker.js: a member of a pgqueue consumer group, with node-postgres (pg).
//
//     node worker.js --group billing --topic orders [--member NAME]
//                    [--max-records 100] [--timeout-ms 5000] [--process-ms 0]
//                    [--url postgresql://...]
//
// The loop is Kafka's: poll, process, commit.
//
//   - pgq_join(group, member), once at start: this process is a new
//     instance of the member, so it reads on from the committed offsets,
//     not from the positions a previous process of the member may have left
//     (behind a pool nothing else tells the server that the old process
//     died).
//   - pgq_poll(group, topic, max_records, timeout_ms, member) returns
//     records from the partitions this member owns; with nothing to return
//     it waits up to timeout_ms for a send (a long poll).  The poll is also
//     the member's heartbeat.
//   - Processing a record here means printing it, one line per record, to
//     standard output:  <topic> TAB <partition> TAB <offset> TAB <key> TAB <value>
//     (--process-ms makes each record take that long, as real work would).
//   - pgq_commit(group, member) then commits what the poll returned.  A
//     crash between processing and committing delivers that batch again,
//     to this member or to the one that takes its partitions over:
//     at-least-once.
//
// On SIGTERM (or SIGINT) the worker finishes the batch in hand, commits
// it, leaves the group with pgq_leave(group, member), so that its
// partitions go to the other members at once, and exits 0.  A long poll in
// progress is waited for first, so stopping takes up to timeout_ms.
// On an error (a lost connection, a fenced commit) it exits non-zero: run
// it under a supervisor that restarts it; the records after the committed
// offset are then delivered again.
//
// The queries go through a pg.Pool, so the poll and the commit may run on
// different connections, as they may through PgBouncer: that works for a
// named member, which this worker always is (--member, default
// <hostname>-<pid>).  A long poll holds its connection for up to
// timeout_ms; the pool has room for one more query meanwhile.
//
// Types: msg_offset is a bigint, which node-postgres returns as a string
// (a JavaScript number is exact only up to 2^53).  Keep it a string, or
// parse it with BigInt(); pass it back as it came.  key and value are
// bytea and come as Buffers (null for a NULL key or a tombstone).
'use strict';

const os = require('os');
const { Pool } = require('pg');
const { parseOptions } = require('./options');

const opt = parseOptions(process.argv.slice(2), {
	group: null,
	topic: null,
	member: `${os.hostname()}-${process.pid}`,
	maxRecords: 100,
	timeoutMs: 5000,
	processMs: 0,
	url: null,
}, ['group', 'topic']);

let stopping = false;
// Only a flag: the loop stops after the batch in hand.
process.on('SIGTERM', () => { stopping = true; });
process.on('SIGINT', () => { stopping = true; });

function log(msg) {
	console.error(`worker ${opt.member}: ${msg}`);
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves once the text was handed to the operating system.
function write(text) {
	return new Promise((resolve, reject) => {
		process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
	});
}

async function processRecords(records) {
	for (const r of records) {
		if (opt.processMs > 0) await sleep(opt.processMs);
		const key = r.key === null ? '' : r.key.toString('utf8');
		const value = r.value === null ? '' : r.value.toString('utf8');
		// written out now, as a real side effect would be: a crash after it
		// and before the commit processes the record a second time
		await write(`${r.topic}\t${r.partition}\t${r.msg_offset}\t${key}\t${value}\n`);
	}
}

async function main() {
	const pool = new Pool({ connectionString: opt.url || undefined, max: 2 });
	// an idle pooled connection that breaks is an error outside any query
	pool.on('error', (err) => {
		log(`connection lost: ${err.message}`);
		process.exit(1);
	});
	let processed = 0;
	try {
		await pool.query('SELECT pgq_join($1, $2)', [opt.group, opt.member]);
		log(`consuming ${opt.topic} in group ${opt.group}`);
		while (!stopping) {
			const { rows } = await pool.query(
				'SELECT topic, partition, msg_offset, key, value FROM pgq_poll($1, $2, $3, $4, $5)',
				[opt.group, opt.topic, opt.maxRecords, opt.timeoutMs, opt.member]);
			if (rows.length === 0) continue;
			await processRecords(rows);
			await pool.query('SELECT pgq_commit($1, $2)', [opt.group, opt.member]);
			processed += rows.length;
		}
		await pool.query('SELECT pgq_leave($1, $2)', [opt.group, opt.member]);
		log(`processed ${processed} records, left the group`);
	} finally {
		await pool.end();
	}
}

main().catch((err) => {
	log(`failed: ${err.stack || err}`);
	process.exitCode = 1;
});
