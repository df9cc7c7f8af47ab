import { ReferenceAgent, type AgentOptions } from './agent';
import { commandLineOrExit, fromInvocationDir, parseCommandLine, type CommandLine } from './cli';

export const AGENT_USAGE = `usage: npm run agent -- --server URL --home DIR [--pairing-key KEY] [options]
Runs the reference agent: pairs once with KEY (the token is kept in DIR/agent.json), then
heartbeats, carries out the commands the server gives and reports on them.

  --server URL              Lockstep's address, e.g. http://lockstep:8080 (required)
  --home DIR                the agent's home: versions, data, backups, its token (required)
  --pairing-key KEY         the one-time key from registering the agent (needed until it paired)
  --seed PACKAGE.tar.gz     a package to install as the first version on a new host
  --busy-file FILE          the agent is busy while FILE exists
  --service-command "CMD"   runs "CMD stop NAME" / "CMD start NAME" for an upgrade's stopServices
                            (e.g. "sudo systemctl")
  --reboot-command "CMD"    runs CMD after an upgrade with rebootAfter succeeded
                            (e.g. "sudo systemctl reboot")
  -h, --help                this text
  --version                 the version of Lockstep
Both commands are split on spaces and run without a shell. SIGINT or SIGTERM stops the agent and
its product cleanly.`;

/** The agent's command line, read without side effects (see cli.ts); relative paths from `cwd`. */
export function parseAgentArgs(
  argv: string[],
  cwd: string = process.env.INIT_CWD || process.cwd(),
): CommandLine<Omit<AgentOptions, 'log'>> {
  return parseCommandLine(
    argv,
    {
      server: { type: 'string' },
      'pairing-key': { type: 'string' },
      home: { type: 'string' },
      'busy-file': { type: 'string' },
      seed: { type: 'string' },
      'service-command': { type: 'string' },
      'reboot-command': { type: 'string' },
    },
    (values) => {
      const text = (flag: string) => values[flag] as string | undefined;
      const server = text('server');
      const home = text('home');
      if (!server) return 'missing --server URL';
      if (!home) return 'missing --home DIR';
      let url: URL | null = null;
      try {
        url = new URL(server);
      } catch {
        // refused below
      }
      if (!url || !['http:', 'https:'].includes(url.protocol))
        return `--server must be an http:// or https:// address (got "${server}")`;
      for (const flag of ['service-command', 'reboot-command', 'pairing-key', 'busy-file', 'seed']) {
        if (text(flag) !== undefined && !text(flag)!.trim()) return `--${flag} must not be empty`;
      }
      return {
        server: server.replace(/\/+$/, ''),
        pairingKey: text('pairing-key'),
        // Paths are the user's, from the folder npm run was typed in (not the clone's root).
        home: fromInvocationDir(home, cwd),
        busyFile: text('busy-file') === undefined ? undefined : fromInvocationDir(text('busy-file')!, cwd),
        seedPackage: text('seed') === undefined ? undefined : fromInvocationDir(text('seed')!, cwd),
        serviceCommand: text('service-command'),
        rebootCommand: text('reboot-command'),
      };
    },
  );
}

if (require.main === module) {
  // Plain Node: no Nest.
  const agent = new ReferenceAgent(
    commandLineOrExit('lockstep agent', AGENT_USAGE, parseAgentArgs(process.argv.slice(2))),
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void agent.stop().then(() => process.exit(0)));
  }
  agent.start().catch((error: Error) => {
    console.error(`agent stopped: ${error.message}`);
    process.exit(1);
  });
}
