#!/usr/bin/env node
import { runService } from '@sluice/telemetry';

import { loadPlannerConfig } from './config.js';
import { startPlannerService } from './planner-service.js';

await runService({ service: 'planner', loadConfig: loadPlannerConfig, start: startPlannerService });
