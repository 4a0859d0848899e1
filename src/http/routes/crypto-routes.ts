import { zeroize } from '../../core/bytes.js';
import type { Keystrata } from '../../service/keystrata.js';
import { decodeBase64Field } from '../base64.js';
import { DecryptBody, DecryptResponse, ERROR_RESPONSES, EncryptBody, EncryptResponse, EnvironmentParams } from '../schemas.js';
import type { App } from '../types.js';

export function cryptoRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'crypto'>): void {
  const tags = ['data plane'];

  app.post(
    '/v1/workspaces/:ws/environments/:env/encrypt',
    {
      config: { access: { permission: 'data.use', action: 'data.encrypt' } },
      schema: {
        tags,
        summary: 'Encrypt for a job, event, connection or log scope',
        params: EnvironmentParams,
        body: EncryptBody,
        response: { 200: EncryptResponse, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const env = await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env);
      const plaintext = decodeBase64Field(request.body.plaintext, 'plaintext');
      request.auditTarget = { scopeType: request.body.scope.type, scopeId: request.body.scope.id };
      try {
        const result = await ks.crypto.encrypt(env, request.body.scope, plaintext, request.body.context);
        request.auditTarget['keyId'] = result.keyId;
        return result;
      } finally {
        zeroize(plaintext);
      }
    },
  );

  app.post(
    '/v1/workspaces/:ws/environments/:env/decrypt',
    {
      config: { access: { permission: 'data.use', action: 'data.decrypt' } },
      schema: {
        tags,
        summary: 'Decrypt a ks1 ciphertext of this environment (optionally asserting its scope)',
        params: EnvironmentParams,
        body: DecryptBody,
        response: { 200: DecryptResponse, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const env = await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env);
      const { plaintext, scope } = await ks.crypto.decrypt(env, request.body.ciphertext, request.body.scope, request.body.context);
      request.auditTarget = { scopeType: scope.type, scopeId: scope.id };
      const encoded = plaintext.toString('base64');
      zeroize(plaintext);
      return { plaintext: encoded, scope };
    },
  );
}
