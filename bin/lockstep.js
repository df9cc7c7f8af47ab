#!/usr/bin/env node
// The `lockstep` command (package.json "bin"): runs the built CLI, dist/cli/main.js.
// `npm ci` builds it (the "prepare" script); after changing src/, `npm run build`.
const path = require('node:path');
const fs = require('node:fs');

const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('lockstep: not built yet; run `npm run build` in ' + path.join(__dirname, '..') + '\n');
  process.exit(1);
}
process.argv[1] = entry;
require(entry).main();
