#!/usr/bin/env node
import { runService } from '@sluice/telemetry';

import { loadReporterConfig } from './config.js';
import { startReporterService } from './reporter-service.js';

await runService({ service: 'reporter', loadConfig: loadReporterConfig, start: startReporterService });
