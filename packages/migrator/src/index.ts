export { connectTenant, roundTripsOf } from './connect.js';
export { sampleHostActivity } from './host-activity.js';
export { type JournalRead, JournalReadHints } from './journal-reads.js';
export {
  type FencedHolder,
  leaseApplicationName,
  type LockFence,
  type MigrationLease,
  parseLeaseApplicationName,
  staleHolderReason,
  taskLeaseKey,
} from './lock-fencing.js';
export { loadMigrationDir } from './migration-files.js';
export type { MigrationReport } from './migration-report.js';
export { TenantMigrator } from './tenant-migrator.js';
