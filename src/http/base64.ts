import { invalidRequest } from '../errors.js';

/**
 * Strict standard base64 → bytes. Node's decoder silently skips characters outside the alphabet
 * (the output is then shorter than the text's length implies) and also accepts the URL-safe "-"
 * and "_"; both are refused here, as is padding anywhere but at the end.
 */
export function decodeBase64Field(value: string, field: string): Buffer {
  const fail = () => invalidRequest(field, `${field} is not valid base64.`);
  if (value.length % 4 !== 0 || value.includes('-') || value.includes('_')) throw fail();
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  const decoded = Buffer.from(value, 'base64');
  if (decoded.length !== (value.length / 4) * 3 - padding) {
    decoded.fill(0);
    throw fail();
  }
  return decoded;
}
