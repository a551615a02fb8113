import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

import { decodeOtlpTraceProtobuf } from './otlp-protobuf.js';

export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified';

/** One span as an OTLP exporter sent it, flattened out of its resource and scope. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: SpanKindName;
  /** The resource's `service.name`. */
  serviceName: string;
  scope: string;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, unknown> }>;
  /** `unset` | `ok` | `error`, and the message of an error. */
  status: { code: 'unset' | 'ok' | 'error'; message?: string };
  /** Unix time in milliseconds (fractional). */
  startMs: number;
  endMs: number;
}

export interface OtlpReceiver {
  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`). */
  url: string;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** Resolves with the spans once `predicate` holds for them (checked on every export), or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** Raw JSON request bodies received (secrets tests search them as text). */
  bodies(): string[];
  /** OTLP/protobuf export requests received (decoded like JSON ones), and their bytes. */
  protobuf(): { requests: number; bytes: number };
  close(): Promise<void>;
}

const KINDS: SpanKindName[] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const STATUS = ['unset', 'ok', 'error'] as const;

interface OtlpValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: OtlpKeyValue[];
  links?: Array<{ traceId: string; spanId: string; attributes?: OtlpKeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface OtlpTraceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }>;
  }>;
}

function valueOf(v: OtlpValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  if (v.kvlistValue) return attributesOf(v.kvlistValue.values);
  return v.bytesValue;
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

/** OTLP/JSON ids are hex; an exporter that sent base64 (the protobuf JSON mapping) is converted. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

const nanosToMs = (n: string | number | undefined): number => Number(BigInt(n ?? 0) / 1000n) / 1000;

/** Flattens an OTLP/JSON trace export request into spans. */
export function flattenOtlpTraces(body: OtlpTraceRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const name = attributesOf(rs.resource?.attributes)['service.name'];
    const serviceName = typeof name === 'string' ? name : '';
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const message = s.status?.message;
        out.push({
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          name: s.name,
          kind: KINDS[s.kind ?? 0] ?? 'unspecified',
          serviceName,
          scope: ss.scope?.name ?? '',
          attributes: attributesOf(s.attributes),
          links: (s.links ?? []).map((l) => ({
            traceId: hexId(l.traceId),
            spanId: hexId(l.spanId),
            attributes: attributesOf(l.attributes),
          })),
          status: { code: STATUS[s.status?.code ?? 0] ?? 'unset', ...(message ? { message } : {}) },
          startMs: nanosToMs(s.startTimeUnixNano),
          endMs: nanosToMs(s.endTimeUnixNano),
        });
      }
    }
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

/**
 * A stand-in for a collector (Jaeger cannot run here): an OTLP/HTTP receiver on a free loopback
 * port that accepts `POST /v1/traces` as OTLP/protobuf (the exporters' default, what Jaeger
 * ingests) or OTLP/JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), decodes both into the same
 * spans and keeps them. Any other body type is refused with 415.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const protobuf = { requests: 0, bytes: 0 };
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const waiters = new Set<() => void>();
  const received = (request: OtlpTraceRequest): void => {
    spans.push(...flattenOtlpTraces(request));
    for (const wake of waiters) wake();
  };
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const type = req.headers['content-type'] ?? '';
    if (type.includes('protobuf')) {
      readBody(req).then(
        (body) => {
          protobuf.requests += 1;
          protobuf.bytes += body.length;
          received(decodeOtlpTraceProtobuf(body) as OtlpTraceRequest);
          // An empty ExportTraceServiceResponse: no partial success to report.
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        },
        (error: Error) => res.writeHead(400, { 'content-type': 'text/plain' }).end(error.message),
      );
      return;
    }
    if (!type.includes('json')) {
      res
        .writeHead(415, { 'content-type': 'text/plain' })
        .end('this test receiver takes OTLP/protobuf or OTLP/JSON on /v1/traces\n');
      return;
    }
    readBody(req).then(
      (body) => {
        const text = body.toString('utf8');
        bodies.push(text);
        received(JSON.parse(text) as OtlpTraceRequest);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
      (error: Error) => res.writeHead(400, { 'content-type': 'text/plain' }).end(error.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    bodies: () => [...bodies],
    protobuf: () => ({ ...protobuf }),
    waitFor(predicate, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (!predicate(spans)) return false;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve([...spans]);
          return true;
        };
        const wake = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `OTLP receiver: condition not met within ${timeoutMs} ms (${spans.length} spans: ${[...new Set(spans.map((s) => `${s.serviceName}/${s.name}`))].join(', ')})`,
            ),
          );
        }, timeoutMs);
        waiters.add(wake);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
