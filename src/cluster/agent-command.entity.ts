import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';

import type { CommandType } from '../protocol/agent-protocol';

export { COMMAND_TYPES, REPORTED_ENDS, type CommandType, type ReportedEnd } from '../protocol/agent-protocol';

export const COMMAND_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'rolled-back', 'cancelled'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];
export const ENDED_COMMAND_STATUSES: readonly CommandStatus[] = ['succeeded', 'failed', 'rolled-back', 'cancelled'];

/**
 * One command in an agent's queue. Pending commands ride on every heartbeat answer until the agent
 * reports on them; reports move it to running and then to an end.
 */
@Entity('agent_commands')
@Index('idx_agent_commands_agent_status', ['agentId', 'status'])
@Index('idx_agent_commands_reference', ['reference'])
export class AgentCommand {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  agentId: string;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 16 })
  type: CommandType;

  /** What the agent needs to run it (package, phases, options...), sent as is. */
  @JsonColumn()
  payload: Record<string, unknown>;

  /** Who asked for it, e.g. the upgrade step it carries out, so reports find their way back. */
  @Column({ type: 'varchar', length: 80, nullable: true })
  reference: string | null;

  @Column({ type: 'varchar', length: 16 })
  status: CommandStatus;

  @Column({ type: 'varchar', length: 32, nullable: true })
  phase: string | null;

  @Column({ type: 'integer', default: 0 })
  percent: number;

  @Column({ type: 'varchar', length: 500, nullable: true })
  message: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  resultVersion: string | null;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  error: string | null;

  /** What the agent reported it did not apply, or wants the operator to know, with its end. */
  @JsonColumn({ nullable: true })
  notes: string[] | null;

  /** When the agent first received it with a heartbeat answer; until then it never ran. */
  @TimestampColumn({ nullable: true })
  fetchedAt: Date | null;

  @TimestampColumn()
  createdAt: Date;

  @TimestampColumn()
  updatedAt: Date;

  @TimestampColumn({ nullable: true })
  endedAt: Date | null;
}
