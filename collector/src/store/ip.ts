/**
 * IP shortening (SPEC §8): once no delivery needs the full client address, the store keeps only
 * its network, IPv4 /24 (`203.0.113.7` → `203.0.113.0`) and IPv6 /48 (`2001:db8:1:2::7` →
 * `2001:db8:1::`). An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, how a dual-stack socket
 * reports an IPv4 client) is an IPv4 client and is shortened as one. Idempotent.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The address's network in its usual spelling; '' for anything that is not an IP address. */
export function shortenIp(ip: string): string {
  const address = ip.trim();
  if (isIPv4(address)) return shortenIpv4(address);
  const unzoned = address.replace(/%.*$/, ''); // fe80::1%eth0: the zone names a local interface
  if (!isIPv6(unzoned)) return ''; // never keep what we cannot shorten
  const hextets = expandIpv6(unzoned);
  if (isIpv4Mapped(hextets)) return shortenIpv4(ipv4FromHextets(hextets[6]!, hextets[7]!));
  return formatIpv6Prefix(hextets.slice(0, 3));
}

function shortenIpv4(address: string): string {
  return address.slice(0, address.lastIndexOf('.')) + '.0';
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function expandIpv6(address: string): number[] {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

function isIpv4Mapped(hextets: number[]): boolean {
  return hextets.slice(0, 5).every((group) => group === 0) && hextets[5] === 0xffff;
}

function ipv4FromHextets(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** A /48 prefix in RFC 5952 form: its trailing zero groups fold into the `::` of the zero host part. */
function formatIpv6Prefix(prefix: number[]): string {
  const groups = [...prefix];
  while (groups.length > 0 && groups[groups.length - 1] === 0) groups.pop();
  return groups.map((group) => group.toString(16)).join(':') + '::';
}
