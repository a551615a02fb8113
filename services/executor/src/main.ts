#!/usr/bin/env node
import { runService } from '@sluice/telemetry';

import { loadExecutorConfig } from './config.js';
import { startExecutorService } from './executor-service.js';

await runService({ service: 'executor', loadConfig: loadExecutorConfig, start: startExecutorService });
