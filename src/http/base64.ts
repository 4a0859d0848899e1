import { invalidRequest } from '../errors.js';

/** Strict standard base64 → bytes; the schema has checked the alphabet, this checks the length. */
export function decodeBase64Field(value: string, field: string): Buffer {
  if (value.length % 4 !== 0) throw invalidRequest(field, `${field} is not valid base64 (length must be a multiple of 4).`);
  return Buffer.from(value, 'base64');
}
