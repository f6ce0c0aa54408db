/**
 * The collector's configuration (SPEC §8, §9): environment variables, and the JSON file named by
 * `SPDT_CONFIG` for the same settings plus a list of Spotify connections.
 *
 * The file's scalar settings may be spelled as the environment variable (`"SPDT_COOKIE_DAYS": 30`)
 * or in lower case without the `SPDT_` prefix (`"cookie_days": 30`, `"port": 8081`); the
 * environment wins over the file. `"spotify": [{connection_id, token, keys, custom, url}]` adds
 * connections to the one the environment names (both are used). An unknown key in the file is an
 * error: a typo must not silently leave a setting at its default.
 *
 * A bad value throws a `ConfigError` that names the variable and why, never the value (it may be a
 * token); the CLI prints it and exits 2.
 */
import { readFileSync } from 'node:fs';
import type { Config, Connection, Role } from './context.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_SPOTIFY_URL = 'https://capi.spotify.com/capi-direct/events/';

/** Every scalar setting, by its environment name; the file's lower-case name is derived from it. */
const SETTINGS = [
  'PORT',
  'HOST',
  'SPDT_DATA_DIR',
  'DATABASE_URL',
  'SPDT_ADMIN_TOKEN',
  'SPDT_SERVER_TOKEN',
  'SPDT_TRUST_PROXY',
  'SPDT_COOKIE_DOMAIN',
  'SPDT_COOKIE_DAYS',
  'SPDT_ROLE',
  'SPDT_SPOTIFY_CONNECTION_ID',
  'SPDT_SPOTIFY_TOKEN',
  'SPDT_SPOTIFY_KEYS',
  'SPDT_SPOTIFY_CUSTOM',
  'SPDT_SPOTIFY_URL',
  'SPDT_RELAY_BATCH',
  'SPDT_RELAY_RETRY_MS',
  'SPDT_RELAY_MAX_AGE',
  'SPDT_RELAY_LEASE_MS',
] as const;
type Setting = (typeof SETTINGS)[number];

/** `SPDT_COOKIE_DAYS` → `cookie_days`, `DATABASE_URL` → `database_url`. */
const fileName = (setting: Setting) => setting.replace(/^SPDT_/, '').toLowerCase();
const BY_FILE_NAME = new Map<string, Setting>(SETTINGS.flatMap((s) => [[s, s], [fileName(s), s]] as [string, Setting][]));

type Source = Partial<Record<Setting, string>>;
type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const file = env.SPDT_CONFIG ? readConfigFile(env.SPDT_CONFIG) : { settings: {}, spotify: [] };
  // The environment wins over the file; an empty variable counts as unset.
  const values: Source = { ...file.settings };
  for (const setting of SETTINGS) if (env[setting]) values[setting] = env[setting];
  const from = (setting: Setting) => (env[setting] ? setting : `${setting} (SPDT_CONFIG)`);
  const read = <T>(setting: Setting, fallback: T, parse: (v: string) => T | undefined, why: string): T => {
    const raw = values[setting];
    if (raw === undefined) return fallback;
    const parsed = parse(raw);
    if (parsed === undefined) throw new ConfigError(`${from(setting)}: ${why}`);
    return parsed;
  };

  const spotifyUrl = read('SPDT_SPOTIFY_URL', DEFAULT_SPOTIFY_URL, httpUrl, 'not an http(s) URL');
  const connections = file.spotify.map((c, i) => fileConnection(c, i, spotifyUrl));
  const id = values.SPDT_SPOTIFY_CONNECTION_ID;
  const token = values.SPDT_SPOTIFY_TOKEN;
  if (!id !== !token) {
    const missing: Setting = id ? 'SPDT_SPOTIFY_TOKEN' : 'SPDT_SPOTIFY_CONNECTION_ID';
    throw new ConfigError(`${missing}: required with ${id ? 'SPDT_SPOTIFY_CONNECTION_ID' : 'SPDT_SPOTIFY_TOKEN'}`);
  }
  if (id && token) {
    connections.unshift({
      connection_id: read('SPDT_SPOTIFY_CONNECTION_ID', '', nonEmpty, 'empty'),
      token: read('SPDT_SPOTIFY_TOKEN', '', bearer, 'not printable ASCII without spaces'),
      keys: read('SPDT_SPOTIFY_KEYS', undefined, keyList, 'not a comma-separated list of pixel keys'),
      custom: read('SPDT_SPOTIFY_CUSTOM', {}, customSlots, 'not name=CUSTOM_EVENT_N,… (N from 1 to 5)'),
      url: spotifyUrl,
    });
  } else {
    for (const s of ['SPDT_SPOTIFY_KEYS', 'SPDT_SPOTIFY_CUSTOM'] as const)
      if (values[s] !== undefined) throw new ConfigError(`${from(s)}: needs SPDT_SPOTIFY_CONNECTION_ID and SPDT_SPOTIFY_TOKEN`);
  }
  const seen = new Set<string>();
  for (const c of connections) {
    if (seen.has(c.connection_id)) throw new ConfigError('SPDT_CONFIG spotify: a connection_id is listed twice');
    seen.add(c.connection_id);
  }

  return {
    port: read('PORT', 8080, integer(0, 65535), 'not an integer from 0 to 65535'),
    host: read('HOST', '127.0.0.1', nonEmpty, 'empty'),
    dataDir: read('SPDT_DATA_DIR', './.data', nonEmpty, 'empty'),
    databaseUrl: read('DATABASE_URL', undefined, (v) => (/^postgres(ql)?:\/\/./.test(v) ? v : undefined), 'not a postgres:// URL'),
    adminToken: read('SPDT_ADMIN_TOKEN', undefined, bearer, 'not printable ASCII without spaces'),
    serverToken: read('SPDT_SERVER_TOKEN', undefined, bearer, 'not printable ASCII without spaces'),
    trustProxy: read('SPDT_TRUST_PROXY', false, flag, 'not 0 or 1'),
    cookieDomain: read('SPDT_COOKIE_DOMAIN', undefined, domain, 'not a domain name such as example.com'),
    cookieDays: read('SPDT_COOKIE_DAYS', 365, integer(1, 400), 'not an integer from 1 to 400'),
    role: read('SPDT_ROLE', 'all' as Role, (v) => (['all', 'ingest', 'relay'].includes(v) ? (v as Role) : undefined), 'not all, ingest or relay'),
    connections,
    relay: {
      batch: read('SPDT_RELAY_BATCH', 50, integer(1, 1000), 'not an integer from 1 to 1000'),
      retryMs: read('SPDT_RELAY_RETRY_MS', 1000, integer(1, 300_000), 'not an integer from 1 to 300000'),
      maxAgeSeconds: read('SPDT_RELAY_MAX_AGE', 86_400, integer(1, 365 * 86_400), 'not a whole number of seconds ≥ 1'),
      // Longer than the 10 s request timeout (plus room to split a refused batch), at most SPEC §11's 60 s.
      leaseMs: read('SPDT_RELAY_LEASE_MS', undefined, integer(12_000, 60_000), 'not an integer from 12000 to 60000'),
    },
  };
}

interface ConfigFile {
  settings: Source;
  spotify: unknown[];
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`SPDT_CONFIG: cannot read the file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the file, which may hold a token: say only where.
    throw new ConfigError('SPDT_CONFIG: not valid JSON');
  }
  if (!isObject(json)) throw new ConfigError('SPDT_CONFIG: not a JSON object');
  const settings: Source = {};
  let spotify: unknown[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name == 'spotify') {
      if (!Array.isArray(value)) throw new ConfigError('SPDT_CONFIG spotify: not an array');
      spotify = value;
      continue;
    }
    const setting = BY_FILE_NAME.get(name);
    if (!setting) throw new ConfigError(`SPDT_CONFIG: unknown setting ${JSON.stringify(name.slice(0, 64))}`);
    if (value == null) continue;
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw new ConfigError(`${setting} (SPDT_CONFIG): not a string, number or boolean`);
    settings[setting] = typeof value == 'boolean' ? (value ? '1' : '0') : String(value);
  }
  return { settings, spotify };
}

function fileConnection(entry: unknown, i: number, defaultUrl: string): Connection {
  const where = `SPDT_CONFIG spotify[${i}]`;
  if (!isObject(entry)) throw new ConfigError(`${where}: not an object`);
  for (const name of Object.keys(entry))
    if (!['connection_id', 'token', 'keys', 'custom', 'url'].includes(name)) throw new ConfigError(`${where}: unknown field ${JSON.stringify(name.slice(0, 64))}`);
  const { connection_id, token, keys, custom, url } = entry;
  if (typeof connection_id != 'string' || !connection_id.trim()) throw new ConfigError(`${where}.connection_id: required, a string`);
  if (typeof token != 'string' || !bearer(token.trim())) throw new ConfigError(`${where}.token: required, printable ASCII without spaces`);
  const keyArray = Array.isArray(keys) ? keys : typeof keys == 'string' ? keyList(keys) : keys;
  if (keyArray !== undefined && (!Array.isArray(keyArray) || !keyArray.length || !keyArray.every((k) => typeof k == 'string' && k)))
    throw new ConfigError(`${where}.keys: not a non-empty list of pixel keys`);
  const slots = typeof custom == 'string' ? customSlots(custom) : custom === undefined ? {} : customObject(custom);
  if (!slots) throw new ConfigError(`${where}.custom: not {name: "CUSTOM_EVENT_N"} (N from 1 to 5)`);
  const connectionUrl = url === undefined ? defaultUrl : typeof url == 'string' ? httpUrl(url) : undefined;
  if (!connectionUrl) throw new ConfigError(`${where}.url: not an http(s) URL`);
  return { connection_id: connection_id.trim(), token: token.trim(), keys: keyArray as string[] | undefined, custom: slots, url: connectionUrl };
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v == 'object' && !Array.isArray(v);
const nonEmpty = (v: string) => v.trim() || undefined;
/** A bearer token: printable ASCII without spaces, as an Authorization header can carry it. */
const bearer = (v: string) => (/^[\x21-\x7e]+$/.test(v) ? v : undefined);
const flag = (v: string) => ({ '1': true, true: true, '0': false, false: false })[v.trim().toLowerCase()];

const integer = (min: number, max: number) => (v: string) => {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return n >= min && n <= max ? n : undefined;
};

function httpUrl(v: string): string | undefined {
  try {
    const url = new URL(v);
    return url.protocol == 'https:' || url.protocol == 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** `.Example.COM` → `example.com`: a host name with at least one dot, no port, no scheme. */
function domain(v: string): string | undefined {
  const d = v.trim().toLowerCase().replace(/^\./, '');
  return /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(d) ? d : undefined;
}

function keyList(v: string): string[] | undefined {
  const keys = v.split(',').map((k) => k.trim()).filter(Boolean);
  return keys.length ? keys : undefined;
}

const SLOT = /^CUSTOM_EVENT_[1-5]$/;

/** `signup_newsletter=CUSTOM_EVENT_1,quiz=CUSTOM_EVENT_2` → `{signup_newsletter: 'CUSTOM_EVENT_1', …}`. */
function customSlots(v: string): Record<string, string> | undefined {
  const slots: Record<string, string> = Object.create(null);
  for (const pair of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, slot, extra] = pair.split('=').map((s) => s.trim());
    if (!name || extra !== undefined || !SLOT.test(slot?.toUpperCase() ?? '')) return undefined;
    slots[name] = slot.toUpperCase();
  }
  return { ...slots };
}

function customObject(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const slots: Record<string, string> = {};
  for (const [name, slot] of Object.entries(v)) {
    if (typeof slot != 'string' || !SLOT.test(slot.toUpperCase())) return undefined;
    slots[name] = slot.toUpperCase();
  }
  return slots;
}
