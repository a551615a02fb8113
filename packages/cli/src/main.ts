#!/usr/bin/env node
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), process.env);
process.exitCode = code;
// The answer is printed (stdout and stderr are synchronous on pipes, files and terminals here) and
// the bus closed. Whatever the NATS client still holds after that — a consumer re-created for a
// node that went away, a reconnect timer — must not keep the command alive: under chaos a `sluice
// pause` that had answered in 0.4 s exited two minutes later. Exit once nothing of ours is left
// to do; the timer does not itself keep the process alive.
setTimeout(() => process.exit(code), 1_000).unref();
