export { loadReporterConfig, type ReporterConfig } from './config.js';
export { type ReporterService, startReporterService } from './reporter-service.js';
