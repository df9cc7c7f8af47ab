// The sample product the reference agent supervises in tests and in the demo: it reports the
// version it was installed as (its manifest) in a health file, and runs until it is stopped.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'manifest.json'), 'utf8'));
const healthFile = process.env.LOCKSTEP_PRODUCT_HEALTH;
const write = (value) => {
  if (!healthFile) return;
  fs.writeFileSync(`${healthFile}.tmp`, JSON.stringify(value));
  fs.renameSync(`${healthFile}.tmp`, healthFile);
};
write({ version: manifest.version, pid: process.pid, startedAt: new Date().toISOString() });
const alive = setInterval(() => undefined, 60_000);
process.on('SIGTERM', () => {
  clearInterval(alive);
  try {
    fs.rmSync(healthFile, { force: true });
  } finally {
    process.exit(0);
  }
});
