import { describe, expect, it } from 'vitest';

import { decodeJson, encodeJson, JsonText, MalformedMessageError } from '../src/codec.js';

describe('codec', () => {
  it('round-trips JSON', () => {
    expect(decodeJson(encodeJson({ a: [1, 'x'] }))).toEqual({ a: [1, 'x'] });
  });
  it('writes JSON text that is already encoded as it is, not as a string', () => {
    expect(decodeJson(encodeJson(new JsonText('{"a":[1,"x"]}')))).toEqual({ a: [1, 'x'] });
  });
  it('turns a body that is not JSON into a typed error', () => {
    expect(() => decodeJson(new TextEncoder().encode('{nope'))).toThrow(MalformedMessageError);
  });
});
