// options.js: the examples' command-line options, "--name value" each.
'use strict';

// Returns a copy of defaults (names in camelCase, given as --kebab-case)
// with the options given on the command line; an option whose default is
// a number takes a number.  Exits with a message on an unknown or bad
// option, or when one named in required is missing.
function parseOptions(argv, defaults, required = []) {
	const opt = { ...defaults };
	const fail = (msg) => {
		const names = Object.keys(defaults).map((k) => `--${dashed(k)}`).join(' ');
		console.error(`${msg}\noptions: ${names}`);
		process.exit(2);
	};
	for (let i = 0; i < argv.length; i += 2) {
		const m = /^--([a-z-]+)$/.exec(argv[i]);
		const name = m && m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
		if (!m || !(name in defaults)) fail(`unknown option ${argv[i]}`);
		if (i + 1 >= argv.length) fail(`option ${argv[i]} needs a value`);
		const value = argv[i + 1];
		if (typeof defaults[name] === 'number') {
			if (!/^\d+$/.test(value)) fail(`option ${argv[i]} takes a number, not "${value}"`);
			opt[name] = Number(value);
		} else {
			opt[name] = value;
		}
	}
	for (const name of required) {
		if (opt[name] === undefined || opt[name] === null) fail(`option --${dashed(name)} is required`);
	}
	return opt;
}

function dashed(name) {
	return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

module.exports = { parseOptions };
