import type { FastifyRequest } from 'fastify';
import { KeystrataError } from '../errors.js';
import { adminTokenVerifier } from '../service/admin-token.js';

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

/**
 * Admin-token authentication for /v1 routes (the access issue adds API clients and JWTs). The
 * token is compared as a hash in constant time; the failure message never repeats what was sent.
 */
export function createAdminAuth(acceptedHashes: readonly string[]) {
  const isAdminToken = adminTokenVerifier(acceptedHashes);
  return async function requireAdmin(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    if (!match || !isAdminToken(match[1]!)) {
      throw new KeystrataError('unauthorized', 'A valid bearer token is required (Authorization: Bearer <token>).');
    }
  };
}
