import { describe, expect, it } from 'vitest';
import { shortenIp } from '../src/store/ip.js';

describe('shortenIp', () => {
  it.each([
    ['203.0.113.7', '203.0.113.0'],
    ['10.0.0.255', '10.0.0.0'],
    ['0.0.0.0', '0.0.0.0'],
    [' 198.51.100.1 ', '198.51.100.0'],
  ])('IPv4 %s → /24 %s', (ip, short) => expect(shortenIp(ip)).toBe(short));

  it.each([
    ['2001:db8:1:2::7', '2001:db8:1::'],
    ['2001:0DB8:0001:ffff:ffff:ffff:ffff:ffff', '2001:db8:1::'],
    ['2001:db8::1', '2001:db8::'], // third group 0 folds into the ::
    ['2001::1', '2001::'],
    ['::1', '::'],
    ['0:5:0:1::', '0:5::'],
    ['fe80::1%eth0', 'fe80::'],
    ['64:ff9b::192.0.2.1', '64:ff9b::'], // a NAT64 address is an IPv6 one
  ])('IPv6 %s → /48 %s', (ip, short) => expect(shortenIp(ip)).toBe(short));

  it.each([
    ['::ffff:203.0.113.7', '203.0.113.0'],
    ['::FFFF:198.51.100.200', '198.51.100.0'],
    ['::ffff:cb00:7107', '203.0.113.0'],
  ])('IPv4-mapped %s is an IPv4 client: %s', (ip, short) => expect(shortenIp(ip)).toBe(short));

  it.each(['', 'unknown', '203.0.113', '2001:db8:::1', '::ffff:300.1.1.1', '1.2.3.4.5'])('keeps nothing of %j', (ip) =>
    expect(shortenIp(ip)).toBe(''),
  );

  it('is idempotent', () => {
    for (const ip of ['203.0.113.7', '2001:db8:1:2::7', '::ffff:203.0.113.7', '::1']) expect(shortenIp(shortenIp(ip))).toBe(shortenIp(ip));
  });
});
