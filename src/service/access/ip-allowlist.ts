/**
 * IP allowlists: CIDR parsing, canonical text, and a per-request matcher.
 *
 * Parsing is strict and hand-written rather than delegated, because an allowlist is a security
 * boundary and its input is typed by people: "010.0.0.1" means 8.0.0.1 to some parsers and
 * 10.0.0.1 to others, so leading zeros are refused; zone ids ("fe80::1%eth0") name an interface,
 * not a network, so they are refused in CIDRs; surrounding whitespace is refused rather than
 * trimmed so that what is stored is exactly what was checked.
 *
 * The matcher is plain arithmetic, not net.BlockList, for two measured reasons (Node 20):
 * BlockList.check costs about 3 µs per call (it builds a native SocketAddress each time), and it
 * silently matches IPv4 addresses against IPv6 rules, so a list holding only "::/0" admits every
 * IPv4 client — not what an operator who typed "all of IPv6" meant.
 *
 * IPv4 clients on a dual-stack socket arrive as IPv4-mapped IPv6 ("::ffff:10.1.2.3"). The rule
 * chosen here: a client's identity is its IPv4 address whichever socket it came through.
 *  - A mapped peer address is matched as the IPv4 address, against IPv4 CIDRs.
 *  - An IPv6 CIDR inside ::ffff:0:0/96 (prefix >= 96) is the IPv4 CIDR it spells:
 *    "::ffff:10.0.0.0/104" behaves exactly like "10.0.0.0/8", "::ffff:0:0/96" like "0.0.0.0/0".
 *  - A wider IPv6 CIDR that merely contains the mapped block ("::/0", "::/64") matches IPv6
 *    clients only; allowing IPv4 needs an IPv4 CIDR (ALLOW_ANY lists both).
 * So "10.1.2.3" and "::ffff:10.1.2.3" always get the same answer.
 */
import { invalidRequest } from '../../errors.js';

/** A parsed CIDR: the network address (host bits cleared) in canonical text, and its prefix. */
export interface Cidr {
  readonly family: 4 | 6;
  /** Canonical network address: dotted quad, or RFC 5952 text for IPv6. */
  readonly address: string;
  readonly prefix: number;
  /** Canonical "address/prefix"; store and compare this, not the input. */
  readonly text: string;
}

/** Every address, both families: the allowlist of a client with no restriction. */
export const ALLOW_ANY: readonly string[] = Object.freeze(['0.0.0.0/0', '::/0']);

/** Longer input is not a CIDR ("ffff:…:255.255.255.255/128" is 45 characters). */
const MAX_CIDR_LENGTH = 64;
/** Canonical prefix: no sign, no leading zero, at most three digits. */
const PREFIX_TEXT = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parses "address/prefix" or a bare address (a /32 or /128). Host bits are accepted and cleared:
 * "10.1.2.3/8" is 10.0.0.0/8, as `text` shows, so the caller can echo the canonical form back.
 * Throws an invalid_request KeystrataError naming `field` for anything else.
 *
 * @example
 * parseCidr('2001:DB8:0:0::1/32').text // "2001:db8::/32"
 */
export function parseCidr(text: string, field = 'cidr'): Cidr {
  const cidr = tryParseCidr(text);
  if (cidr === undefined) {
    const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, MAX_CIDR_LENGTH)) : typeof text;
    throw invalidRequest(field, `${field} must be an IPv4 or IPv6 address or CIDR (e.g. "10.0.0.0/8"), not ${shown}.`);
  }
  return cidr;
}

/** As parseCidr, but undefined instead of throwing. */
export function tryParseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string' || text.length > MAX_CIDR_LENGTH) return undefined;
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  if (prefixText !== undefined && !PREFIX_TEXT.test(prefixText)) return undefined;

  const v4 = parseIPv4(addressText);
  if (v4 !== undefined) {
    const prefix = prefixText === undefined ? 32 : Number(prefixText);
    if (prefix > 32) return undefined;
    return makeCidr(4, formatIPv4((v4 & maskIPv4(prefix)) >>> 0), prefix);
  }
  const v6 = parseIPv6(addressText);
  if (v6 !== undefined) {
    const prefix = prefixText === undefined ? 128 : Number(prefixText);
    if (prefix > 128) return undefined;
    return makeCidr(6, formatIPv6(maskIPv6(v6, prefix)), prefix);
  }
  return undefined;
}

function makeCidr(family: 4 | 6, address: string, prefix: number): Cidr {
  return Object.freeze({ family, address, prefix, text: `${address}/${prefix}` });
}

/**
 * Canonical text of a peer address as a socket reports it, or undefined if it is not an IP
 * address: an IPv4-mapped IPv6 address becomes its dotted quad, IPv6 becomes RFC 5952 text, and a
 * zone id ("fe80::1%eth0", which Node appends to link-local peers) is dropped — it says which
 * interface the packet came in on, not who sent it.
 */
export function normalizePeerAddress(address: string): string | undefined {
  const peer = parsePeer(address);
  if (peer === undefined) return undefined;
  return typeof peer === 'number' ? formatIPv4(peer) : formatIPv6(peer);
}

/**
 * A predicate telling whether a peer address is inside any of `cidrs` (see the module comment for
 * IPv4-mapped addresses). Invalid CIDRs throw an invalid_request naming `cidrs[i]`; an empty list
 * matches nothing; an address that cannot be parsed never matches. Build it once per allowlist and
 * keep it: the per-call cost is parsing the peer address and comparing integers.
 */
export function createIpMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const v4: { network: number; mask: number }[] = [];
  const v6: { network: Uint16Array; prefix: number }[] = [];
  cidrs.forEach((text, i) => {
    const cidr = parseCidr(text, `cidrs[${i}]`);
    if (cidr.family === 4) {
      v4.push({ network: parseIPv4(cidr.address)!, mask: maskIPv4(cidr.prefix) });
      return;
    }
    const network = parseIPv6(cidr.address)!;
    const mapped = mappedIPv4(network);
    if (mapped !== undefined && cidr.prefix >= 96) {
      v4.push({ network: mapped, mask: maskIPv4(cidr.prefix - 96) });
    } else {
      v6.push({ network, prefix: cidr.prefix });
    }
  });
  // Any /0 makes the family's check trivially true; skip the loop (the common "allow any" case).
  const anyV4 = v4.some((r) => r.mask === 0);
  const anyV6 = v6.some((r) => r.prefix === 0);

  return (address: string): boolean => {
    const peer = parsePeer(address);
    if (peer === undefined) return false;
    if (typeof peer === 'number') {
      if (anyV4) return true;
      for (const rule of v4) if (((peer & rule.mask) >>> 0) === rule.network) return true;
      return false;
    }
    if (anyV6) return true;
    for (const rule of v6) if (inIPv6Network(peer, rule.network, rule.prefix)) return true;
    return false;
  };
}

/** A peer as an IPv4 number (mapped addresses unwrapped) or IPv6 groups, zone id dropped. */
function parsePeer(address: string): number | Uint16Array | undefined {
  if (typeof address !== 'string' || address.length > MAX_CIDR_LENGTH + 64) return undefined;
  const v4 = parseIPv4(address);
  if (v4 !== undefined) return v4;
  // Fast path for how Node reports IPv4 clients on a dual-stack socket.
  if (address.startsWith('::ffff:')) {
    const mapped = parseIPv4(address.slice(7));
    if (mapped !== undefined) return mapped;
  }
  const percent = address.indexOf('%');
  // A zone id is one non-empty token without another "%" (RFC 6874 allows any unreserved text).
  if (percent >= 0 && (percent === address.length - 1 || address.includes('%', percent + 1))) return undefined;
  const v6 = parseIPv6(percent < 0 ? address : address.slice(0, percent));
  if (v6 === undefined) return undefined;
  return mappedIPv4(v6) ?? v6;
}

/** The IPv4 address inside ::ffff:a.b.c.d, else undefined. */
function mappedIPv4(groups: Uint16Array): number | undefined {
  if (groups[0] !== 0 || groups[1] !== 0 || groups[2] !== 0 || groups[3] !== 0 || groups[4] !== 0 || groups[5] !== 0xffff) {
    return undefined;
  }
  return ((groups[6]! << 16) | groups[7]!) >>> 0;
}

function maskIPv4(prefix: number): number {
  // `<< 32` is `<< 0` in JavaScript, hence the special case.
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Strict dotted quad: four decimal octets 0–255, no leading zeros, nothing else. */
function parseIPv4(text: string): number | undefined {
  const end = text.length;
  let value = 0;
  let octets = 0;
  let i = 0;
  while (octets < 4) {
    const first = i;
    let octet = 0;
    while (i < end) {
      const d = text.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      octet = octet * 10 + d;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || octet > 255 || (digits > 1 && text.charCodeAt(first) === 0x30)) return undefined;
    value = value * 256 + octet;
    octets++;
    if (octets < 4) {
      if (text.charCodeAt(i) !== 0x2e /* . */) return undefined;
      i++;
    }
  }
  return i === end ? value : undefined;
}

function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/**
 * RFC 4291 §2.2 text to eight 16-bit groups: one to four hex digits per group, at most one "::"
 * standing for one or more zero groups, and optionally a dotted quad as the last 32 bits. One pass
 * over the characters, no regex or split: it runs on every request from an IPv6 client.
 */
function parseIPv6(text: string): Uint16Array | undefined {
  const end = text.length;
  // 45 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", the longest valid spelling.
  if (end < 2 || end > 45) return undefined;
  const groups = new Uint16Array(8);
  let count = 0;
  let gapAt = -1;
  let i = 0;
  if (text.charCodeAt(0) === 0x3a /* : */) {
    if (text.charCodeAt(1) !== 0x3a) return undefined;
    gapAt = 0;
    i = 2;
  }
  while (i < end) {
    if (count === 8) return undefined;
    const start = i;
    let value = 0;
    for (let digit = hexValue(text.charCodeAt(i)); digit >= 0 && i < end; digit = hexValue(text.charCodeAt(++i))) {
      value = value * 16 + digit;
    }
    if (text.charCodeAt(i) === 0x2e /* . */) {
      // A dotted quad ends the address and fills two groups.
      const v4 = count <= 6 ? parseIPv4(text.slice(start)) : undefined;
      if (v4 === undefined) return undefined;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      break;
    }
    const digits = i - start;
    if (digits === 0 || digits > 4) return undefined;
    groups[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== 0x3a) return undefined;
    i++;
    if (text.charCodeAt(i) === 0x3a) {
      if (gapAt >= 0) return undefined;
      gapAt = count;
      i++;
    } else if (i === end) {
      return undefined; // a single trailing ":"
    }
  }
  if (gapAt < 0) return count === 8 ? groups : undefined;
  // "::" stands for at least one zero group: slide the groups after it to the end.
  if (count > 7) return undefined;
  const tailCount = count - gapAt;
  for (let k = tailCount - 1; k >= 0; k--) groups[8 - tailCount + k] = groups[gapAt + k]!;
  groups.fill(0, gapAt, 8 - tailCount);
  return groups;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups (the first on
 * a tie) written "::"; IPv4-mapped addresses in the mixed form "::ffff:a.b.c.d" (§5), which is
 * also how Node reports IPv4 peers on dual-stack sockets.
 */
function formatIPv6(groups: Uint16Array): string {
  const mapped = mappedIPv4(groups);
  if (mapped !== undefined) return `::ffff:${formatIPv4(mapped)}`;
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && groups[end] === 0) end++;
    if (end - g > bestLength) {
      bestStart = g;
      bestLength = end - g;
    }
    g = end;
  }
  const hex = (from: number, to: number): string => Array.from(groups.subarray(from, to), (n) => n.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

function maskIPv6(groups: Uint16Array, prefix: number): Uint16Array {
  const masked = new Uint16Array(8);
  for (let g = 0; g < 8; g++) {
    const bits = Math.min(16, Math.max(0, prefix - g * 16));
    masked[g] = groups[g]! & (bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff);
  }
  return masked;
}

function inIPv6Network(address: Uint16Array, network: Uint16Array, prefix: number): boolean {
  for (let g = 0; g < 8 && prefix > g * 16; g++) {
    const bits = Math.min(16, prefix - g * 16);
    const mask = (0xffff << (16 - bits)) & 0xffff;
    if ((address[g]! & mask) !== network[g]) return false;
  }
  return true;
}
