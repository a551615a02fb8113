export { connectTenant } from './connect.js';
export { loadMigrationDir } from './migration-files.js';
export { type MigrationReport, TenantMigrator } from './tenant-migrator.js';
