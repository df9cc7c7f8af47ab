import { parseArgs } from 'node:util';
import { ReferenceAgent } from './agent';

/**
 * npm run agent -- --server URL --pairing-key KEY --home DIR [--busy-file FILE] [--seed PACKAGE]
 * Plain Node: no Nest. Stops cleanly (the product too) on SIGINT and SIGTERM.
 */
const usage = 'usage: npm run agent -- --server URL --pairing-key KEY --home DIR [--busy-file FILE] [--seed PACKAGE.tar.gz]';
const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    'pairing-key': { type: 'string' },
    home: { type: 'string' },
    'busy-file': { type: 'string' },
    seed: { type: 'string' },
  },
});
if (!values.server || !values.home) {
  console.error(usage);
  process.exit(2);
}
const agent = new ReferenceAgent({ server: values.server.replace(/\/$/, ''), pairingKey: values['pairing-key'], home: values.home, busyFile: values['busy-file'], seedPackage: values.seed });
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void agent.stop().then(() => process.exit(0)));
}
agent.start().catch((error: Error) => {
  console.error(`agent stopped: ${error.message}`);
  process.exit(1);
});
