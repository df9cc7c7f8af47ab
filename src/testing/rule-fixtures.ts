import type { RuleAgent, RuleStep } from '../upgrades/step-rules';

/**
 * What the executor's pure rules (src/upgrades/step-rules.ts) are given, for their table tests:
 * an online, idle, paired agent on 1.0.0 serving alone, and a pending upgrade step of one.
 */
export const ruleAgent = (id: string, over: Partial<RuleAgent> = {}): RuleAgent => ({
  id,
  name: id,
  paired: true,
  online: true,
  busy: false,
  version: '1.0.0',
  webappsVersion: null,
  lastUpgradeFailed: false,
  facts: { os: 'linux', freeDiskMb: 1000 },
  active: true,
  peerId: null,
  ...over,
});

export const ruleStep = (id: string, over: Partial<RuleStep> = {}): RuleStep => ({
  id,
  kind: 'upgrade',
  agentId: id,
  unit: 0,
  batch: 0,
  dependsOn: [],
  runWhen: 'succeeded',
  status: 'pending',
  waitingFor: null,
  waitingSince: null,
  phase: null,
  phaseStartedAt: null,
  attempts: 0,
  commandId: null,
  ...over,
});

/** The agents by id, as decide takes them. */
export const ruleAgents = (...list: RuleAgent[]): Map<string, RuleAgent> => new Map(list.map((a) => [a.id, a]));
