import type { Origin } from '../audit/origin';
import { AgentCommand } from '../cluster/agent-command.entity';
import { Agent } from '../cluster/agent.entity';
import { Cluster } from '../cluster/cluster.entity';
import { Package } from '../packages/package.entity';
import { DEFAULT_UPGRADE_OPTIONS } from '../policies/upgrade-options';
import { Upgrade } from '../upgrades/upgrade.entity';
import { plannedStep, UpgradeStep } from '../upgrades/upgrade-step.entity';

/**
 * Whole rows for the unit specs (issue 17), as the repositories would answer them: every column
 * set (`satisfies` keeps them complete when an entity gains one), overridden per case. Ids are
 * readable names, not UUIDs: the services do not check their shape.
 */

export const T0 = new Date('2026-03-01T10:00:00.000Z');

export function aCluster(overrides: Partial<Cluster> = {}): Cluster {
  return Object.assign(new Cluster(), {
    id: 'cluster-1',
    name: 'prod',
    product: 'acme-agent',
    targetVersion: null,
    targetPackageId: null,
    webappsTargetVersion: null,
    webappsTargetPackageId: null,
    defaultPolicy: 'backup-first',
    defaultOptions: DEFAULT_UPGRADE_OPTIONS,
    windows: null,
    requireSignedPackages: false,
    signingRevision: 0,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  } satisfies Cluster);
}

/** A paired, online, idle standalone agent on 10.2.0 that upgrades remotely. */
export function anAgent(overrides: Partial<Agent> = {}): Agent {
  return Object.assign(new Agent(), {
    id: 'agent-a',
    clusterId: 'cluster-1',
    name: 'alpha',
    address: 'alpha.example',
    role: 'standalone',
    failoverGroup: null,
    active: true,
    version: '10.2.0',
    webappsVersion: null,
    busy: false,
    facts: { os: 'linux', freeDiskMb: 10_000 },
    labels: {},
    windows: null,
    remoteUpgrade: true,
    autoUpgrade: true,
    pairingKeyHash: null,
    pairingKeyExpiresAt: null,
    pairingKeyUsedAt: T0,
    pairedAt: T0,
    lastSeenAt: T0,
    online: true,
    removalRequestedAt: null,
    upgradeId: null,
    hold: false,
    upgrading: false,
    lastUpgradeFailed: false,
    autoUpgradeBlocked: null,
    autoUpgradeRetryAt: null,
    autoUpgradeAttempts: 0,
    state: 'idle',
    versionStatus: 'latest',
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  } satisfies Agent);
}

/** An available full package 10.3.0 of the cluster's product. */
export function aPackage(overrides: Partial<Package> = {}): Package {
  return Object.assign(new Package(), {
    id: 'package-1',
    clusterId: 'cluster-1',
    product: 'acme-agent',
    version: '10.3.0',
    kind: 'full',
    status: 'available',
    sha256: 'a'.repeat(64),
    size: 1024,
    prerequisites: {},
    migration: null,
    notes: null,
    warnings: [],
    uploadedByTokenId: 'token-1',
    uploadedByName: 'ops',
    uploadedAt: T0,
    reservedByUpgradeId: null,
    completedAt: null,
    usedByUpgradeId: null,
    signature: null,
    signingKeyId: null,
    signingKeyName: null,
    ...overrides,
  } satisfies Package);
}

/** A running upgrade of all agents to package-1 (10.3.0), started at T0. */
export function anUpgrade(overrides: Partial<Upgrade> = {}): Upgrade {
  return Object.assign(new Upgrade(), {
    id: 'upgrade-1',
    clusterId: 'cluster-1',
    packageId: 'package-1',
    packageVersion: '10.3.0',
    packageKind: 'full',
    status: 'running',
    origin: 'request',
    target: { all: true },
    policy: 'default',
    resolvedPolicy: 'backup-first',
    options: DEFAULT_UPGRADE_OPTIONS,
    units: 1,
    failureLimit: 1,
    canaryPending: false,
    warnings: [],
    priorState: null,
    rollbackRound: 0,
    mixedSince: null,
    budgetFrom: T0,
    percent: 0,
    reason: null,
    createdByTokenId: 'token-1',
    createdByName: 'ops',
    scheduledAt: null,
    startedAt: T0,
    finishedAt: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  } satisfies Upgrade);
}

/** A pending upgrade step of agent-a in upgrade-1. */
export function aStep(overrides: Partial<UpgradeStep> = {}): UpgradeStep {
  const planned = plannedStep({
    id: 'step-a',
    upgradeId: 'upgrade-1',
    ordinal: 0,
    kind: 'upgrade',
    agentId: 'agent-a',
    fromAgentId: null,
    failoverGroup: null,
    unit: 0,
    round: 0,
    batch: 0,
    dependsOn: [],
    runWhen: 'succeeded',
    status: 'pending',
    note: null,
    endedAt: null,
    updatedAt: T0,
  });
  return Object.assign(planned, overrides);
}

/** A pending upgrade command of agent-a, queued for step-a of upgrade-1 (`step:<upgradeId>/<stepId>`). */
export function aCommand(overrides: Partial<AgentCommand> = {}): AgentCommand {
  return Object.assign(new AgentCommand(), {
    id: 'command-1',
    agentId: 'agent-a',
    clusterId: 'cluster-1',
    type: 'upgrade',
    payload: { upgradeId: 'upgrade-1', stepId: 'step-a', toVersion: '10.3.0' },
    reference: 'step:upgrade-1/step-a',
    status: 'pending',
    phase: null,
    percent: 0,
    message: null,
    resultVersion: null,
    error: null,
    notes: null,
    fetchedAt: null,
    createdAt: T0,
    updatedAt: T0,
    endedAt: null,
    ...overrides,
  } satisfies AgentCommand);
}

/** A person's call, for tests and benches that call services directly rather than through HTTP. */
export const TEST_ORIGIN: Origin = {
  actor: { kind: 'user', tokenId: '00000000-0000-4000-8000-00000000e2e0', name: 'test operator', role: 'admin' },
  requestId: null,
};
