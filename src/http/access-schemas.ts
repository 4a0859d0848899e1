import { Type } from '@sinclair/typebox';
import { TOKEN_TTL_MAX_SECONDS, TOKEN_TTL_MIN_SECONDS } from '../service/access/token-limits.js';
import { Id, Timestamp, WorkspaceName } from './schemas.js';

/**
 * Schemas of the access-control routes: API clients, their tokens, JWT issue, and the audit log.
 * docs/access.md describes the model; the TypeBox types below are what the server enforces.
 */

function StringEnum<const T extends readonly string[]>(values: T, description?: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description === undefined ? {} : { description }) });
}

export const ClientRole = StringEnum(['admin', 'operator', 'app', 'auditor'] as const, 'What the client may do (docs/access.md).');

const EnvironmentGrant = Type.String({
  pattern: '^(\\*|[a-z0-9][a-z0-9._-]{0,62})$',
  description: 'An environment name, or "*" for every environment (present and future).',
});
const Environments = Type.Array(EnvironmentGrant, { minItems: 1, maxItems: 64, uniqueItems: true });
// Checked again (and canonicalised) by the service: the pattern only bounds the shape.
const CidrText = Type.String({ minLength: 2, maxLength: 49, pattern: '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$', description: 'IPv4 or IPv6 CIDR.' });
const AllowedCidrs = Type.Array(CidrText, { minItems: 1, maxItems: 256 });
const TokenTtlSeconds = Type.Integer({ minimum: TOKEN_TTL_MIN_SECONDS, maximum: TOKEN_TTL_MAX_SECONDS, description: 'Lifetime of each issued API token.' });
const RateLimit = Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()], {
  description: 'Requests per second for this client (bursts of twice that); null = server default.',
});

export const ClientName = WorkspaceName;

export const CreateClientBody = Type.Object(
  {
    name: ClientName,
    role: ClientRole,
    environments: Type.Optional(Environments),
    allowedCidrs: Type.Optional(AllowedCidrs),
    tokenTtlSeconds: Type.Optional(TokenTtlSeconds),
    rateLimitPerSecond: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
);

export const UpdateClientBody = Type.Object(
  {
    name: Type.Optional(ClientName),
    role: Type.Optional(ClientRole),
    environments: Type.Optional(Environments),
    allowedCidrs: Type.Optional(AllowedCidrs),
    tokenTtlSeconds: Type.Optional(TokenTtlSeconds),
    rateLimitPerSecond: Type.Optional(RateLimit),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const RotateTokenBody = Type.Object(
  {
    graceSeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 7 * 86_400, description: 'How long the previous tokens keep working (default: server setting).' }),
    ),
  },
  { additionalProperties: false },
);

const TokenView = Type.Object({ id: Id, createdAt: Timestamp, expiresAt: Timestamp });

export const ClientUsage = Type.Object({
  requests: Type.Integer(),
  failures: Type.Integer(),
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  lastUsedIp: Type.Union([Type.String(), Type.Null()]),
});

export const ApiClient = Type.Object(
  {
    id: Id,
    workspaceId: Id,
    name: Type.String(),
    role: ClientRole,
    environments: Type.Array(Type.String()),
    allowedCidrs: Type.Array(Type.String()),
    tokenTtlSeconds: Type.Integer(),
    rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
    disabled: Type.Boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    usage: ClientUsage,
    tokens: Type.Array(TokenView, { description: 'Tokens that still work (ids and expiry only; token values are never shown again).' }),
  },
  { $id: 'ApiClient' },
);

export const IssuedToken = Type.Object({
  token: Type.String({ description: 'Shown once. Store it like a password.' }),
  tokenId: Id,
  expiresAt: Timestamp,
});

export const CreateClientResponse = Type.Object({ client: Type.Ref('ApiClient'), ...IssuedToken.properties }, { $id: 'CreateClientResponse' });
export const RotateTokenResponse = Type.Object(
  {
    ...IssuedToken.properties,
    previousTokensExpireBy: Timestamp,
  },
  { $id: 'RotateTokenResponse' },
);

export const ClientParams = Type.Object({ ws: Id, id: Id });

export const JwtRequestBody = Type.Object(
  { ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 86_400, description: 'Default and maximum: server settings.' })) },
  { additionalProperties: false },
);
export const JwtResponse = Type.Object({
  token: Type.String({ description: 'An HS256 JWT; send it as Authorization: Bearer <jwt>.' }),
  tokenType: Type.Literal('Bearer'),
  expiresAt: Timestamp,
});

export const AuditActor = Type.Object({
  type: StringEnum(['admin', 'client', 'system'] as const, '"admin": the break-glass admin token; "system": keystrata itself (CMK health probe, KMS rotation).'),
  id: Type.Union([Id, Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  role: Type.Union([ClientRole, Type.Null()]),
});

export const AuditEntry = Type.Object(
  {
    seq: Type.Integer(),
    id: Id,
    at: Timestamp,
    environmentId: Type.Union([Id, Type.Null()]),
    /** Hex chain link, for offline checks of an export. */
    link: Type.String(),
    /** Present when the body could not be decrypted (its environment's CMK is unavailable): the code. */
    unreadable: Type.Optional(Type.String()),
    actor: Type.Optional(AuditActor),
    action: Type.Optional(Type.String()),
    target: Type.Optional(Type.Object({}, { additionalProperties: Type.String() })),
    sourceIp: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
    outcome: Type.Optional(StringEnum(['success', 'failure'] as const)),
    status: Type.Optional(Type.Integer()),
    errorCode: Type.Optional(Type.String()),
  },
  { $id: 'AuditEntry' },
);

export const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', description: 'Page size, 1–1000 (default 100).' })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'nextCursor of the previous page (a seq).' })),
  },
  { additionalProperties: false },
);

export const AuditVerifyResponse = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'Entries checked.' }),
  firstBadEntry: Type.Optional(Type.Integer({ description: 'seq of the first entry that fails (missing, edited, reordered or inserted).' })),
  reason: Type.Optional(Type.String()),
  head: Type.Object({ seq: Type.Integer(), link: Type.String() }),
});

export const ACCESS_SCHEMAS = [ApiClient, AuditEntry, CreateClientResponse, RotateTokenResponse] as const;
