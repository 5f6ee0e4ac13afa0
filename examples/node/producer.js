#!/usr/bin/env node
// producer.js: send keyed records to a pgqueue topic with node-postgres (pg).
//
//     node producer.js --topic orders --count 1000 [--batch 100] [--keys 16]
//                      [--prefix node] [--url postgresql://...]
//
// Sends the records "<prefix>-1" .. "<prefix>-<count>", the i-th with the
// key "key-<i mod keys>" (so a key always lands on the same partition), in
// batches of --batch records, one pgq_send_batch call each; every call is
// its own transaction, acknowledged when it returns.  For every record
// sent it prints one line,
//
//     <partition> TAB <offset> TAB <key> TAB <value>
//
// The connection comes from --url, else from the PG* environment variables
// (PGHOST, PGPORT, PGUSER, PGDATABASE, ...).  node-postgres sends
// parameterised queries as unnamed statements, which PgBouncer in
// transaction mode passes through as they are.
'use strict';

const { Pool } = require('pg');
const { parseOptions } = require('./options');

async function main() {
	const opt = parseOptions(process.argv.slice(2), {
		topic: null, count: 1000, batch: 100, keys: 16, prefix: 'node', url: null,
	}, ['topic']);
	const pool = new Pool({ connectionString: opt.url || undefined, max: 1 });
	try {
		for (let start = 1; start <= opt.count; start += opt.batch) {
			const values = [];
			const keys = [];
			for (let i = start; i < start + opt.batch && i <= opt.count; i++) {
				values.push(`${opt.prefix}-${i}`);
				keys.push(`key-${i % opt.keys}`);
			}
			// arrays of strings need no cast: pgq_send_batch takes them as
			// they come and stores each string's UTF-8 bytes (docs/drivers.md)
			const { rows } = await pool.query(
				'SELECT partition, msg_offset FROM pgq_send_batch($1, $2, $3)',
				[opt.topic, values, keys]);
			// one row per record, in input order; msg_offset is a bigint,
			// which node-postgres returns as a string (see worker.js)
			const out = rows.map((r, n) => `${r.partition}\t${r.msg_offset}\t${keys[n]}\t${values[n]}\n`);
			await write(out.join(''));
		}
	} finally {
		await pool.end();
	}
}

// Resolves once the text was handed to the operating system.
function write(text) {
	return new Promise((resolve, reject) => {
		process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
	});
}

main().catch((err) => {
	console.error(`producer: ${err.stack || err}`);
	process.exitCode = 1;
});
