import { Type, type TSchema } from '@sinclair/typebox';

/**
 * JSON Schemas of the HTTP API (TypeBox). They validate every request (ajv, compiled once), make
 * responses fast to serialise, and are the source of /openapi.json — so the document cannot drift
 * from what the server accepts.
 */

// No control characters and no lone UTF-16 surrogates (ajv compiles patterns with the "u" flag, so
// a valid surrogate pair is one code point outside the excluded range). A lone surrogate would be
// encoded as U+FFFD in a ks1 header, making two different scope ids share one ciphertext scope.
const NO_CONTROL_CHARS = '^[^\\u0000-\\u001f\\u007f\\ud800-\\udfff]+$';

export const Id = Type.String({ format: 'uuid', description: 'A UUID.' });
export const Timestamp = Type.String({ format: 'date-time' });

export const WorkspaceName = Type.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL_CHARS });
export const EnvironmentName = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
  description: 'Lower-case letters, digits, ".", "_" and "-"; starts with a letter or digit; at most 63 characters.',
});

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code (docs/errors.md).' }),
      message: Type.String(),
      requestId: Type.String(),
      field: Type.Optional(Type.String({ description: 'The request field at fault, for invalid_request.' })),
      details: Type.Optional(Type.Object({}, { additionalProperties: true })),
    }),
  },
  { $id: 'Error' },
);

export const Environment = Type.Object({ id: Id, name: Type.String(), createdAt: Timestamp }, { $id: 'Environment' });

export const Workspace = Type.Object(
  { id: Id, name: Type.String(), createdAt: Timestamp, environments: Type.Array(Type.Ref('Environment')) },
  { $id: 'Workspace' },
);

export const WorkspaceSummary = Type.Object({ id: Id, name: Type.String(), createdAt: Timestamp });

// Query strings arrive as text (types are not coerced), so limits are checked as patterns.
const Limit = Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', description: 'Page size, 1–1000 (default 100).' });
// A cursor encodes the last item's sort key; object names (≤ 256 characters, ≤ 1,024 UTF-8 bytes) fit.
const Cursor = Type.String({ minLength: 1, maxLength: 2048, description: 'nextCursor of the previous page.' });

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const WorkspaceParams = Type.Object({ ws: Id });
export const EnvironmentParams = Type.Object({ ws: Id, env: EnvironmentName });
export const ObjectParams = Type.Object({ ws: Id, env: EnvironmentName, id: Id });
export const ObjectVersionParams = Type.Object({ ws: Id, env: EnvironmentName, id: Id, version: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }) });

/** A string enum as JSON Schema `enum` (clearer validation errors than a union of literals). */
function StringEnum<const T extends readonly string[]>(values: T, description?: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description === undefined ? {} : { description }) });
}

export const ScopeType = StringEnum(['job', 'event', 'connection', 'log'] as const);
export const Scope = Type.Object(
  {
    type: ScopeType,
    id: Type.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL_CHARS, description: 'Job, event, connection or log stream id.' }),
  },
  { additionalProperties: false },
);

// The alphabet is checked when decoding (decodeBase64Field): one pass instead of a regex over
// every character of a large body.
export const Base64 = Type.String({ description: 'Standard base64 (RFC 4648 §4, with padding).' });

const ContextKey = '^[A-Za-z0-9_.:-]{1,64}$';
// additionalProperties: false matters: TypeBox's Record only emits patternProperties, which on its
// own lets keys outside the pattern through with values of any type.
export const KeyContextSchema = Type.Record(Type.String({ pattern: ContextKey }), Type.String({ minLength: 1, maxLength: 256 }), {
  minProperties: 1,
  maxProperties: 16,
  additionalProperties: false,
  description: 'Flat object of strings (keys: letters, digits, "_", ".", ":", "-"; at most 64 characters); objects with different contexts are encrypted under different keys.',
});

export const EncryptBody = Type.Object(
  {
    scope: Scope,
    plaintext: Base64,
    context: Type.Optional(KeyContextSchema),
  },
  { additionalProperties: false },
);
export const EncryptResponse = Type.Object({ ciphertext: Type.String({ description: 'A ks1 envelope (docs/envelope.md).' }), keyId: Id });
export const DecryptBody = Type.Object(
  {
    ciphertext: Type.String({ minLength: 1, maxLength: 2_000_000 }),
    scope: Type.Optional(Scope),
    context: Type.Optional(KeyContextSchema),
  },
  { additionalProperties: false },
);
export const DecryptResponse = Type.Object({ plaintext: Base64, scope: Scope });

export const Metadata = Type.Object({}, { additionalProperties: true, maxProperties: 32, description: 'Free-form, stored in clear.' });

export const ObjectName = Type.String({ minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARS });
export const ObjectValue = Type.String({ maxLength: 262_144, description: 'The secret value: text, at most 262,144 characters.' });

export const CreateObjectBody = Type.Object(
  { name: ObjectName, value: ObjectValue, context: KeyContextSchema, metadata: Type.Optional(Metadata) },
  { additionalProperties: false },
);
export const UpdateObjectBody = Type.Object(
  { value: ObjectValue, expectedVersion: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export const ObjectQuery = Type.Object(
  {
    name: Type.Optional(ObjectName),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

const objectFields = {
  id: Id,
  name: Type.String(),
  version: Type.Integer(),
  context: Type.Record(Type.String(), Type.String()),
  metadata: Type.Object({}, { additionalProperties: true }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
};
export const VaultObject = Type.Object(objectFields, { $id: 'VaultObject' });
export const VaultObjectWithValue = Type.Object({ ...objectFields, value: Type.String() }, { $id: 'VaultObjectWithValue' });
export const ObjectVersion = Type.Object({ version: Type.Integer(), createdAt: Timestamp });

const KeyStateSchema = StringEnum(['active', 'decrypt-only', 'disabled', 'scheduled-destruction', 'destroyed'] as const);
const HourlyView = Type.Union([Type.Null(), Type.Object({ id: Id, hourStart: Timestamp, state: KeyStateSchema })]);
export const CmkSummary = Type.Object({ id: Id, provider: Type.String(), state: KeyStateSchema, createdAt: Timestamp });
export const CmkHealthState = StringEnum([
  'healthy',
  'credentials_expired',
  'key_expiring',
  'key_expired',
  'key_disabled',
  'key_pending_deletion',
  'key_deleted',
  'permission_denied',
  'unreachable',
] as const);
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
export const RepackView = Type.Object(
  {
    id: Id,
    state: StringEnum(['running', 'paused', 'done'] as const),
    done: Type.Integer({ description: 'Keys moved under the new environment key so far.' }),
    total: Type.Integer({ description: 'Keys under the old environment key when the repack began.' }),
    ratePerSecond: Type.Union([Type.Number(), Type.Null()], { description: 'Keys per second since it started.' }),
    etaSeconds: NullableNumber,
    startedAt: Timestamp,
    updatedAt: Timestamp,
    finishedAt: NullableTimestamp,
    pausedReason: Type.Union([Type.String(), Type.Null()], { description: 'Why a paused repack waits; it resumes by itself.' }),
    fromCmkId: Id,
    toCmkId: Id,
    fromEkId: Id,
    toEkId: Id,
  },
  { description: 'Environment key rotation (PUT …/cmk with rotateEnvironmentKey): both CMKs are needed until state is done.' },
);
export const CmkView = Type.Object({
  ...CmkSummary.properties,
  config: Type.Object({}, { additionalProperties: true, description: 'The provider config without its secret fields (empty for platform).' }),
  secretFields: Type.Array(Type.String(), { description: 'Secret fields that are set; their values are never shown.' }),
  keyVersion: Type.Union([Type.String(), Type.Null()], { description: 'The CMK version that wraps the environment key now.' }),
  health: Type.Union([
    Type.Null(),
    Type.Object({
      state: CmkHealthState,
      since: Timestamp,
      checkedAt: Timestamp,
      currentVersion: Type.Union([Type.String(), Type.Null()]),
      expiresAt: NullableTimestamp,
      deletionAt: NullableTimestamp,
      detail: Type.Union([Type.String(), Type.Null()]),
    }),
  ]),
  repack: Type.Union([Type.Null(), RepackView], { description: "The environment's unfinished repack, else its last one." }),
});
export const PutCmkBody = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 64, description: 'platform, uploaded, pkcs11, kmip, aws-kms, gcp-kms, azure-keyvault, vault-transit (docs/byok.md).' }),
    config: Type.Optional(Type.Object({}, { additionalProperties: true, description: "Checked against the provider's own schema (docs/byok.md)." })),
    rotateEnvironmentKey: Type.Optional(
      Type.Boolean({
        description:
          'Also replace the environment key: a new one under the new CMK, and every key under the old one re-wrapped in the background (progress in `repack`). Default false: only the environment key is re-wrapped.',
      }),
    ),
  },
  { additionalProperties: false },
);
export const KeyStatusResponse = Type.Object({
  environment: Type.Object({ id: Id, name: Type.String() }),
  cmk: CmkSummary,
  ek: Type.Object({ id: Id, state: KeyStateSchema, createdAt: Timestamp, wrappingKeyVersion: Type.Union([Type.String(), Type.Null()]) }),
  hourly: Type.Object({ periodSeconds: Type.Integer(), current: HourlyView, latest: HourlyView }),
  counts: Type.Object({
    ek: Type.Integer(),
    hourly: Type.Integer(),
    job: Type.Integer(),
    connection: Type.Integer(),
    log: Type.Integer(),
    context: Type.Integer(),
  }),
});

export function page<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
}

/** The standard error responses every authenticated route can give, for the OpenAPI document. */
export const ERROR_RESPONSES = {
  400: Type.Ref('Error'),
  401: Type.Ref('Error'),
  404: Type.Ref('Error'),
  405: Type.Ref('Error'),
  413: Type.Ref('Error'),
  415: Type.Ref('Error'),
  500: Type.Ref('Error'),
  503: Type.Ref('Error'),
} as const;

export const SHARED_SCHEMAS = [ErrorBody, Environment, Workspace, VaultObject, VaultObjectWithValue] as const;

/** `limit` query parameter → number (the schema already limits it to 1–1000). */
export function pageLimit(raw: string | undefined, fallback = 100): number {
  return raw === undefined ? fallback : Number(raw);
}

export const KeyParams = Type.Object({ ws: Id, env: EnvironmentName, keyId: Id });
const KeyKindSchema = StringEnum(['ek', 'hourly', 'job', 'connection', 'log', 'context'] as const);
export const KeyView = Type.Object({
  id: Id,
  kind: KeyKindSchema,
  scopeId: Type.Union([Type.String(), Type.Null()]),
  parentId: Id,
  state: KeyStateSchema,
  createdAt: Timestamp,
  destroyAt: Type.Union([Timestamp, Type.Null()], { description: 'When a key scheduled for destruction will be destroyed.' }),
});
const WaitingPeriodDays = Type.Integer({ minimum: 1, maximum: 365, description: 'Days until the destruction (default KEYSTRATA_DESTRUCTION_WAITING_DAYS, 7).' });
export const ScheduleDestructionBody = Type.Object({ waitingPeriodDays: Type.Optional(WaitingPeriodDays) }, { additionalProperties: false });
export const ShredContextBody = Type.Object(
  { context: KeyContextSchema, waitingPeriodDays: Type.Optional(WaitingPeriodDays) },
  { additionalProperties: false },
);
