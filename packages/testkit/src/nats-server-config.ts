import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { type NatsServerHandle, startNatsServer } from './nats-server.js';

const run = promisify(execFile);

export interface ConfiguredNatsServer extends NatsServerHandle {
  /** Where the config file (and anything written with it) lives; removed by `dispose`. */
  configDir: string;
}

/**
 * Starts a private `nats-server` (as {@link startNatsServer}: loopback, free port, JetStream) with
 * a configuration file, for settings that have no command-line flag: authorization, TLS,
 * operator mode. The address and store flags override whatever the file says about them.
 */
export async function startNatsServerWithConfig(
  config: string,
  options: { binary?: string; args?: string[] } = {},
): Promise<ConfiguredNatsServer> {
  const configDir = await mkdtemp(path.join(tmpdir(), 'sluice-nats-conf-'));
  const file = path.join(configDir, 'server.conf');
  await writeFile(file, config, { mode: 0o600 });
  let server: NatsServerHandle;
  try {
    server = await startNatsServer({ ...options, args: ['-c', file, ...(options.args ?? [])] });
  } catch (error) {
    await rm(configDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: server.url,
    port: server.port,
    storeDir: server.storeDir,
    configDir,
    get pid() {
      return server.pid;
    },
    stop: () => server.stop(),
    kill: () => server.kill(),
    restart: () => server.restart(),
    async dispose() {
      await server.dispose();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

export interface TestCertificates {
  dir: string;
  /** CA that signed the server and client certificates. */
  caFile: string;
  /** Server certificate for 127.0.0.1 and localhost, and its key. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate signed by the CA, and its key. */
  clientCertFile: string;
  clientKeyFile: string;
  /** A second, unrelated CA and a client certificate it signed (what must be refused). */
  otherCaFile: string;
  otherClientCertFile: string;
  otherClientKeyFile: string;
  /** Removes the folder. */
  dispose(): Promise<void>;
}

/** Makes a throwaway CA, a server and a client certificate with `openssl` (and an unrelated CA). */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-certs-'));
  const f = (name: string): string => path.join(dir, name);
  const openssl = async (...args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir });
  };
  const ca = async (name: string): Promise<void> => {
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.pem`),
    );
  };
  const leaf = async (name: string, caName: string, ext: string): Promise<void> => {
    await writeFile(f(`${name}.ext`), ext);
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f(`${caName}.pem`),
      '-CAkey',
      f(`${caName}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  try {
    await ca('sluice-test-ca');
    await ca('other-ca');
    await leaf('server', 'sluice-test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    await leaf('client', 'sluice-test-ca', 'extendedKeyUsage=clientAuth\n');
    await leaf('other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: f('sluice-test-ca.pem'),
    serverCertFile: f('server.pem'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client.key'),
    otherCaFile: f('other-ca.pem'),
    otherClientCertFile: f('other-client.pem'),
    otherClientKeyFile: f('other-client.key'),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
