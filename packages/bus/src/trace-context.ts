import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { type Context, context, propagation, type TextMapGetter } from '@opentelemetry/api';

/**
 * Reads message headers for the W3C propagator case-insensitively: `traceparent`, `Traceparent`
 * and `TRACEPARENT` are the same header (HTTP habits differ, and some gateways canonicalise).
 */
const headerGetter: TextMapGetter<MsgHdrs> = {
  keys: (carrier) => carrier.keys(),
  get(carrier, key) {
    const wanted = key.toLowerCase();
    for (const k of carrier.keys()) if (k.toLowerCase() === wanted) return carrier.get(k);
    return undefined;
  },
};

/**
 * NATS headers carrying the active trace context (`traceparent`, `tracestate`), or undefined
 * when there is none — always so when tracing is off (no propagator is registered), so an
 * untraced service publishes exactly what it did before.
 */
export function traceHeaders(ctx: Context = context.active()): MsgHdrs | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  const keys = Object.keys(carrier);
  if (keys.length === 0) return undefined;
  const h = natsHeaders();
  for (const k of keys) h.set(k, carrier[k]!);
  return h;
}

/**
 * The trace context a message carries (its headers), on top of `base`; `base` itself when it
 * carries none, or when no propagator is registered (tracing off): a JetStream message parses its
 * headers on first read, which cost the executor more per task than the rest of its span work.
 */
export function traceContextOf(msg: { headers?: MsgHdrs | undefined }, base: Context = context.active()): Context {
  if (propagation.fields().length === 0) return base;
  const headers = msg.headers;
  return headers ? propagation.extract(base, headers, headerGetter) : base;
}
