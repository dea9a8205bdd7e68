// The duplicate-key check the process tests run over every log line they read.
import { describe, expect, it } from 'vitest';
import { duplicateJsonKeys } from './log';

describe('duplicateJsonKeys', () => {
  it('names a key repeated in one object, at any depth, and nothing else', () => {
    expect(duplicateJsonKeys('{"host":"h1","pid":1,"x":[],"y":{},"host":"h1"}')).toEqual(['host']);
    expect(duplicateJsonKeys('{"a":1,"b":{"c":[1,{"d":2,"d":3}],"e":"x\\"y"},"a":2}')).toEqual(['b.c[].d', 'a']);
    expect(duplicateJsonKeys('{"a":true,"b":null,"c":-1.5e3,"d":{"a":1},"e":[{"a":1},{"a":2}]}')).toEqual([]);
  });

  it('refuses text that is not JSON', () => {
    expect(() => duplicateJsonKeys('{"a":')).toThrow();
  });
});
