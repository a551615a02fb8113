/**
 * How the lockless first read asks for a tenant's journal: `plain` is a `SELECT *` of the table,
 * the cheapest read for the server, but an error where the table does not exist yet (an aborted
 * transaction and a line in the server's log); `probe` reaches the table through `to_regclass`
 * and `table_to_xml`, which never raises, at about a third more server CPU per up-to-date tenant
 * (connect, read, close; measured by `packages/migrator/bench/journal-read-cost.ts`).
 */
export type JournalRead = 'plain' | 'probe';

/**
 * Which read to use, learnt per host: the probe, until it finds a journal on the host; then plain
 * reads, until one meets a database without a journal (one error), and the probe again. A fleet's
 * first run raises no error; every later run reads plainly after its first tenant per host. The
 * reads the host limiter judges latency on stay of one kind while the fleet does: no plain error
 * (answered faster than any read) becomes a host's baseline. One instance per process (the
 * executor's), holding one entry per host where it last found a journal.
 */
export class JournalReadHints {
  private readonly plain = new Set<string>();

  choose(host: string): JournalRead {
    return this.plain.has(host) ? 'plain' : 'probe';
  }

  /** What a read on `host` found. */
  observe(host: string, present: boolean): void {
    if (present) this.plain.add(host);
    else this.plain.delete(host);
  }
}
