import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';

/**
 * Asks a NATS server directly how it takes our TLS settings, and returns the TLS error code it
 * answers with (`ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, ...) or undefined if it accepts them.
 *
 * Why: with TLS 1.3 a server that refuses the client certificate says so only after the
 * handshake, and the NATS client then sees a silent close and waits for its connect timeout.
 * Called only after a first connection timed out, to name the real problem.
 */
export async function probeNatsTls(
  server: string,
  settings: { caFile?: string; certFile?: string; keyFile?: string },
  timeoutMs: number,
): Promise<string | undefined> {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `nats://${server}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 4222);
  const [ca, cert, key] = await Promise.all(
    [settings.caFile, settings.certFile, settings.keyFile].map(async (f) => (f ? readFile(f) : undefined)),
  );
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    let secure: tls.TLSSocket | undefined;
    const done = (code: string | undefined): void => {
      clearTimeout(timer);
      secure?.destroy();
      socket.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code));
    let info = '';
    const onInfo = (chunk: Buffer): void => {
      info += chunk.toString('latin1');
      if (!info.includes('\r\n')) return;
      socket.off('data', onInfo);
      secure = tls.connect({
        socket,
        host,
        ...(net.isIP(host) ? {} : { servername: host }),
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
      });
      secure.once('secureConnect', () => secure?.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n'));
      // Any answer (PONG, or -ERR for credentials) means TLS itself was accepted.
      secure.once('data', () => done(undefined));
      secure.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'TLS_ERROR'));
      secure.once('close', () => done('ECONNRESET'));
    };
    socket.on('data', onInfo);
  });
}
