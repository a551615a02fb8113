import { parseArgs } from 'node:util';

import { loadBusConfig } from '@sluice/bus';
import type { Env } from '@sluice/core';

import { CliError } from './cli-error.js';

/** One flag: what `parseArgs` needs, and what `--help` says about it. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** The placeholder shown after a string flag in help (`--timeout DURATION`). */
  value?: string;
  /** One line for `--help`. */
  help: string;
}

/**
 * A command's whole face: its flags are parsed from here and its `--help` is printed from here,
 * so a flag cannot exist without being documented, nor be documented without existing.
 */
export interface CommandSpec {
  name: string;
  /** Positional arguments as shown in the synopsis (`RUN_ID`), empty when none. */
  args: string;
  /** The first line of help and of `sluice --help`. */
  summary: string;
  /** Paragraphs after the synopsis. */
  description: string;
  flags: Record<string, FlagSpec>;
  /** How many positionals the command takes. */
  positionals: { min: number; max: number };
}

/** `-s/--server`: every command that talks to NATS takes it, over `NATS_URL`. */
export const SERVER_FLAG: Record<string, FlagSpec> = {
  server: {
    type: 'string',
    short: 's',
    value: 'URL',
    help: 'NATS server(s), comma-separated (default: NATS_URL, else nats://127.0.0.1:4222)',
  },
};

export const JSON_FLAG: Record<string, FlagSpec> = {
  json: { type: 'boolean', default: false, help: 'print JSON instead of text' },
};

const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', help: 'show this help' };

function flagLabel(name: string, flag: FlagSpec): string {
  const long = `--${name}${flag.type === 'string' ? ` ${flag.value ?? 'VALUE'}` : ''}`;
  return flag.short ? `-${flag.short}, ${long}` : `    ${long}`;
}

/** The help text of a command, generated from its spec. */
export function usageOf(spec: CommandSpec): string {
  const flags = Object.entries({ ...spec.flags, help: HELP_FLAG });
  const labels = flags.map(([name, flag]) => flagLabel(name, flag));
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  const lines = flags.map(([, flag], i) => {
    const extra = flag.default !== undefined && flag.default !== false ? ` (default ${String(flag.default)})` : '';
    return `  ${labels[i]!.padEnd(width)}${flag.help}${flag.multiple ? ' (repeatable)' : ''}${extra}`;
  });
  return [
    `sluice ${spec.name}${spec.args ? ` ${spec.args}` : ''} [options]`,
    '',
    spec.summary,
    ...(spec.description ? ['', spec.description] : []),
    '',
    'Options:',
    ...lines,
  ].join('\n');
}

type ParsedValues = Record<string, string | boolean | string[] | undefined>;

/**
 * Parses `argv` against the spec (strict: an unknown flag or a missing value is an error that
 * names it), checks the number of positionals, and returns both.
 */
export function parseCommand<V extends ParsedValues = ParsedValues>(
  spec: CommandSpec,
  argv: string[],
): { values: V; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([name, f]) => [
      name,
      {
        type: f.type,
        ...(f.short ? { short: f.short } : {}),
        ...(f.multiple ? { multiple: true } : {}),
        ...(f.default !== undefined ? { default: f.default } : {}),
      },
    ]),
  );
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: options as never, allowPositionals: true, strict: true });
  } catch (error) {
    const [message] = (error as Error).message.split('\n');
    throw new CliError(`${message}\n\n${usageOf(spec)}`);
  }
  const n = parsed.positionals.length;
  if (n < spec.positionals.min || n > spec.positionals.max)
    throw new CliError(
      spec.positionals.max === 0
        ? `takes no arguments, got "${parsed.positionals.join(' ')}"\n\n${usageOf(spec)}`
        : `usage: sluice ${spec.name} ${spec.args} [options]`,
    );
  return { values: parsed.values as V, positionals: parsed.positionals };
}

/** The NATS settings of a command: the environment's, with `--server` over `NATS_URL`. */
export function busConfigOf(values: { server?: unknown }, env: Env) {
  const server = typeof values.server === 'string' ? values.server : undefined;
  return loadBusConfig(server ? { ...env, NATS_URL: server } : env, 'sluice-cli');
}
