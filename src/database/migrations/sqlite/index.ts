import { Initial1795346128061 } from './1795346128061-Initial';
import { StreamTickets1795347929513 } from './1795347929513-StreamTickets';
import { Packages1795349806014 } from './1795349806014-Packages';
import { Upgrades1795357897136 } from './1795357897136-Upgrades';
import { VersionModel1796164184487 } from './1796164184487-VersionModel';
import { TokenExpiry1796174159207 } from './1796174159207-TokenExpiry';
import { ReportIndexes1796190000000 } from './1796190000000-ReportIndexes';
import { ClusterCountIndexes1796200000000 } from './1796200000000-ClusterCountIndexes';
import { Rollbacks1796250000000 } from './1796250000000-Rollbacks';
import { AgentLabels1796300000000 } from './1796300000000-AgentLabels';
import { MaintenanceWindows1796400000000 } from './1796400000000-MaintenanceWindows';
import { AuditTrail1796500000000 } from './1796500000000-AuditTrail';
import { SigningKeys1796600000000 } from './1796600000000-SigningKeys';

/** Applied in this order; add each generated migration here. */
export const SQLITE_MIGRATIONS = [
  Initial1795346128061,
  StreamTickets1795347929513,
  Packages1795349806014,
  Upgrades1795357897136,
  VersionModel1796164184487,
  TokenExpiry1796174159207,
  ReportIndexes1796190000000,
  ClusterCountIndexes1796200000000,
  Rollbacks1796250000000,
  AgentLabels1796300000000,
  MaintenanceWindows1796400000000,
  AuditTrail1796500000000,
  SigningKeys1796600000000,
];
