import { ApiProperty } from '@nestjs/swagger';
import { STEP_KINDS, type StepKind } from '../../policies/planner';
import { UPGRADE_STATUSES, type UpgradeStatus } from '../upgrade.entity';
import { STEP_STATUSES, WAIT_REASONS, type StepStatus, type WaitReason } from '../upgrade-step.entity';

/** The data of the events UpgradeWriter appends (EventDataMap in src/progress/event-map.ts). */

/** An `upgrade.status` event's data (and an upgrade stream's `event: end`): the upgrade moved. */
export class UpgradeStatusEventData {
  @ApiProperty({ format: 'uuid' }) upgradeId: string;
  @ApiProperty({ enum: UPGRADE_STATUSES, enumName: 'UpgradeStatus' }) status: UpgradeStatus;
  @ApiProperty() percent: number;
  @ApiProperty({ type: String, nullable: true, description: 'Why it paused, failed or was cancelled.' })
  reason: string | null;
  @ApiProperty() packageVersion: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) scheduledAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) startedAt: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description: 'Set once its status is final and no step runs; a retry clears it.',
  })
  finishedAt: string | null;
}

/** A `task.progress` event's data: one step moved. */
export class TaskProgressEventData {
  @ApiProperty({ format: 'uuid' }) upgradeId: string;
  @ApiProperty({ format: 'uuid' }) stepId: string;
  @ApiProperty({ enum: STEP_KINDS }) kind: StepKind;
  @ApiProperty({ format: 'uuid' }) agentId: string;
  @ApiProperty({ type: String, nullable: true }) failoverGroup: string | null;
  @ApiProperty({ enum: STEP_STATUSES, enumName: 'StepStatus' }) status: StepStatus;
  // OpenAPI 3.0: a nullable enum lists null among its values, or null fails it.
  @ApiProperty({ type: String, nullable: true, enum: [...WAIT_REASONS, null] }) waitingFor: WaitReason | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description: 'Waiting for window: when the maintenance window it waits for opens.',
  })
  windowOpensAt: string | null;
  @ApiProperty({ type: String, nullable: true }) phase: string | null;
  @ApiProperty() percent: number;
  @ApiProperty() attempts: number;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty({ type: String, nullable: true }) message: string | null;
  @ApiProperty({ type: [String] }) agentNotes: string[];
  @ApiProperty({ description: "The upgrade's percent after this step's change." }) upgradePercent: number;
}

/** A `pair.switchover` event's data: a pair member took over from the other. */
export class PairSwitchoverEventData {
  @ApiProperty({ format: 'uuid' }) upgradeId: string;
  @ApiProperty({ format: 'uuid' }) stepId: string;
  @ApiProperty({ enum: STEP_KINDS }) kind: StepKind;
  @ApiProperty({ type: String, nullable: true }) failoverGroup: string | null;
  @ApiProperty({ format: 'uuid' }) activeAgentId: string;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) standbyAgentId: string | null;
}

declare module '../../progress/event-map' {
  interface EventDataMap {
    'upgrade.status': UpgradeStatusEventData;
    'task.progress': TaskProgressEventData;
    'pair.switchover': PairSwitchoverEventData;
  }
}
