import { RegistryUnavailableError } from './registry.js';

/**
 * The source text of each entry in a stream of JSON: the elements of a top-level array, or the
 * lines of NDJSON, told apart by the first character that is not white space. Only one entry is
 * held at a time, so a file of a million tenants is read in constant memory.
 */
export async function* jsonEntries(chunks: AsyncIterator<string>, source: string): AsyncGenerator<string> {
  let head = '';
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    head += next.value;
    if (head.trim() !== '') break;
  }
  head = head.replace(/^\uFEFF/, '');
  const all = prepend(head, chunks);
  yield* head.trimStart().startsWith('[') ? arrayElements(all, source) : lines(all);
}

async function* prepend(head: string, rest: AsyncIterator<string>): AsyncGenerator<string> {
  yield head;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

async function* lines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of chunks) {
    const parts = (carry + chunk).split('\n');
    carry = parts.pop()!;
    yield* parts;
  }
  yield carry;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPENERS = new Set([0x5b, 0x7b]);
const CLOSERS = new Set([0x5d, 0x7d]);

/** Elements of a streamed JSON array, found by tracking strings and nesting depth; each is parsed on its own later. */
async function* arrayElements(chunks: AsyncIterable<string>, source: string): AsyncGenerator<string> {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let ended = false;
  let carry = '';
  const broken = (why: string) => new RegistryUnavailableError(`${source} is not a valid JSON array: ${why}`);
  for await (const chunk of chunks) {
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (ended) {
        if (chunk[i]!.trim() !== '') throw broken('text after the closing bracket');
      } else if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
      } else if (c === QUOTE) {
        inString = true;
      } else if (OPENERS.has(c)) {
        depth += 1;
        if (depth === 1) from = i + 1;
      } else if (CLOSERS.has(c)) {
        depth -= 1;
        if (depth === 0) {
          yield carry + chunk.slice(from, i);
          carry = '';
          ended = true;
        }
      } else if (c === COMMA && depth === 1) {
        yield carry + chunk.slice(from, i);
        carry = '';
        from = i + 1;
      }
    }
    if (depth > 0) carry += chunk.slice(from);
  }
  if (!ended) throw broken('it ends before the closing bracket');
}
