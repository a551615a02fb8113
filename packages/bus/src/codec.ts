const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
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
