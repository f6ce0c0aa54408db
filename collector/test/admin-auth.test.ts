import { describe, expect, it } from 'vitest';
import { adminAllowed, bearerToken, isLoopback, redactToken, tokenMatches } from '../src/admin/auth.js';

describe('isLoopback', () => {
  it.each(['127.0.0.1', '127.255.3.4', '::1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3'])('%s is loopback', (a) => {
    expect(isLoopback(a)).toBe(true);
  });
  it.each(['10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', '::2', '0:0:0:0:0:0:0:2', '1127.0.0.1', '127.0.0.1.example', '', undefined])(
    '%s is not loopback',
    (a) => {
      expect(isLoopback(a)).toBe(false);
    },
  );
});

describe('bearerToken', () => {
  it('reads the token of a Bearer header in any letter case', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('BEARER abc')).toBe('abc');
  });
  it('ignores other schemes and malformed headers', () => {
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken('abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('tokenMatches', () => {
  it('matches only the same token, whatever the lengths', () => {
    expect(tokenMatches('s3cret', 's3cret')).toBe(true);
    expect(tokenMatches('s3cre', 's3cret')).toBe(false);
    expect(tokenMatches('s3crett', 's3cret')).toBe(false);
    expect(tokenMatches('S3CRET', 's3cret')).toBe(false);
    expect(tokenMatches('', 's3cret')).toBe(false);
    expect(tokenMatches(undefined, 's3cret')).toBe(false);
  });
});

describe('adminAllowed with SPDT_ADMIN_TOKEN', () => {
  const token = 'admin-token-1';
  const remote = { remoteAddress: '203.0.113.9', forwarded: false };

  it('accepts the token as a Bearer header or as ?token=, from anywhere', () => {
    expect(adminAllowed(token, { ...remote, authorization: `Bearer ${token}` })).toBe(true);
    expect(adminAllowed(token, { ...remote, queryToken: token })).toBe(true);
    expect(adminAllowed(token, { remoteAddress: '203.0.113.9', forwarded: true, queryToken: token })).toBe(true);
  });
  it('refuses a missing or wrong token, also on loopback', () => {
    expect(adminAllowed(token, remote)).toBe(false);
    expect(adminAllowed(token, { ...remote, authorization: 'Bearer nope' })).toBe(false);
    expect(adminAllowed(token, { ...remote, authorization: token })).toBe(false);
    expect(adminAllowed(token, { ...remote, queryToken: 'nope' })).toBe(false);
    expect(adminAllowed(token, { remoteAddress: '127.0.0.1', forwarded: false })).toBe(false);
  });
});

describe('adminAllowed without SPDT_ADMIN_TOKEN', () => {
  it('lets in a loopback client without forwarding headers', () => {
    expect(adminAllowed(undefined, { remoteAddress: '127.0.0.1', forwarded: false })).toBe(true);
    expect(adminAllowed(undefined, { remoteAddress: '::1', forwarded: false })).toBe(true);
    expect(adminAllowed(undefined, { remoteAddress: '::ffff:127.0.0.1', forwarded: false })).toBe(true);
  });
  it('refuses a loopback client whose request was forwarded by a proxy', () => {
    expect(adminAllowed(undefined, { remoteAddress: '127.0.0.1', forwarded: true })).toBe(false);
  });
  it('refuses any other client, whatever token it brings', () => {
    expect(adminAllowed(undefined, { remoteAddress: '192.168.1.2', forwarded: false })).toBe(false);
    expect(adminAllowed(undefined, { remoteAddress: '192.168.1.2', forwarded: false, queryToken: 'x', authorization: 'Bearer x' })).toBe(false);
    expect(adminAllowed(undefined, { forwarded: false })).toBe(false);
  });
  it('treats an empty SPDT_ADMIN_TOKEN as unset, never as a token anyone can send', () => {
    expect(adminAllowed('', { remoteAddress: '192.168.1.2', forwarded: false, queryToken: '' })).toBe(false);
  });
});

describe('redactToken', () => {
  it('hides every token query value and keeps the rest of the URL', () => {
    expect(redactToken('/api/stream?token=abc&key=k')).toBe('/api/stream?token=[redacted]&key=k');
    expect(redactToken('/?key=k&TOKEN=abc#x')).toBe('/?key=k&TOKEN=[redacted]#x');
    expect(redactToken('/?token=a&token=b')).toBe('/?token=[redacted]&token=[redacted]');
    expect(redactToken('/api/events?key=token')).toBe('/api/events?key=token');
  });
});
