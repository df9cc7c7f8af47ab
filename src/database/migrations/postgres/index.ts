import { Initial1795346133215 } from './1795346133215-Initial';
import { StreamTickets1795347938161 } from './1795347938161-StreamTickets';
import { Packages1795349815524 } from './1795349815524-Packages';
import { Upgrades1795357903849 } from './1795357903849-Upgrades';
import { VersionModel1796164199781 } from './1796164199781-VersionModel';
import { TokenExpiry1796174168207 } from './1796174168207-TokenExpiry';
import { ReportIndexes1796190000000 } from './1796190000000-ReportIndexes';
import { ClusterCountIndexes1796200000000 } from './1796200000000-ClusterCountIndexes';
import { Rollbacks1796250000000 } from './1796250000000-Rollbacks';
import { AgentLabels1796300000000 } from './1796300000000-AgentLabels';
import { MaintenanceWindows1796400000000 } from './1796400000000-MaintenanceWindows';
import { AuditTrail1796500000000 } from './1796500000000-AuditTrail';
import { SigningKeys1796600000000 } from './1796600000000-SigningKeys';

/** Applied in this order; add each generated migration here. */
export const POSTGRES_MIGRATIONS = [
  Initial1795346133215,
  StreamTickets1795347938161,
  Packages1795349815524,
  Upgrades1795357903849,
  VersionModel1796164199781,
  TokenExpiry1796174168207,
  ReportIndexes1796190000000,
  ClusterCountIndexes1796200000000,
  Rollbacks1796250000000,
  AgentLabels1796300000000,
  MaintenanceWindows1796400000000,
  AuditTrail1796500000000,
  SigningKeys1796600000000,
];
