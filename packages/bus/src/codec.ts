const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * JSON text that is already serialised, published as it is: for a message assembled from parts
 * that were each encoded once (the planner's ledger batches measure every task by its encoding).
 */
export class JsonText {
  constructor(readonly text: string) {}
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(value instanceof JsonText ? value.text : JSON.stringify(value));
}

/** A message body that is not JSON. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
}

export function decodeJson(data: Uint8Array): unknown {
  const text = decoder.decode(data);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new MalformedMessageError(`message is not JSON: ${(error as Error).message}`, { cause: error });
  }
}
