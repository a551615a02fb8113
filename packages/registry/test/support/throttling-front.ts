import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the front does with one request: pass it on, answer with a throttling error, or pass it on and hold back keys. */
export type FrontAction =
  | 'pass'
  | 'unprocess-half'
  | 'unprocess-all'
  | { throttle: 'ProvisionedThroughputExceededException' | 'ThrottlingException' | 'RequestLimitExceeded' };

export interface ThrottlingFront {
  endpoint: string;
  /** Requests seen per operation (`Scan`, `BatchGetItem`, ...). */
  seen: Map<string, number>;
  /** Requests answered with a throttling error. */
  throttled(): number;
  close(): Promise<void>;
}

const ERROR_TYPES = {
  ProvisionedThroughputExceededException: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
  ThrottlingException: 'com.amazon.coral.availability#ThrottlingException',
  RequestLimitExceeded: 'com.amazonaws.dynamodb.v20120810#RequestLimitExceeded',
};

/**
 * A real HTTP server in front of dynalite (which never throttles) that answers chosen requests the
 * way DynamoDB does when it throttles: HTTP 400 with the error type, or a BatchGetItem response with
 * half of the keys moved to `UnprocessedKeys`. The SDK parses these as it would from AWS.
 */
export async function startThrottlingFront(
  target: string,
  decide: (operation: string, nth: number) => FrontAction,
): Promise<ThrottlingFront> {
  const seen = new Map<string, number>();
  let throttled = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const nth = (seen.get(operation) ?? 0) + 1;
      seen.set(operation, nth);
      const action = decide(operation, nth);
      if (typeof action === 'object') {
        throttled += 1;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: ERROR_TYPES[action.throttle],
            message: 'The level of configured provisioned throughput for the table was exceeded.',
          }),
        );
        return;
      }
      const upstream = http.request(
        new URL(req.url ?? '/', target),
        { method: req.method, headers: req.headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            let out: Buffer = Buffer.concat(parts);
            if (action !== 'pass' && operation === 'BatchGetItem' && answer.statusCode === 200)
              out = holdBack(body, out, action === 'unprocess-all' ? () => true : (i) => i % 2 === 1);
            const headers: http.OutgoingHttpHeaders = { ...answer.headers, 'content-length': String(out.length) };
            delete headers['x-amz-crc32'];
            res.writeHead(answer.statusCode ?? 500, headers);
            res.end(out);
          });
        },
      );
      upstream.on('error', (error) => res.destroy(error));
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    throttled: () => throttled,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Wire = Record<string, unknown>;

/** Moves the chosen items of a BatchGetItem answer back to `UnprocessedKeys`. */
function holdBack(request: Buffer, response: Buffer, back: (index: number) => boolean): Buffer {
  const asked = JSON.parse(request.toString()) as { RequestItems: Record<string, Wire> };
  const answer = JSON.parse(response.toString()) as {
    Responses: Record<string, Wire[]>;
    UnprocessedKeys?: Record<string, { Keys: Wire[] }>;
  };
  for (const [table, items] of Object.entries(answer.Responses)) {
    const held = items.filter((_, i) => back(i));
    if (held.length === 0) continue;
    answer.Responses[table] = items.filter((_, i) => !back(i));
    const previous = answer.UnprocessedKeys?.[table]?.Keys ?? [];
    answer.UnprocessedKeys = {
      ...answer.UnprocessedKeys,
      [table]: {
        ...asked.RequestItems[table],
        Keys: [...previous, ...held.map((item) => ({ tenantId: item.tenantId }))],
      },
    };
  }
  return Buffer.from(JSON.stringify(answer));
}
