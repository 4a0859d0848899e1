import { describe, expect, it } from 'vitest';
import { decodeBase64Field } from '../../src/http/base64.js';

describe('decodeBase64Field (strict standard base64)', () => {
  it('accepts canonical standard base64, padded', () => {
    expect(decodeBase64Field('', 'p')).toEqual(Buffer.alloc(0));
    expect(decodeBase64Field('aGk=', 'p').toString()).toBe('hi');
    expect(decodeBase64Field('QUJD', 'p').toString()).toBe('ABC');
    expect(decodeBase64Field('AA==', 'p')).toEqual(Buffer.of(0));
  });

  it.each(['A===', 'AA=A', 'AA AA', 'AA-A', 'AA_A', 'QUJD=', '!!!!', 'AAA=\n', 'aGk', '====', 'AAAA====x'])('refuses %j with the field named', (value) => {
    expect(() => decodeBase64Field(value, 'plaintext')).toThrow(expect.objectContaining({ code: 'invalid_request', field: 'plaintext' }));
  });
});
