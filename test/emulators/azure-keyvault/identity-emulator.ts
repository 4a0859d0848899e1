import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingCall, Reply } from './https-listener.js';

/**
 * The part of the Microsoft identity platform (Entra ID) that ClientSecretCredential uses, as MSAL
 * calls it with `authorityHost` pointing here and instance discovery off:
 *
 * - GET  /{tenant}/v2.0/.well-known/openid-configuration → the tenant's endpoints;
 * - POST /{tenant}/oauth2/v2.0/token, form `grant_type=client_credentials&client_id&client_secret&scope`
 *   → 200 `{token_type, expires_in, ext_expires_in, access_token}`, or the AAD error body
 *   `{error, error_description: "AADSTS…", error_codes, timestamp, trace_id, correlation_id, error_uri}`
 *   with the status AAD uses (401 invalid_client for a wrong or expired secret, 400 otherwise).
 *
 * Access tokens are opaque here (the client never parses them); the vault emulator asks
 * `tokenInfo` who holds one and for which resource.
 */

export interface IssuedToken {
  readonly clientId: string;
  readonly audience: string;
  readonly expiresAt: number;
}

interface App {
  secret: string;
  secretExpired: boolean;
}

export class IdentityEmulator {
  private readonly apps = new Map<string, App>();
  private readonly tokens = new Map<string, IssuedToken>();
  /** Token requests served (successful or not). */
  tokenRequests = 0;

  constructor(
    readonly tenantId: string,
    /** Resources (audiences) tokens can be issued for, e.g. "https://vault.azure.net". */
    private readonly resources: readonly string[],
  ) {}

  registerApp(clientId: string, secret: string): void {
    this.apps.set(clientId, { secret, secretExpired: false });
  }

  /** The client secret reaches its end date (AADSTS7000222); tokens already issued stay valid until they expire, as in AAD. */
  expireSecret(clientId: string, expired: boolean): void {
    const app = this.apps.get(clientId);
    if (app) app.secretExpired = expired;
  }

  /** Revoke every token issued so far (e.g. after a secret reset), so the next call must get a new one. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  tokenInfo(token: string): IssuedToken | undefined {
    const info = this.tokens.get(token);
    return info && info.expiresAt > Date.now() ? info : undefined;
  }

  handle(call: IncomingCall, baseUrl: string): Reply {
    const [, tenant, ...rest] = call.url.pathname.split('/');
    const path = rest.join('/');
    if (tenant !== this.tenantId) {
      return aadError(400, 'invalid_tenant', 90002, `Tenant '${tenant ?? ''}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    if (call.method === 'GET' && path === 'v2.0/.well-known/openid-configuration') {
      const authority = `${baseUrl}/${this.tenantId}`;
      return {
        status: 200,
        json: {
          token_endpoint: `${authority}/oauth2/v2.0/token`,
          authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
          jwks_uri: `${authority}/discovery/v2.0/keys`,
          issuer: `${authority}/v2.0`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          tenant_region_scope: 'EU',
        },
      };
    }
    if (call.method === 'POST' && path === 'oauth2/v2.0/token') return this.token(new URLSearchParams(call.body));
    return { status: 404 };
  }

  private token(form: URLSearchParams): Reply {
    this.tokenRequests += 1;
    if (form.get('grant_type') !== 'client_credentials') {
      return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    }
    const clientId = form.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    if (!app) {
      return aadError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${this.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }
    if (form.get('client_secret') !== app.secret) {
      return aadError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    if (app.secretExpired) {
      return aadError(401, 'invalid_client', 7000222, `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
    }
    const scope = form.get('scope') ?? '';
    const audience = this.resources.find((resource) => scope.split(' ').includes(`${resource}/.default`));
    if (!audience) {
      return aadError(400, 'invalid_resource', 500011, `The resource principal named ${scope} was not found in the tenant named ${this.tenantId}.`);
    }
    const accessToken = randomBytes(32).toString('base64url');
    this.tokens.set(accessToken, { clientId, audience, expiresAt: Date.now() + 3_599_000 });
    return { status: 200, json: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: accessToken } };
  }
}

function aadError(status: number, error: string, code: number, text: string): Reply {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return {
    status,
    json: {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}
