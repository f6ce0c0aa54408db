/**
 * The collector's logger: one JSON line per problem (SPEC §8), on stderr by default.
 *
 * It must never carry a token or an identifier. Callers log what happened and counts, never a
 * request's IP, uid, email hash or body; as a safety net this logger also drops fields whose name
 * says they hold one, and replaces any configured secret that slipped into a message.
 */
import type { Logger } from './context.js';

export interface LoggerOptions {
  /** Where each line goes (default: stderr). */
  write?: (line: string) => void;
  /** Values that must never appear (the configured tokens): replaced by `[redacted]`. */
  secrets?: (string | undefined)[];
  /** `warn` logs warnings and errors only; `silent` nothing (tests). Default `info`. */
  level?: 'info' | 'warn' | 'silent';
}

/** Field names that hold identifiers or secrets: dropped whatever their value. */
const FORBIDDEN = /^(ip|ips|uid|sid|cid|email|phone|phone_number|hashed_\w*|alias|token|authorization|cookie|user_agent|body|events?|url|referrer|headers?)$/i;

const LEVELS = { info: 0, warn: 1, error: 2 } as const;

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const secrets = (options.secrets ?? []).filter((s): s is string => !!s && s.length >= 4);
  const threshold = options.level == 'silent' ? 3 : options.level == 'warn' ? 1 : 0;
  const scrub = (text: string) => secrets.reduce((t, s) => t.split(s).join('[redacted]'), text);

  const line = (level: keyof typeof LEVELS) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg };
    for (const [name, value] of Object.entries(fields ?? {})) {
      if (FORBIDDEN.test(name) || name in entry) continue;
      entry[name] = value instanceof Error ? { name: value.name, message: value.message, code: (value as NodeJS.ErrnoException).code } : value;
    }
    let text: string;
    try {
      text = JSON.stringify(entry);
    } catch {
      text = JSON.stringify({ time: entry.time, level, msg });
    }
    write(scrub(text));
  };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}
