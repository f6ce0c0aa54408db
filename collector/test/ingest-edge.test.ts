import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SPOTIFY_URL, loadConfig } from '../src/config.js';
import { clientIp, requestScheme } from '../src/ingest/client.js';
import { deviceCookie } from '../src/ingest/cookie.js';
import { createLogger } from '../src/log.js';

const UID = 'e80cb68aa08941c5937911daee4144ea';

describe('clientIp', () => {
  it('is the socket address unless a proxy is trusted', () => {
    expect(clientIp('198.51.100.2', { 'x-forwarded-for': '203.0.113.7' }, false)).toBe('198.51.100.2');
    expect(clientIp('::ffff:198.51.100.2', {}, false)).toBe('198.51.100.2');
    expect(clientIp('2001:db8::1', {}, false)).toBe('2001:db8::1');
  });
  it('is the left-most X-Forwarded-For entry with SPDT_TRUST_PROXY=1', () => {
    expect(clientIp('127.0.0.1', { 'x-forwarded-for': ' 203.0.113.7 , 10.0.0.1' }, true)).toBe('203.0.113.7');
    expect(clientIp('127.0.0.1', { 'x-forwarded-for': ['[2001:db8::7]:443', '10.0.0.1'] }, true)).toBe('2001:db8::7');
    expect(clientIp('127.0.0.1', { 'x-forwarded-for': '203.0.113.7:5123' }, true)).toBe('203.0.113.7');
  });
  it('falls back to the socket when the header is no IP', () => {
    expect(clientIp('127.0.0.1', { 'x-forwarded-for': 'unknown, 10.0.0.1' }, true)).toBe('127.0.0.1');
    expect(clientIp('127.0.0.1', {}, true)).toBe('127.0.0.1');
  });
});

describe('requestScheme', () => {
  it('believes X-Forwarded-Proto only from a trusted proxy', () => {
    expect(requestScheme(false, { 'x-forwarded-proto': 'https' }, false)).toBe('http');
    expect(requestScheme(false, { 'x-forwarded-proto': 'HTTPS, http' }, true)).toBe('https');
    expect(requestScheme(true, {}, false)).toBe('https');
    expect(requestScheme(false, { 'x-forwarded-proto': 'gopher' }, true)).toBe('http');
  });
});

describe('deviceCookie', () => {
  const request = { origin: 'https://shop.example.com', uid: UID, scheme: 'https' as const };
  it('re-sets __spdt for a page on the domain or below', () => {
    expect(deviceCookie('example.com', 365, request)).toBe(`__spdt=${UID}; Domain=example.com; Path=/; Max-Age=31536000; SameSite=Lax; Secure`);
    expect(deviceCookie('example.com', 1, { ...request, origin: 'http://example.com', scheme: 'http' })).toBe(
      `__spdt=${UID}; Domain=example.com; Path=/; Max-Age=86400; SameSite=Lax`,
    );
  });
  it('takes the Referer when there is no Origin', () => {
    expect(deviceCookie('example.com', 1, { referer: 'https://www.example.com/a?b', uid: UID, scheme: 'https' })).toContain('__spdt=');
  });
  it('never for another site, a look-alike, a bad uid or without the setting', () => {
    expect(deviceCookie('example.com', 1, { ...request, origin: 'https://badexample.com' })).toBeUndefined();
    expect(deviceCookie('example.com', 1, { ...request, origin: 'https://example.com.evil.net' })).toBeUndefined();
    expect(deviceCookie('example.com', 1, { ...request, origin: undefined, referer: undefined })).toBeUndefined();
    expect(deviceCookie('example.com', 1, { ...request, uid: UID.toUpperCase() })).toBeUndefined();
    expect(deviceCookie('example.com', 1, { ...request, uid: `${UID}; Domain=evil.net` })).toBeUndefined();
    expect(deviceCookie(undefined, 1, request)).toBeUndefined();
  });
  it('is never HttpOnly (the tag reads it)', () => {
    expect(deviceCookie('example.com', 1, request)).not.toMatch(/HttpOnly/i);
  });
});

describe('loadConfig', () => {
  const error = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('no ConfigError');
  };

  it('has the SPEC defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8080, host: '127.0.0.1', dataDir: './.data', databaseUrl: undefined, adminToken: undefined, serverToken: undefined,
      trustProxy: false, cookieDomain: undefined, cookieDays: 365, role: 'all', connections: [],
      relay: { batch: 50, retryMs: 1000, maxAgeSeconds: 86400 },
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '0', HOST: '0.0.0.0', SPDT_DATA_DIR: '/var/spdt', DATABASE_URL: 'postgres://u@db/spdt', SPDT_ADMIN_TOKEN: 'admin-secret-1',
      SPDT_SERVER_TOKEN: 'server-secret-1', SPDT_TRUST_PROXY: '1', SPDT_COOKIE_DOMAIN: '.Example.com', SPDT_COOKIE_DAYS: '30', SPDT_ROLE: 'ingest',
      SPDT_SPOTIFY_CONNECTION_ID: 'conn-1', SPDT_SPOTIFY_TOKEN: 'tok-1', SPDT_SPOTIFY_KEYS: 'k1, k2', SPDT_SPOTIFY_CUSTOM: 'quiz=custom_event_2',
      SPDT_SPOTIFY_URL: 'http://127.0.0.1:9/events', SPDT_RELAY_BATCH: '10', SPDT_RELAY_RETRY_MS: '5', SPDT_RELAY_MAX_AGE: '60',
    });
    expect(config).toMatchObject({
      port: 0, host: '0.0.0.0', dataDir: '/var/spdt', databaseUrl: 'postgres://u@db/spdt', adminToken: 'admin-secret-1', serverToken: 'server-secret-1',
      trustProxy: true, cookieDomain: 'example.com', cookieDays: 30, role: 'ingest', relay: { batch: 10, retryMs: 5, maxAgeSeconds: 60 },
      connections: [{ connection_id: 'conn-1', token: 'tok-1', keys: ['k1', 'k2'], custom: { quiz: 'CUSTOM_EVENT_2' }, url: 'http://127.0.0.1:9/events' }],
    });
  });

  it.each([
    [{ PORT: '80a' }, 'PORT: not an integer'],
    [{ PORT: '70000' }, 'PORT'],
    [{ SPDT_TRUST_PROXY: 'yes' }, 'SPDT_TRUST_PROXY: not 0 or 1'],
    [{ SPDT_COOKIE_DAYS: '0' }, 'SPDT_COOKIE_DAYS'],
    [{ SPDT_COOKIE_DOMAIN: 'https://example.com' }, 'SPDT_COOKIE_DOMAIN'],
    [{ SPDT_ROLE: 'both' }, 'SPDT_ROLE: not all, ingest or relay'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ SPDT_SPOTIFY_CONNECTION_ID: 'c' }, 'SPDT_SPOTIFY_TOKEN: required'],
    [{ SPDT_SPOTIFY_TOKEN: 'super-secret-token' }, 'SPDT_SPOTIFY_CONNECTION_ID: required'],
    [{ SPDT_SPOTIFY_KEYS: 'k' }, 'SPDT_SPOTIFY_KEYS: needs'],
    [{ SPDT_SPOTIFY_CONNECTION_ID: 'c', SPDT_SPOTIFY_TOKEN: 't', SPDT_SPOTIFY_CUSTOM: 'quiz=CUSTOM_EVENT_9' }, 'SPDT_SPOTIFY_CUSTOM'],
    [{ SPDT_SPOTIFY_CONNECTION_ID: 'c', SPDT_SPOTIFY_TOKEN: 't', SPDT_SPOTIFY_URL: 'ftp://x' }, 'SPDT_SPOTIFY_URL'],
    [{ SPDT_ADMIN_TOKEN: 'has space secret' }, 'SPDT_ADMIN_TOKEN'],
    [{ SPDT_RELAY_BATCH: '0' }, 'SPDT_RELAY_BATCH'],
    [{ SPDT_CONFIG: '/nonexistent/spdt.json' }, 'SPDT_CONFIG: cannot read the file (ENOENT)'],
  ])('%o is refused naming the variable', (env, message) => {
    expect(error(env as Record<string, string>)).toContain(message);
  });

  it('never echoes a token in an error', () => {
    expect(error({ SPDT_ADMIN_TOKEN: 'my secret token' })).not.toContain('secret');
  });

  describe('SPDT_CONFIG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spdt-config-'));
    let n = 0;
    const file = (content: unknown) => {
      const path = join(dir, `c${n++}.json`);
      writeFileSync(path, typeof content == 'string' ? content : JSON.stringify(content));
      return path;
    };

    it('gives the same settings in lower case or by their variable names; the environment wins', () => {
      const path = file({ port: 9000, cookie_days: 7, SPDT_ROLE: 'relay', trust_proxy: true, relay_batch: 5 });
      expect(loadConfig({ SPDT_CONFIG: path, PORT: '9001' })).toMatchObject({ port: 9001, cookieDays: 7, role: 'relay', trustProxy: true, relay: { batch: 5 } });
    });

    it('adds its connections to the environment one', () => {
      const path = file({
        spotify_url: 'https://capi.example/events',
        spotify: [
          { connection_id: 'a', token: 'ta', keys: ['k1'], custom: { quiz: 'CUSTOM_EVENT_1' } },
          { connection_id: 'b', token: 'tb', url: 'http://127.0.0.1:1/e' },
        ],
      });
      const { connections } = loadConfig({ SPDT_CONFIG: path, SPDT_SPOTIFY_CONNECTION_ID: 'env', SPDT_SPOTIFY_TOKEN: 'tenv' });
      expect(connections).toEqual([
        { connection_id: 'env', token: 'tenv', keys: undefined, custom: {}, url: 'https://capi.example/events' },
        { connection_id: 'a', token: 'ta', keys: ['k1'], custom: { quiz: 'CUSTOM_EVENT_1' }, url: 'https://capi.example/events' },
        { connection_id: 'b', token: 'tb', keys: undefined, custom: {}, url: 'http://127.0.0.1:1/e' },
      ]);
      expect(loadConfig({ SPDT_CONFIG: file({ spotify: [{ connection_id: 'x', token: 't' }] }) }).connections[0].url).toBe(DEFAULT_SPOTIFY_URL);
    });

    it.each([
      ['{"port": 1,', 'SPDT_CONFIG: not valid JSON'],
      [[], 'SPDT_CONFIG: not a JSON object'],
      [{ prot: 1 }, 'SPDT_CONFIG: unknown setting "prot"'],
      [{ port: 'x' }, 'PORT (SPDT_CONFIG): not an integer'],
      [{ port: [1] }, 'PORT (SPDT_CONFIG): not a string'],
      [{ spotify: {} }, 'SPDT_CONFIG spotify: not an array'],
      [{ spotify: [{ token: 't' }] }, 'SPDT_CONFIG spotify[0].connection_id: required'],
      [{ spotify: [{ connection_id: 'c' }] }, 'SPDT_CONFIG spotify[0].token: required'],
      [{ spotify: [{ connection_id: 'c', token: 't', keys: [] }] }, 'spotify[0].keys'],
      [{ spotify: [{ connection_id: 'c', token: 't', custom: { quiz: 'PURCHASE' } }] }, 'spotify[0].custom'],
      [{ spotify: [{ connection_id: 'c', token: 't', url: 'nope' }] }, 'spotify[0].url'],
      [{ spotify: [{ connection_id: 'c', token: 't', tokne: 'x' }] }, 'spotify[0]: unknown field "tokne"'],
      [{ spotify: [{ connection_id: 'c', token: 't' }, { connection_id: 'c', token: 'u' }] }, 'listed twice'],
    ])('refuses %j', (content, message) => {
      expect(error({ SPDT_CONFIG: file(content) })).toContain(message);
    });

    it('never quotes the file (it holds tokens) when the JSON is broken', () => {
      expect(error({ SPDT_CONFIG: file('{"spotify":[{"token":"tok-very-secret"') })).not.toContain('secret');
    });
  });
});

describe('createLogger', () => {
  it('writes one JSON line per call, without identifier fields or secrets', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), secrets: ['tok-very-secret'] });
    log.error('relay failed: bearer tok-very-secret refused', { ip: '203.0.113.7', uid: 'u', status: 401, error: new Error('boom') });
    log.info('listening', { port: 8080 });
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]);
    expect(first).toMatchObject({ level: 'error', msg: 'relay failed: bearer [redacted] refused', status: 401, error: { message: 'boom' } });
    expect(lines[0]).not.toMatch(/203\.0\.113|"uid"|tok-very-secret/);
  });
  it('honours the level', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: 'warn' });
    log.info('x');
    log.warn('y');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['y']);
  });
});
