import type { Schemas } from './api';
import { table } from './output';

type Step = Schemas['StepDto'];
type Notice = Schemas['NoticeDto'];

/** A step as one line, the agents by name: "switchover  db-a2 takes over from db-a1". */
export function stepLine(step: Step, names: Map<string, string>): string {
  const name = (id: string | null) => (id ? (names.get(id) ?? id) : '?');
  switch (step.kind) {
    case 'upgrade':
      return `upgrade     ${name(step.agentId)}`;
    case 'switchover':
      return `switchover  ${name(step.agentId)} takes over from ${name(step.fromAgentId)}`;
    case 'switchback':
      return `switchback  ${name(step.agentId)} takes over again from ${name(step.fromAgentId)}`;
    case 'manual':
      return `manual      ${name(step.agentId)} (reinstall by hand: no remote upgrade)`;
    case 'rollback':
      return `rollback    ${name(step.agentId)} back to ${step.toVersion ?? 'no web apps'}`;
  }
}

/** The plan by batch, with its switchovers, then its warnings and refusals. */
export function planText(
  plan: Pick<Schemas['PreviewDto'], 'resolvedPolicy' | 'steps' | 'units' | 'batches' | 'warnings'> & {
    refusals?: Notice[];
  },
  names: Map<string, string>,
): string {
  const lines = [`policy ${plan.resolvedPolicy}: ${plan.units} unit(s) in ${plan.batches} batch(es)`];
  const batches = [...new Set(plan.steps.map((s) => s.batch))].sort((a, b) => a - b);
  for (const batch of batches) {
    lines.push(`batch ${batch + 1}`); // the API counts from 0
    for (const step of plan.steps.filter((s) => s.batch === batch)) lines.push(`  ${stepLine(step, names)}`);
  }
  for (const w of plan.warnings) lines.push(`warning ${w.code}: ${w.message}`);
  for (const r of plan.refusals ?? []) lines.push(`refused ${r.code}: ${r.message}`);
  return lines.join('\n');
}

/** A failure (required, actual) or an unknown (reason), as the server words them. */
interface PrerequisiteRow {
  agentName?: string;
  check?: string;
  required?: string;
  actual?: string;
  reason?: string;
}

/**
 * Prerequisite failures and unknowns ({ failures, warnings }: a PREREQUISITES_UNMET refusal's
 * details, or a preview's `prerequisites`) as one table, an agent per row.
 */
export function prerequisitesTable(result: unknown): string | undefined {
  const { failures = [], warnings = [] } = (result ?? {}) as {
    failures?: PrerequisiteRow[];
    warnings?: PrerequisiteRow[];
  };
  if (!Array.isArray(failures) || !Array.isArray(warnings) || failures.length + warnings.length === 0) return undefined;
  return table(
    ['AGENT', 'CHECK', 'REQUIRED', 'ACTUAL', 'RESULT'],
    [
      ...failures.map((f) => [f.agentName, f.check, f.required, f.actual, 'fails']),
      ...warnings.map((w) => [w.agentName, w.check, null, null, `not checked: ${w.reason}`]),
    ],
  );
}
