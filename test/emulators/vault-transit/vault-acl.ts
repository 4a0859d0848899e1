import { randomBytes } from 'node:crypto';

/**
 * Vault tokens and ACL policies, as much as the transit emulator needs (test code). A policy maps
 * paths to capabilities like `path "transit/encrypt/k" { capabilities = ["update"] }`; a path
 * ending in "*" is a prefix glob, and the most specific rule wins (exact, then longest prefix), as
 * in Vault. Every token carries the "default" policy (which allows lookup-self) unless created
 * without it; "root" may do anything.
 */

export type Capability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo' | 'deny';
export type PolicyRules = Readonly<Record<string, readonly Capability[]>>;

interface TokenEntry {
  readonly policies: readonly string[];
  readonly expiresAt: number | null;
  readonly createdAt: number;
  readonly accessor: string;
}

/** Vault's built-in default policy, trimmed to the token self-service paths. */
const DEFAULT_POLICY: PolicyRules = {
  'auth/token/lookup-self': ['read'],
  'auth/token/renew-self': ['update'],
  'auth/token/revoke-self': ['update'],
  'sys/capabilities-self': ['update'],
};

/**
 * The least-privilege policy docs/byok.md gives customers, for each key name: update on
 * transit/encrypt and transit/decrypt, read on transit/keys (metadata, for the health probe).
 */
export function keystrataPolicy(...keyNames: string[]): PolicyRules {
  const rules: Record<string, readonly Capability[]> = {};
  for (const name of keyNames) {
    rules[`transit/encrypt/${name}`] = ['update'];
    rules[`transit/decrypt/${name}`] = ['update'];
    rules[`transit/keys/${name}`] = ['read'];
  }
  return rules;
}

export class VaultAcl {
  private readonly policies = new Map<string, PolicyRules>([['default', DEFAULT_POLICY]]);
  private readonly tokens = new Map<string, TokenEntry>();
  readonly rootToken: string;

  constructor() {
    this.rootToken = this.createToken({ policies: ['root'], noDefaultPolicy: true });
  }

  /** `vault policy write <name>`: replaces the rules; tokens holding the policy see the change at once. */
  writePolicy(name: string, rules: PolicyRules): void {
    this.policies.set(name, rules);
  }

  /** `vault token create -policy=… [-ttl=…] [-no-default-policy]`. */
  createToken(options: { policies: readonly string[]; ttlSeconds?: number; noDefaultPolicy?: boolean }): string {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    const policies = options.noDefaultPolicy ? options.policies : ['default', ...options.policies];
    this.tokens.set(token, {
      policies,
      createdAt: Date.now(),
      expiresAt: options.ttlSeconds === undefined ? null : Date.now() + options.ttlSeconds * 1000,
      accessor: randomBytes(12).toString('base64url'),
    });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** The live token entry, or undefined for an unknown, revoked or expired token. */
  token(token: string | undefined): TokenEntry | undefined {
    if (token === undefined) return undefined;
    const entry = this.tokens.get(token);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      this.tokens.delete(token);
      return undefined;
    }
    return entry;
  }

  allows(entry: TokenEntry, path: string, capability: Capability): boolean {
    if (entry.policies.includes('root')) return true;
    let best: { length: number; exact: boolean; capabilities: Set<Capability> } | undefined;
    for (const name of entry.policies) {
      const rules = this.policies.get(name);
      if (!rules) continue;
      for (const [pattern, capabilities] of Object.entries(rules)) {
        const glob = pattern.endsWith('*');
        const prefix = glob ? pattern.slice(0, -1) : pattern;
        const matches = glob ? path.startsWith(prefix) : path === pattern;
        if (!matches) continue;
        const candidate = { length: prefix.length, exact: !glob };
        // Most specific wins; equally specific rules from several policies are merged.
        if (!best || (candidate.exact && !best.exact) || (candidate.exact === best.exact && candidate.length > best.length)) {
          best = { ...candidate, capabilities: new Set(capabilities) };
        } else if (candidate.exact === best.exact && candidate.length === best.length) {
          for (const capability of capabilities) best.capabilities.add(capability);
        }
      }
    }
    if (!best || best.capabilities.has('deny')) return false;
    return best.capabilities.has(capability);
  }

  /** GET auth/token/lookup-self `data` (Vault returns the token itself as `id`, as here). */
  lookup(token: string, entry: TokenEntry): Record<string, unknown> {
    const ttl = entry.expiresAt === null ? 0 : Math.max(0, Math.round((entry.expiresAt - Date.now()) / 1000));
    return {
      accessor: entry.accessor,
      creation_time: Math.floor(entry.createdAt / 1000),
      creation_ttl: ttl,
      display_name: 'token',
      entity_id: '',
      expire_time: entry.expiresAt === null ? null : new Date(entry.expiresAt).toISOString(),
      explicit_max_ttl: 0,
      id: token,
      issue_time: new Date(entry.createdAt).toISOString(),
      meta: null,
      num_uses: 0,
      orphan: false,
      path: 'auth/token/create',
      policies: entry.policies,
      renewable: entry.expiresAt !== null,
      ttl,
      type: 'service',
    };
  }
}
