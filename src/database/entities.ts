import { AuditRecord } from '../audit/audit-record.entity';
import { AccessToken } from '../auth/access-token.entity';
import { StreamTicket } from '../auth/stream-ticket.entity';
import { AgentCommand } from '../cluster/agent-command.entity';
import { Agent } from '../cluster/agent.entity';
import { Cluster } from '../cluster/cluster.entity';
import { SigningKey } from '../cluster/signing-key.entity';
import { Package } from '../packages/package.entity';
import { Upgrade } from '../upgrades/upgrade.entity';
import { UpgradeStep } from '../upgrades/upgrade-step.entity';
import { EventSequence, ProgressEvent } from '../progress/progress-event.entity';

/** Every entity of every module: the DataSource and the migration generator read this list. */
export const ENTITIES = [
  AccessToken,
  StreamTicket,
  Cluster,
  SigningKey,
  Agent,
  AgentCommand,
  ProgressEvent,
  EventSequence,
  Package,
  Upgrade,
  UpgradeStep,
  AuditRecord,
];
