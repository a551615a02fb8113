import { describe, expect, it } from 'vitest';

import { decodeJson, encodeJson, MalformedMessageError } from '../src/codec.js';

describe('codec', () => {
  it('round-trips JSON', () => {
    expect(decodeJson(encodeJson({ a: [1, 'x'] }))).toEqual({ a: [1, 'x'] });
  });
  it('turns a body that is not JSON into a typed error', () => {
    expect(() => decodeJson(new TextEncoder().encode('{nope'))).toThrow(MalformedMessageError);
  });
});
