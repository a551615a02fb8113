import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
} from '@nats-io/jwt';
import { createUser as createUserNKey } from '@nats-io/nkeys';
import { type Env } from '@sluice/core';
import { createLogger } from '@sluice/telemetry';
import {
  type ConfiguredNatsServer,
  createTestCertificates,
  startNatsServer,
  startNatsServerWithConfig,
  type TestCertificates,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { loadBusConfig } from '../src/config.js';
import { ensureTopology } from '../src/topology.js';

const logger = createLogger({ service: 'nats-auth-test', level: 'silent' });
/** A secret no test output may contain: long and random, so a match is never a coincidence. */
const secret = (): string => `S3cr3t-${randomBytes(12).toString('hex')}`;

let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'sluice-nats-auth-'));
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const p = path.join(workDir, name);
  await writeFile(p, content, { mode: 0o600 });
  return p;
}

/** Connects as a service would (config from env), proves JetStream works, closes. */
async function connectAndUse(env: Env): Promise<void> {
  const bus: Bus = await connectBus(loadBusConfig(env, 'nats-auth-test'), logger);
  try {
    await ensureTopology(bus.jsm);
    const ack = await bus.publish('sluice.outcomes.auth-check', { ok: true });
    expect(ack.seq).toBeGreaterThan(0);
  } finally {
    await bus.close();
  }
}

/** Expects the connection to fail fast, with a message that matches and holds none of the secrets. */
async function expectRefused(env: Env, message: RegExp, secrets: string[] = []): Promise<string> {
  const started = Date.now();
  let error: unknown;
  try {
    await connectAndUse(env);
  } catch (e) {
    error = e;
  }
  expect(error, 'the connection should have been refused').toBeInstanceOf(Error);
  let text = JSON.stringify(error);
  for (let e: unknown = error; e instanceof Error; e = e.cause) text += `\n${e.message}\n${e.stack ?? ''}`;
  expect((error as Error).message).toMatch(message);
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text).not.toContain(encodeURIComponent(s));
    expect(text).not.toContain(Buffer.from(s).toString('base64'));
  }
  // Fails at the first try rather than retrying until the connect timeout.
  expect(Date.now() - started).toBeLessThan(4_000);
  return (error as Error).message;
}

describe('user and password', () => {
  let nats: ConfiguredNatsServer;
  const pass = secret();
  beforeAll(async () => {
    nats = await startNatsServerWithConfig(`authorization { users: [ { user: sluice, password: "${pass}" } ] }\n`);
  });
  afterAll(async () => nats?.dispose());

  it('connects with NATS_USER/NATS_PASSWORD (or its alias NATS_PASS) and uses JetStream', async () => {
    await connectAndUse({ NATS_URL: nats.url, NATS_USER: 'sluice', NATS_PASSWORD: pass });
    await connectAndUse({ NATS_URL: nats.url, NATS_USER: 'sluice', NATS_PASS: pass });
  });

  it('refuses a wrong password at once, naming the user and the variables, never the passwords', async () => {
    const wrong = secret();
    await expectRefused(
      { NATS_URL: nats.url, NATS_USER: 'sluice', NATS_PASS: wrong },
      /refused user "sluice" \(NATS_USER\/NATS_PASSWORD\)/,
      [wrong, pass],
    );
  });

  it('refuses a client without credentials and says which variables to set', async () => {
    await expectRefused(
      { NATS_URL: nats.url },
      /refused no credentials \(set NATS_USER\/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS\)/,
    );
  });
});

describe('token', () => {
  let nats: ConfiguredNatsServer;
  const token = secret();
  beforeAll(async () => {
    nats = await startNatsServerWithConfig(`authorization { token: "${token}" }\n`);
  });
  afterAll(async () => nats?.dispose());

  it('connects with NATS_TOKEN', async () => {
    await connectAndUse({ NATS_URL: nats.url, NATS_TOKEN: token });
  });

  it('refuses a wrong token without showing either token', async () => {
    const wrong = secret();
    await expectRefused({ NATS_URL: nats.url, NATS_TOKEN: wrong }, /refused the token in NATS_TOKEN/, [wrong, token]);
  });
});

describe('NKey seed file', () => {
  let nats: ConfiguredNatsServer;
  const user = createUserNKey();
  const seed = new TextDecoder().decode(user.getSeed());
  beforeAll(async () => {
    nats = await startNatsServerWithConfig(`authorization { users: [ { nkey: ${user.getPublicKey()} } ] }\n`);
  });
  afterAll(async () => nats?.dispose());

  it('connects with NATS_NKEY pointing at a seed file (as nsc writes it, with comments around)', async () => {
    const seedFile = await file('user.nk', `# sluice service user\n${seed}\n`);
    await connectAndUse({ NATS_URL: nats.url, NATS_NKEY: seedFile });
  });

  it("refuses another user's seed, naming the file, not the seed", async () => {
    const other = new TextDecoder().decode(createUserNKey().getSeed());
    const seedFile = await file('other.nk', `${other}\n`);
    const message = await expectRefused(
      { NATS_URL: nats.url, NATS_NKEY: seedFile },
      /refused the NKey seed in .*other\.nk \(NATS_NKEY\)/,
      [other, seed],
    );
    expect(message).not.toContain(other.slice(0, 20));
  });

  it('stops before connecting when the file is missing or holds no seed', async () => {
    await expectRefused(
      { NATS_URL: nats.url, NATS_NKEY: path.join(workDir, 'absent.nk') },
      /NATS_NKEY: cannot read .*absent\.nk \(ENOENT\)/,
    );
    const garbage = await file('garbage.nk', 'not a seed\n');
    await expectRefused({ NATS_URL: nats.url, NATS_NKEY: garbage }, /NATS_NKEY: .*garbage\.nk holds no user NKey seed/);
  });
});

describe('creds file (operator, account and user JWTs)', () => {
  let nats: ConfiguredNatsServer;
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const unlimited = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
    mem_storage: -1,
    disk_storage: -1,
    streams: -1,
    consumer: -1,
  };

  beforeAll(async () => {
    const operatorJwt = await encodeOperator('sluice-test-operator', operator, {
      system_account: system.getPublicKey(),
    });
    const accountJwt = await encodeAccount('sluice', account, { limits: unlimited }, { signer: operator });
    const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
    const operatorFile = await file('operator.jwt', operatorJwt);
    nats = await startNatsServerWithConfig(
      [
        `operator: ${operatorFile}`,
        `system_account: ${system.getPublicKey()}`,
        'resolver: MEMORY',
        `resolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt}\n  ${system.getPublicKey()}: ${systemJwt}\n}`,
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => nats?.dispose());

  async function credsFor(
    name: string,
    signer = account,
    claims: { exp?: number } = {},
  ): Promise<{ path: string; seed: string }> {
    const user = createUser();
    const jwt = await encodeUser(name, user, signer, {}, { exp: claims.exp });
    return { path: await file(`${name}.creds`, fmtCreds(jwt, user)), seed: new TextDecoder().decode(user.getSeed()) };
  }

  it('connects with NATS_CREDS and uses JetStream in its account', async () => {
    const { path: creds } = await credsFor('svc');
    await connectAndUse({ NATS_URL: nats.url, NATS_CREDS: creds });
  });

  it('refuses a user signed by an account the operator does not know', async () => {
    const stranger = createAccount();
    const { path: creds, seed } = await credsFor('stranger', stranger);
    await expectRefused(
      { NATS_URL: nats.url, NATS_CREDS: creds },
      /refused the creds file .*stranger\.creds \(NATS_CREDS\)/,
      [seed],
    );
  });

  it('refuses an expired user JWT', async () => {
    const { path: creds, seed } = await credsFor('expired', account, { exp: Math.floor(Date.now() / 1000) - 60 });
    await expectRefused(
      { NATS_URL: nats.url, NATS_CREDS: creds },
      /refused the creds file .*expired\.creds \(NATS_CREDS\)/,
      [seed],
    );
  });

  it('stops before connecting when the file is not a creds file', async () => {
    const notCreds = await file('plain.creds', 'hello\n');
    await expectRefused(
      { NATS_URL: nats.url, NATS_CREDS: notCreds },
      /NATS_CREDS: .*plain\.creds is not a NATS creds file/,
    );
  });
});

describe('TLS with client certificates, plus a password', () => {
  let certs: TestCertificates;
  let nats: ConfiguredNatsServer;
  let tlsUrl: string;
  const pass = secret();

  beforeAll(async () => {
    certs = await createTestCertificates();
    nats = await startNatsServerWithConfig(
      [
        `tls { cert_file: "${certs.serverCertFile}", key_file: "${certs.serverKeyFile}", ca_file: "${certs.caFile}", verify: true, timeout: 2 }`,
        `authorization { users: [ { user: sluice, password: "${pass}" } ] }`,
        '',
      ].join('\n'),
    );
    tlsUrl = `tls://127.0.0.1:${nats.port}`;
  });
  afterAll(async () => {
    await nats?.dispose();
    await certs?.dispose();
  });

  const good = (): Env => ({
    NATS_URL: tlsUrl,
    NATS_CA: certs.caFile,
    NATS_CERT: certs.clientCertFile,
    NATS_KEY: certs.clientKeyFile,
    NATS_USER: 'sluice',
    NATS_PASS: pass,
  });

  it('connects over TLS with the CA, a client certificate and the password', async () => {
    await connectAndUse(good());
  });

  it("refuses a server whose certificate the client's CAs do not trust, and says to set NATS_CA", async () => {
    const { NATS_CA: _ca, ...withoutCa } = good();
    await expectRefused(withoutCa, /TLS: the server's certificate is not trusted .*set NATS_CA/, [pass]);
    await expectRefused({ ...good(), NATS_CA: certs.otherCaFile }, /TLS: the server's certificate is not trusted/, [
      pass,
    ]);
  });

  it('is refused without a client certificate, or with one from another CA', async () => {
    // Over TLS 1.3 the refusal comes after the handshake and the client only sees its connect
    // timeout run out; a short one keeps the test quick, the probe then names the reason.
    const { NATS_CERT: _c, NATS_KEY: _k, ...withoutCert } = good();
    await expectRefused(
      { ...withoutCert, NATS_CONNECT_TIMEOUT: '1s' },
      /TLS: the server requires a client certificate; set NATS_CERT\/NATS_KEY/,
      [pass],
    );
    await expectRefused(
      {
        ...good(),
        NATS_CERT: certs.otherClientCertFile,
        NATS_KEY: certs.otherClientKeyFile,
        NATS_CONNECT_TIMEOUT: '1s',
      },
      /TLS: the server refused the client certificate in .*other-client\.pem/,
      [pass],
    );
  });

  it('still checks the password over TLS', async () => {
    const wrong = secret();
    await expectRefused({ ...good(), NATS_PASS: wrong }, /refused user "sluice"/, [wrong, pass]);
  });

  it('names an unreadable certificate file before connecting', async () => {
    await expectRefused(
      { ...good(), NATS_CERT: path.join(workDir, 'absent.pem') },
      /NATS_CERT: cannot read .*absent\.pem \(ENOENT\)/,
      [pass],
    );
  });
});

describe('TLS required of a server without TLS', () => {
  it('refuses to talk in plain text when the URL says tls:// or NATS_TLS=true', async () => {
    const plain = await startNatsServer();
    try {
      await expectRefused(
        { NATS_URL: `tls://127.0.0.1:${plain.port}` },
        /TLS is required .* but the server does not offer it/,
      );
      await expectRefused(
        { NATS_URL: plain.url, NATS_TLS: 'true' },
        /TLS is required .* but the server does not offer it/,
      );
    } finally {
      await plain.dispose();
    }
  });
});

describe('settings refused before connecting', () => {
  const base = { NATS_URL: 'nats://127.0.0.1:4222' };
  it.each([
    [
      { NATS_URL: 'nats://sluice:hunter2-secret@127.0.0.1:4222' },
      /NATS_URL: server 1 carries credentials; use NATS_USER\/NATS_PASSWORD or NATS_TOKEN/,
    ],
    [{ NATS_URL: 'nats://127.0.0.1:4222,nats://:tok-secret@10.0.0.1:4222' }, /NATS_URL: server 2 carries credentials/],
    [{ NATS_URL: 'ws://127.0.0.1:8080' }, /NATS_URL: server 1 uses ws:\/\//],
    [{ ...base, NATS_PASS: 'p-secret' }, /NATS_PASSWORD is set without NATS_USER/],
    [{ ...base, NATS_PASSWORD: 'p-secret' }, /NATS_PASSWORD is set without NATS_USER/],
    [
      { ...base, NATS_USER: 'u', NATS_PASSWORD: 'p-secret', NATS_PASS: 'q-secret' },
      /NATS_PASSWORD and NATS_PASS .* both set/,
    ],
    [
      { ...base, NATS_USER: 'u', NATS_PASS: 'p-secret', NATS_TOKEN: 't-secret' },
      /only one way to authenticate to NATS, got NATS_USER, NATS_TOKEN/,
    ],
    [{ ...base, NATS_TOKEN: 't-secret', NATS_CREDS: '/x.creds' }, /got NATS_TOKEN, NATS_CREDS/],
    [{ ...base, NATS_CERT: '/c.pem' }, /NATS_CERT and NATS_KEY go together/],
    [{ ...base, NATS_TLS: 'yes' }, /NATS_TLS must be one of true, false/],
  ] as Array<[Env, RegExp]>)('%o', (env, message) => {
    let error: unknown;
    try {
      loadBusConfig(env, 'x');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ConfigError');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/secret|hunter2/);
  });

  it('turns TLS on for tls:// URLs, NATS_TLS, NATS_CA or a client certificate', () => {
    expect(loadBusConfig({ NATS_URL: 'nats://h:4222' }, 'x').tls).toBeUndefined();
    expect(loadBusConfig({ NATS_URL: 'tls://h:4222' }, 'x').tls).toEqual({});
    expect(loadBusConfig({ NATS_URL: 'h:4222', NATS_TLS: 'true' }, 'x').tls).toEqual({});
    expect(loadBusConfig({ NATS_CA: '/ca.pem' }, 'x').tls).toEqual({ caFile: '/ca.pem' });
    expect(loadBusConfig({ NATS_CERT: '/c.pem', NATS_KEY: '/k.pem' }, 'x').tls).toEqual({
      certFile: '/c.pem',
      keyFile: '/k.pem',
    });
  });
});
