/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Cloud KMS uses for its
 * end-to-end integrity fields (plaintextCrc32c, ciphertextCrc32c, …). Node has no built-in CRC32C,
 * and a table-driven loop over a 32-byte key is cheap, so no dependency.
 *
 * Why bother: a wrapped EK that was corrupted between Cloud KMS and us would be stored and only fail
 * on its next unwrap — data loss. Google documents these checksums for exactly that case.
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC32C of `data`, as an unsigned 32-bit integer. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
