import { parseArgs } from 'node:util';
import { ReferenceAgent } from './agent';

/**
 * npm run agent -- --server URL --pairing-key KEY --home DIR [--busy-file FILE] [--seed PACKAGE]
 *   [--service-command CMD] [--reboot-command CMD]
 * Plain Node: no Nest. Stops cleanly (the product too) on SIGINT and SIGTERM.
 */
const usage =
  'usage: npm run agent -- --server URL --pairing-key KEY --home DIR [--busy-file FILE] [--seed PACKAGE.tar.gz]\n' +
  '  [--service-command "CMD"]   runs "CMD stop NAME" / "CMD start NAME" for an upgrade\'s stopServices (e.g. "sudo systemctl")\n' +
  '  [--reboot-command "CMD"]    runs CMD after an upgrade with rebootAfter succeeded (e.g. "sudo systemctl reboot")\n' +
  'Both are split on spaces and run without a shell.';
const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    'pairing-key': { type: 'string' },
    home: { type: 'string' },
    'busy-file': { type: 'string' },
    seed: { type: 'string' },
    'service-command': { type: 'string' },
    'reboot-command': { type: 'string' },
  },
});
const blank = (flag: 'service-command' | 'reboot-command') => values[flag] !== undefined && !values[flag]!.trim();
if (!values.server || !values.home || blank('service-command') || blank('reboot-command')) {
  console.error(usage);
  process.exit(2);
}
const agent = new ReferenceAgent({
  server: values.server.replace(/\/$/, ''),
  pairingKey: values['pairing-key'],
  home: values.home,
  busyFile: values['busy-file'],
  seedPackage: values.seed,
  serviceCommand: values['service-command'],
  rebootCommand: values['reboot-command'],
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void agent.stop().then(() => process.exit(0)));
}
agent.start().catch((error: Error) => {
  console.error(`agent stopped: ${error.message}`);
  process.exit(1);
});
