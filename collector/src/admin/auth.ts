/**
 * Who may use the admin endpoints (SPEC §8). Pure: the route layer hands in what the request showed.
 *
 * With SPDT_ADMIN_TOKEN set, the token must come as `Authorization: Bearer TOKEN` or `?token=TOKEN`
 * (the live page and its EventSource cannot set headers). Without it, only a client on a loopback
 * socket is let in, and only when its request carries no `X-Forwarded-For` or `Forwarded` header:
 * a reverse proxy on the same machine connects from loopback too, and must not make the world look
 * local.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface AdminRequest {
  /** The `Authorization` header, if any. */
  authorization?: string;
  /** The `token` query parameter, if any (the first one when repeated). */
  queryToken?: string;
  /** The socket's peer address (never the forwarded one). */
  remoteAddress?: string;
  /** True when the request carries `X-Forwarded-For` or `Forwarded`. */
  forwarded: boolean;
}

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x (what a dual-stack socket reports for 127.0.0.1). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.toLowerCase().replace(/^::ffff:/, '');
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The token of `Bearer TOKEN` (scheme in any case), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * Compares in constant time whatever the lengths: both sides are hashed first, so neither the
 * content nor the length of the expected token shows in the timing.
 */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** True when the request may use the admin endpoints. */
export function adminAllowed(adminToken: string | undefined, request: AdminRequest): boolean {
  if (adminToken) {
    // Both forms are checked, so a wrong header cannot be rescued or doomed by the order of checks.
    const byHeader = tokenMatches(bearerToken(request.authorization), adminToken);
    const byQuery = tokenMatches(request.queryToken, adminToken);
    return byHeader || byQuery;
  }
  return isLoopback(request.remoteAddress) && !request.forwarded;
}

/** A URL with the value of every `token` query parameter replaced, for anything that logs URLs. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}
