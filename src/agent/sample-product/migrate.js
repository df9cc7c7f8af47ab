// The sample product's data migration, run by the agent as `node migrate.js <dataDir>`: brings
// data/records.json to the schema of this version. A data/FAIL_MIGRATION file makes it fail half
// way (after it changed the data), to show that a rollback restores the data as it was.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dataDir = process.argv[2];
const version = JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.json'), 'utf8')).version;
const file = path.join(dataDir, 'records.json');
const data = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { schema: 1, records: [] };
data.schema = version;
data.records = data.records.map((r) => ({ ...r, migratedTo: version }));
fs.writeFileSync(file, JSON.stringify(data, null, 2));
// data/SLOW_MIGRATION holds the migration here for a minute, with the data half changed: tests kill
// the agent at this moment to show that a restart undoes the upgrade.
if (fs.existsSync(path.join(dataDir, 'SLOW_MIGRATION'))) setTimeout(() => console.log('slow migration done'), 60_000);
else if (fs.existsSync(path.join(dataDir, 'FAIL_MIGRATION')) || process.env.LOCKSTEP_FAIL_MIGRATION === '1') {
  console.error(`migration to ${version} failed: FAIL_MIGRATION is set`);
  process.exit(3);
}
console.log(`migrated ${data.records.length} records to ${version}`);
