/**
 * Who sent a request (SPEC §8 `SPDT_TRUST_PROXY`). Pure. Without a trusted proxy the socket is the
 * only truth: any client can write `X-Forwarded-For`.
 */
import { isIP } from 'node:net';

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string) => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

/** `::ffff:203.0.113.7` (an IPv4 client on a dual-stack socket) → `203.0.113.7`. */
const plain = (ip: string) => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) == 4 ? ip.slice(7) : ip);

/**
 * The client's IP: the socket's, or with a trusted proxy the left-most `X-Forwarded-For` entry
 * (the first hop the proxy chain saw) when it is an IP address.
 */
export function clientIp(socketAddress: string | undefined, headers: Headers, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = header(headers, 'x-forwarded-for')?.split(',')[0]?.trim();
    // `[2001:db8::1]:443` and `203.0.113.7:51234` appear in the wild; the port is not the client.
    const candidate = forwarded?.replace(/^\[([^\]]+)\](:\d+)?$/, '$1').replace(/^(\d+\.\d+\.\d+\.\d+):\d+$/, '$1');
    if (candidate && isIP(candidate)) return plain(candidate);
  }
  return plain(socketAddress ?? '');
}

/** `https` when the request came over TLS, or with a trusted proxy when `X-Forwarded-Proto` says so. */
export function requestScheme(encrypted: boolean, headers: Headers, trustProxy: boolean): 'http' | 'https' {
  if (trustProxy) {
    const proto = header(headers, 'x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
    if (proto == 'https' || proto == 'http') return proto;
  }
  return encrypted ? 'https' : 'http';
}
