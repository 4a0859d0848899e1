import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeystrataError } from '../../../src/errors.js';
import { ALLOW_ANY, createIpMatcher, normalizePeerAddress, parseCidr, tryParseCidr } from '../../../src/service/access/ip-allowlist.js';

describe('parseCidr', () => {
  it('parses IPv4 CIDRs and bare addresses (/32)', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ family: 4, address: '10.0.0.0', prefix: 8, text: '10.0.0.0/8' });
    expect(parseCidr('192.168.1.7')).toEqual({ family: 4, address: '192.168.1.7', prefix: 32, text: '192.168.1.7/32' });
    expect(parseCidr('0.0.0.0/0').text).toBe('0.0.0.0/0');
    expect(parseCidr('255.255.255.255/32').text).toBe('255.255.255.255/32');
  });

  it('parses IPv6 CIDRs and bare addresses (/128)', () => {
    expect(parseCidr('2001:db8::/32')).toEqual({ family: 6, address: '2001:db8::', prefix: 32, text: '2001:db8::/32' });
    expect(parseCidr('::1')).toEqual({ family: 6, address: '::1', prefix: 128, text: '::1/128' });
    expect(parseCidr('::/0').text).toBe('::/0');
  });

  it('clears host bits rather than rejecting them', () => {
    expect(parseCidr('10.1.2.3/8').text).toBe('10.0.0.0/8');
    expect(parseCidr('192.168.1.255/25').text).toBe('192.168.1.128/25');
    expect(parseCidr('1.2.3.4/0').text).toBe('0.0.0.0/0');
    expect(parseCidr('2001:db8:1234:5678::1/48').text).toBe('2001:db8:1234::/48');
    expect(parseCidr('2001:db8:ffff::/33').text).toBe('2001:db8:8000::/33');
    expect(parseCidr('ffff:ffff::/0').text).toBe('::/0');
  });

  it('writes IPv6 in RFC 5952 canonical form', () => {
    const cases: [string, string][] = [
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1/128'],
      ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1/128'], // first of two equal runs
      ['2001:db8:0:0:1:0:0:0', '2001:db8:0:0:1::/128'], // longest run wins
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1/128'], // a single zero group is not compressed
      ['0:0:0:0:0:0:0:0/0', '::/0'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0/128'],
      ['::ffff:a01:203', '::ffff:10.1.2.3/128'], // IPv4-mapped: mixed notation (RFC 5952 §5)
      ['::FFFF:0:0/96', '::ffff:0.0.0.0/96'],
      ['::1.2.3.4', '::102:304/128'], // deprecated IPv4-compatible form: plain hex
      ['fe80::1/10', 'fe80::/10'],
    ];
    for (const [input, text] of cases) expect(parseCidr(input).text, input).toBe(text);
  });

  it.each([
    '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/08', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/1e1', '10.0.0.0/0x8',
    '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '256.0.0.0', '1.2.3.-4', '1..2.3', '0x1.2.3.4', '1.2.3.4.',
    'fe80::1%eth0', 'fe80::1%eth0/64', '::ffff:01.2.3.4', '1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '00001::', 'g::1', '1:2:3:4:5:6:7', ':1::', '1::2:',
    '1.2.3.4::', '::1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4',
    '', ' 10.0.0.0/8', '10.0.0.0/8 ', '10.0.0.0 /8', 'localhost', '/8', 'garbage', '10.0.0.0\n',
  ])('rejects %j with an invalid_request naming the field', (text) => {
    expect(tryParseCidr(text)).toBeUndefined();
    let thrown: unknown;
    try {
      parseCidr(text, 'allowedCidrs[0]');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KeystrataError);
    expect((thrown as KeystrataError).code).toBe('invalid_request');
    expect((thrown as KeystrataError).field).toBe('allowedCidrs[0]');
  });

  it('rejects non-strings and absurdly long input without choking', () => {
    expect(tryParseCidr(42 as unknown as string)).toBeUndefined();
    expect(tryParseCidr(`${'1'.repeat(100_000)}.0.0.0/8`)).toBeUndefined();
  });

  it('agrees with Node on which IPv4/IPv6 texts are addresses (random and hand-picked)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.'.split('')), maxLength: 45 })), (text) => {
        const node = isIPv4(text) || isIPv6(text);
        expect(tryParseCidr(text) !== undefined, text).toBe(node);
      }),
      { numRuns: 5000 },
    );
  });

  it('canonical IPv6 text names the same address as the input, and is a fixed point', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const canonical = parseCidr(text).address;
        expect(new SocketAddress({ address: canonical, family: 'ipv6' }).address).toBe(new SocketAddress({ address: text, family: 'ipv6' }).address);
        expect(parseCidr(canonical).address).toBe(canonical);
        expect(canonical).toBe(canonical.toLowerCase());
        expect(canonical).not.toMatch(/(^|:)0[0-9a-f]/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('normalizePeerAddress', () => {
  it('strips the IPv4-mapped prefix, in either spelling', () => {
    expect(normalizePeerAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizePeerAddress('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizePeerAddress('::ffff:a01:203')).toBe('10.1.2.3');
    expect(normalizePeerAddress('0:0:0:0:0:ffff:10.1.2.3')).toBe('10.1.2.3');
  });

  it('canonicalises IPv6, keeps IPv4 as is, drops a zone id', () => {
    expect(normalizePeerAddress('10.1.2.3')).toBe('10.1.2.3');
    expect(normalizePeerAddress('2001:DB8:0:0::1')).toBe('2001:db8::1');
    expect(normalizePeerAddress('::1')).toBe('::1');
    expect(normalizePeerAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizePeerAddress('fe80::1%2')).toBe('fe80::1');
  });

  it('is undefined for anything that is not an address', () => {
    for (const text of ['', 'localhost', '01.2.3.4', 'fe80::1%', 'fe80::1%a%b', '%eth0', ' 10.1.2.3', '::ffff:1.2.3', undefined as unknown as string]) {
      expect(normalizePeerAddress(text), String(text)).toBeUndefined();
    }
  });
});

describe('createIpMatcher', () => {
  it('matches IPv4 inside and outside a CIDR, including the edges', () => {
    const match = createIpMatcher(['10.0.0.0/8', '192.168.1.128/25']);
    expect(match('10.0.0.0')).toBe(true);
    expect(match('10.255.255.255')).toBe(true);
    expect(match('11.0.0.0')).toBe(false);
    expect(match('9.255.255.255')).toBe(false);
    expect(match('192.168.1.128')).toBe(true);
    expect(match('192.168.1.127')).toBe(false);
    expect(match('192.168.1.255')).toBe(true);
  });

  it('matches IPv6 inside and outside a CIDR, at non-group-aligned prefixes', () => {
    const match = createIpMatcher(['2001:db8::/32', 'fd00:1234:5600::/41']);
    expect(match('2001:db8::1')).toBe(true);
    expect(match('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(match('2001:db9::')).toBe(false);
    expect(match('fd00:1234:567f:ffff::1')).toBe(true);
    expect(match('fd00:1234:5680::1')).toBe(false);
    expect(match('10.0.0.1')).toBe(false);
  });

  it('/32 and /128 match exactly one address', () => {
    const match = createIpMatcher(['203.0.113.7/32', '2001:db8::7/128']);
    expect(match('203.0.113.7')).toBe(true);
    expect(match('203.0.113.6')).toBe(false);
    expect(match('203.0.113.8')).toBe(false);
    expect(match('2001:db8::7')).toBe(true);
    expect(match('2001:db8:0:0:0:0:0:7')).toBe(true);
    expect(match('2001:db8::6')).toBe(false);
    expect(match('2001:db8::8')).toBe(false);
  });

  it('/0 matches its whole family, and ALLOW_ANY matches everything', () => {
    expect(createIpMatcher(['0.0.0.0/0'])('198.51.100.1')).toBe(true);
    expect(createIpMatcher(['0.0.0.0/0'])('2001:db8::1')).toBe(false);
    expect(createIpMatcher(['::/0'])('2001:db8::1')).toBe(true);
    const any = createIpMatcher(ALLOW_ANY);
    for (const address of ['0.0.0.0', '255.255.255.255', '::', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::ffff:10.1.2.3', 'fe80::1%eth0']) {
      expect(any(address), address).toBe(true);
    }
    expect(ALLOW_ANY).toEqual(['0.0.0.0/0', '::/0']);
    expect(Object.isFrozen(ALLOW_ANY)).toBe(true);
  });

  it('matches an IPv4-mapped peer as its IPv4 address against IPv4 CIDRs', () => {
    const match = createIpMatcher(['10.0.0.0/8']);
    expect(match('::ffff:10.1.2.3')).toBe(true);
    expect(match('::ffff:a01:203')).toBe(true);
    expect(match('::ffff:11.1.2.3')).toBe(false);
  });

  it('treats an IPv6 CIDR inside ::ffff:0:0/96 as the IPv4 CIDR it spells', () => {
    const match = createIpMatcher(['::ffff:10.0.0.0/104']);
    expect(match('10.1.2.3')).toBe(true);
    expect(match('::ffff:10.1.2.3')).toBe(true);
    expect(match('11.1.2.3')).toBe(false);
    const allMapped = createIpMatcher(['::ffff:0:0/96']);
    expect(allMapped('198.51.100.1')).toBe(true);
    expect(allMapped('2001:db8::1')).toBe(false);
  });

  it('does not let a wide IPv6 CIDR ("::/0", "::/64") admit IPv4 clients, on either socket type', () => {
    for (const cidr of ['::/0', '::/64', '::/80']) {
      const match = createIpMatcher([cidr]);
      expect(match('10.1.2.3'), cidr).toBe(false);
      expect(match('::ffff:10.1.2.3'), cidr).toBe(false);
    }
  });

  it('gives "a.b.c.d" and "::ffff:a.b.c.d" the same answer for any IPv4 address', () => {
    const match = createIpMatcher(['10.0.0.0/8', '172.16.0.0/12', '::ffff:192.168.0.0/112', '2001:db8::/32']);
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        expect(match(`::ffff:${v4}`)).toBe(match(v4));
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a link-local peer that carries a zone id', () => {
    expect(createIpMatcher(['fe80::/10'])('fe80::1%eth0')).toBe(true);
  });

  it('an empty list matches nothing; an unparseable peer never matches', () => {
    expect(createIpMatcher([])('10.1.2.3')).toBe(false);
    const any = createIpMatcher(ALLOW_ANY);
    for (const address of ['', 'unknown', '01.2.3.4', '10.1.2.3 ', undefined as unknown as string]) expect(any(address), String(address)).toBe(false);
  });

  it('refuses an invalid CIDR at build time, naming its index', () => {
    expect(() => createIpMatcher(['10.0.0.0/8', '10.0.0.0/33'])).toThrow(expect.objectContaining({ code: 'invalid_request', field: 'cidrs[1]' }));
  });

  it('agrees with the brute-force definition on random CIDRs and addresses', () => {
    const toBits = (address: string): string => {
      if (isIPv4(address)) return address.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
      const expanded = expandIPv6(address);
      return expanded.map((g) => g.toString(2).padStart(16, '0')).join('');
    };
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.nat({ max: 128 }), fc.oneof(fc.ipV4(), fc.ipV6()), (network, rawPrefix, peer) => {
        const isV4 = isIPv4(network);
        const prefix = isV4 ? rawPrefix % 33 : rawPrefix;
        const cidr = parseCidr(`${network}/${prefix}`);
        // Keep to the plain cases; the mapped-address rules have their own tests above.
        fc.pre(!cidr.address.startsWith('::ffff:') && !peer.toLowerCase().includes('ffff'));
        const expected = isIPv4(peer) === isV4 && toBits(peer).slice(0, prefix) === toBits(network).slice(0, prefix);
        expect(createIpMatcher([cidr.text])(peer)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

/** Eight groups of an IPv6 text, by a route independent of the module under test. */
function expandIPv6(text: string): number[] {
  let t = text.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    t = t.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = t.split('::');
  const h = head === '' ? [] : head.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - tl.length).fill('0');
  return [...h, ...zeros, ...tl].map((g) => parseInt(g, 16));
}
