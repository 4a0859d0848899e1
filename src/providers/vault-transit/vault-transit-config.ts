import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';

/**
 * The config of a HashiCorp Vault transit CMK, as a customer gives it in `PUT …/cmk`. Only `token`
 * is secret. Everything is checked here, without touching the network: keystrata must start (and
 * open this provider) while Vault is down.
 */

export const VAULT_TRANSIT_PROVIDER = 'vault-transit';

/** A path segment as Vault's own routes accept key names (framework.GenericNameRegex: `\w([\w-.@]*\w)?`). */
const KEY_NAME = '^[A-Za-z0-9_]([A-Za-z0-9_.@-]*[A-Za-z0-9_])?$';
/** Slash-separated segments; a segment never starts with "." so "." and ".." cannot walk the URL. */
const SEGMENTS = '^[A-Za-z0-9_@-][A-Za-z0-9_.@-]*(/[A-Za-z0-9_@-][A-Za-z0-9_.@-]*)*$';

export const VaultTransitConfig = Type.Object(
  {
    address: Type.String({
      pattern: '^https?://[^\\s/?#@]+(/[^\\s?#]*)?$',
      maxLength: 2048,
      description:
        'Vault address as in VAULT_ADDR, e.g. https://vault.example.com:8200 (the API is under /v1). Use https; http:// is accepted only for a loopback address (a Vault agent or proxy on the same host).',
    }),
    token: Type.String({
      pattern: '^[\\x21-\\x7e]+$',
      maxLength: 4096,
      description:
        'Vault token sent as X-Vault-Token (secret: stored sealed, never shown). Its policy needs only update on <mount>/encrypt/<keyName> and <mount>/decrypt/<keyName>, and read on <mount>/keys/<keyName>.',
    }),
    keyName: Type.String({
      pattern: KEY_NAME,
      maxLength: 256,
      description: 'Name of the transit key (an AEAD type: aes256-gcm96, chacha20-poly1305 or xchacha20-poly1305).',
    }),
    mount: Type.Optional(
      Type.String({
        pattern: SEGMENTS,
        maxLength: 512,
        default: 'transit',
        description: 'Path the transit secrets engine is mounted at, without slashes around it (default "transit").',
      }),
    ),
    namespace: Type.Optional(
      Type.String({
        pattern: SEGMENTS,
        maxLength: 512,
        description: 'Vault Enterprise / HCP Vault namespace (sent as X-Vault-Namespace), e.g. "admin" or "admin/team-a". Leave out for Vault Community Edition.',
      }),
    ),
    caCert: Type.Optional(
      Type.String({
        pattern: '-----BEGIN CERTIFICATE-----',
        maxLength: 65_536,
        description: "PEM certificate(s) of the CA that signed Vault's TLS certificate, when it is not a publicly trusted CA. Replaces the default trust store for this connection.",
      }),
    ),
  },
  { additionalProperties: false },
);

export type VaultTransitConfigInput = Static<typeof VaultTransitConfig>;

/** The parsed, frozen settings a provider runs with. */
export interface VaultTransitSettings {
  /** The address with any trailing slash removed; API paths are appended to it. */
  readonly address: URL;
  readonly token: string;
  readonly keyName: string;
  readonly mount: string;
  readonly namespace: string | undefined;
  readonly caCert: string | undefined;
}

function invalid(field: string, why: string): KeystrataError {
  return new KeystrataError('configuration_invalid', `The ${VAULT_TRANSIT_PROVIDER} CMK config is invalid at "${field}" (${why}).`, { field });
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function parseVaultTransitConfig(config: unknown): VaultTransitSettings {
  const checked = checkConfig(VaultTransitConfig, config, VAULT_TRANSIT_PROVIDER);
  let address: URL;
  try {
    address = new URL(checked.address.replace(/\/+$/, ''));
  } catch {
    throw invalid('address', 'not a URL');
  }
  if (address.username !== '' || address.password !== '' || address.search !== '' || address.hash !== '') {
    throw invalid('address', 'no credentials, query or fragment');
  }
  // The token and every wrapped key cross this connection: in clear text only on this host.
  if (address.protocol === 'http:' && !isLoopback(address.hostname)) throw invalid('address', 'https is required unless Vault listens on a loopback address');
  if (checked.caCert !== undefined) {
    // OpenSSL skips PEM blocks it cannot read; parse each here so a pasting mistake is named now.
    const blocks = checked.caCert.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    try {
      if (blocks.length === 0) throw new Error('no certificate');
      for (const block of blocks) new X509Certificate(block);
    } catch {
      throw invalid('caCert', 'not PEM certificates');
    }
  }
  return Object.freeze({
    address,
    token: checked.token,
    keyName: checked.keyName,
    mount: checked.mount ?? 'transit',
    namespace: checked.namespace,
    caCert: checked.caCert,
  });
}
