#!/usr/bin/env node
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), process.env);
process.exitCode = code;
// The answer is printed (stdout and stderr are synchronous on pipes, files and terminals here) and
// the bus closed. Whatever a NATS client might still hold after that must not keep the command
// alive: a connection left open once made a `sluice pause` that answered in 5 s live two minutes
// (fixed at its source in connectBus; this is the backstop). Exit once nothing of ours is left to
// do; the timer does not itself keep the process alive.
setTimeout(() => process.exit(code), 1_000).unref();
