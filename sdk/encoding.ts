// Base64 and UTF-8 helpers built on web-standard globals (atob/btoa/TextEncoder), so the SDK runs
// unchanged in Node, browsers, Deno and workers without pulling in Buffer.

const utf8 = new TextEncoder();

/** UTF-8 bytes of a string, or the bytes themselves. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? utf8.encode(data) : data;
}

/** Standard base64 (with padding) of some bytes, as the API expects for plaintexts. */
export function bytesToBase64(bytes: Uint8Array): string {
  // btoa takes a "binary string"; build it in chunks so large inputs do not overflow the call stack.
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/** Bytes of a standard base64 string; throws on malformed input. */
export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
