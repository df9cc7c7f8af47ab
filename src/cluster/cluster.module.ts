import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ProgressModule } from '../progress/progress.module';
import { AgentCommandRepository } from './agent-command.repository';
import { AgentCommandsService } from './agent-commands.service';
import { AgentLiveness } from './agent-liveness';
import { AgentProtocolController } from './agent-protocol.controller';
import { AgentProtocolService } from './agent-protocol.service';
import { AgentRepository } from './agent.repository';
import { AgentUpdater } from './agent-updater';
import { AgentsController } from './agents.controller';
import { AgentsService } from './agents.service';
import { ClusterRepository } from './cluster.repository';
import { ClustersController } from './clusters.controller';
import { ClustersService } from './clusters.service';
import { SigningKeysController } from './signing-keys.controller';
import { SigningKeysService } from './signing-keys.service';

/** Clusters, agents, pairing, heartbeats and the command channel. */
@Module({
  imports: [AuthModule, ProgressModule],
  controllers: [ClustersController, SigningKeysController, AgentsController, AgentProtocolController],
  providers: [
    ClusterRepository,
    AgentRepository,
    AgentCommandRepository,
    AgentUpdater,
    ClustersService,
    AgentsService,
    AgentCommandsService,
    AgentProtocolService,
    AgentLiveness,
    SigningKeysService,
  ],
  exports: [
    ClustersService,
    AgentsService,
    AgentCommandsService,
    AgentLiveness,
    AgentProtocolService,
    SigningKeysService,
  ],
})
export class ClusterModule {}
