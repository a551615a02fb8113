export { loadPlannerConfig, type PlannerConfig } from './config.js';
export { type PlannerService, startPlannerService } from './planner-service.js';
