import { Type } from '@sinclair/typebox';
import type { Keystrata } from '../../service/keystrata.js';
import { JwtRequestBody, JwtResponse } from '../access-schemas.js';
import { ERROR_RESPONSES } from '../schemas.js';
import { optionalBody } from '../json-body.js';
import type { App } from '../types.js';

/** JWT issue: an API client trades its API token for a short-lived HS256 JWT. */
export function authRoutes(app: App, ks: Pick<Keystrata, 'authenticator'>): void {
  app.post(
    '/v1/auth/token',
    {
      config: { access: { permission: 'token.exchange', action: 'auth.jwt' } },
      preValidation: optionalBody,
      schema: {
        tags: ['access'],
        summary: 'Exchange an API token for a short-lived JWT',
        body: Type.Optional(JwtRequestBody),
        response: { 200: JwtResponse, 403: Type.Ref('Error'), 429: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const principal = request.principal;
      // The preHandler admits only API clients that presented an API token.
      if (principal?.kind !== 'client') throw new Error('unreachable: token.exchange admitted a non-client');
      const issued = ks.authenticator.issueJwt(principal, request.body?.ttlSeconds);
      return { token: issued.token, tokenType: 'Bearer' as const, expiresAt: issued.expiresAt };
    },
  );
}
