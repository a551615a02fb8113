import { execFile } from 'node:child_process';
import { open, rename } from 'node:fs/promises';
import { promisify } from 'node:util';

export interface FifoFile {
  path: string;
  /** Bytes handed to readers so far. */
  served: () => number;
  close: () => Promise<void>;
}

const CHUNK = 16 * 1024;
const mkfifo = (path: string) => promisify(execFile)('mkfifo', [path]);

/**
 * A named pipe that serves `content` to every reader that opens it, writing only as fast as the
 * reader reads (a pipe holds 64 KiB). The byte count then tells how much of the file a reader had
 * pulled when it produced its first row: a reader that loads the whole file first cannot hide.
 */
export async function serveThroughFifo(path: string, content: string): Promise<FifoFile> {
  const spare = `${path}.next`;
  await mkfifo(path);
  await mkfifo(spare);
  const bytes = Buffer.from(content);
  let served = 0;
  let closing = false;
  const writer = (async () => {
    for (;;) {
      // Blocks (in the thread pool) until a reader opens the pipe.
      const handle = await open(path, 'w');
      if (closing) {
        await handle.close();
        return;
      }
      // Before any byte flows, the path moves on to a fresh pipe: a reader that stops early and the
      // next reader never share one.
      await rename(spare, path);
      try {
        for (let i = 0; i < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, i, Math.min(CHUNK, bytes.length - i));
          served += bytesWritten;
          i += bytesWritten;
        }
      } catch {
        // EPIPE: the reader stopped early.
      } finally {
        await handle.close();
      }
      await mkfifo(spare);
    }
  })();
  return {
    path,
    served: () => served,
    close: async () => {
      closing = true;
      // Opening for reading releases the writer blocked in open().
      const unblock = await open(path, 'r');
      await unblock.close();
      await writer;
    },
  };
}
