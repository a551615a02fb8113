/** One sample line of the Prometheus text format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: its `# TYPE`, `# HELP` and samples (`_bucket`, `_sum`, `_count` included). */
export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

/**
 * A parsed `/metrics` page. Parsing is strict: a line that is not a comment, a `# TYPE`/`# HELP`
 * or a well-formed sample of a declared family throws, naming the line — so a test that parses a
 * page also checks that Prometheus could scrape it.
 */
export class PromScrape {
  readonly families = new Map<string, PromFamily>();

  constructor(readonly text: string) {
    for (const [index, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      const fail = (why: string): never => {
        throw new Error(`metrics line ${index + 1} ${why}: ${line}`);
      };
      if (line.startsWith('#')) {
        const meta = new RegExp(`^# (TYPE|HELP) (${NAME}) ?(.*)$`).exec(line);
        if (!meta) continue;
        const family = this.family(meta[2]!);
        if (meta[1] === 'HELP') family.help = meta[3]!;
        else if (TYPES.has(meta[3]!)) family.type = meta[3]!;
        else fail('has an unknown type');
        continue;
      }
      const m = SAMPLE.exec(line) ?? fail('is not a sample');
      const name = m[1]!;
      // Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes `Nan`).
      const special = /^([+-]?)(inf|nan)$/i.exec(m[3]!);
      const value = special
        ? special[2]!.toLowerCase() === 'nan'
          ? NaN
          : special[1] === '-'
            ? -Infinity
            : Infinity
        : Number(m[3]);
      if (Number.isNaN(value) && !special) fail('has a value that is not a number');
      const labels: Record<string, string> = {};
      let rest = m[2] ?? '';
      while (rest !== '') {
        const l = LABEL.exec(rest) ?? fail('has malformed labels');
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        rest = rest.slice(l[0].length);
      }
      const family = this.familyOf(name) ?? fail('belongs to no declared family');
      family.samples.push({ name, labels, value });
    }
  }

  private family(name: string): PromFamily {
    let family = this.families.get(name);
    if (!family) {
      family = { name, type: '', help: '', samples: [] };
      this.families.set(name, family);
    }
    return family;
  }

  private familyOf(sample: string): PromFamily | undefined {
    const exact = this.families.get(sample);
    if (exact?.type) return exact;
    for (const [type, suffixes] of Object.entries(SUFFIXES)) {
      for (const suffix of suffixes) {
        if (suffix === '' || !sample.endsWith(suffix)) continue;
        const family = this.families.get(sample.slice(0, -suffix.length));
        if (family?.type === type) return family;
      }
    }
    return undefined;
  }

  /** Samples named `name` whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): PromSample[] {
    const family = this.familyOf(name);
    return (family?.samples ?? []).filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** The sum of the matching samples' values, or undefined when none matches. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.samples(name, labels);
    return found.length === 0 ? undefined : found.reduce((sum, s) => sum + s.value, 0);
  }
}

/** Fetches and parses `url` (a `/metrics` page). */
export async function scrapeMetrics(url: string): Promise<PromScrape> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain'))
    throw new Error(`GET ${url}: content-type ${type}, not the Prometheus text format`);
  return new PromScrape(await res.text());
}
