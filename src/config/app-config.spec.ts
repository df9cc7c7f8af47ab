import * as path from 'node:path';
import { ConfigError, loadConfig } from './app-config';

describe('loadConfig', () => {
  it('works out of the box with documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      database: { type: 'sqlite', file: path.resolve('data/lockstep.sqlite') },
      dataDir: path.resolve('data'),
      adminToken: undefined,
      maxPackageBytes: 4 * 1024 ** 3,
      heartbeatTimeoutS: 30,
      agentPollS: undefined,
      pairingKeyTtlS: 86400,
      logLevel: 'log',
    });
  });

  it('switches to PostgreSQL on a postgres:// DATABASE_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@db:5432/lockstep' }).database).toEqual({
      type: 'postgres',
      url: 'postgres://u@db:5432/lockstep',
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 8080, database: { type: 'sqlite' } });
  });

  it.each([
    ['PORT', 'abc', /^PORT must be a whole number from 1 to 65535 \(got "abc"\)$/],
    ['PORT', '70000', /^PORT must be a whole number from 1 to 65535/],
    ['DATABASE_URL', 'mysql://x', /^DATABASE_URL must be a postgres:\/\//],
    ['LOCKSTEP_ADMIN_TOKEN', 'short', /^LOCKSTEP_ADMIN_TOKEN must be at least 20 characters/],
    ['MAX_PACKAGE_BYTES', '4GB', /^MAX_PACKAGE_BYTES must be a whole number of bytes/],
    ['HEARTBEAT_TIMEOUT_S', '1', /^HEARTBEAT_TIMEOUT_S must be a whole number of seconds from 5/],
    ['AGENT_POLL_S', '0', /^AGENT_POLL_S must be a whole number of seconds from 1 to 3600/],
    [
      'AGENT_POLL_S',
      '30',
      /^AGENT_POLL_S=30 leaves no room for two missed heartbeats before an agent is offline: HEARTBEAT_TIMEOUT_S \(30, the default\) must be at least 3 x AGENT_POLL_S = 90/,
    ],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL must be one of: fatal, error, warn, log, debug, verbose/],
  ])('refuses %s=%s, naming the variable and what it accepts', (name, value, expected) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toHaveLength(1);
    expect((caught as ConfigError).problems[0]).toMatch(expected);
  });

  it('takes AGENT_POLL_S when HEARTBEAT_TIMEOUT_S leaves room for two missed heartbeats', () => {
    expect(loadConfig({ AGENT_POLL_S: '10' })).toMatchObject({ agentPollS: 10, heartbeatTimeoutS: 30 });
    expect(loadConfig({ AGENT_POLL_S: '30', HEARTBEAT_TIMEOUT_S: '90' })).toMatchObject({
      agentPollS: 30,
      heartbeatTimeoutS: 90,
    });
    expect(() => loadConfig({ AGENT_POLL_S: '30', HEARTBEAT_TIMEOUT_S: '89' })).toThrow(
      /HEARTBEAT_TIMEOUT_S \(89\) must be at least 3 x AGENT_POLL_S = 90; raise HEARTBEAT_TIMEOUT_S or lower AGENT_POLL_S/,
    );
  });

  it('reports every bad variable, one problem each', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'y' })).toThrow(ConfigError);
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'y' });
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.split(' ')[0]).sort()).toEqual(['LOG_LEVEL', 'PORT']);
    }
  });
});
