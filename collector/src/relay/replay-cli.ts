/**
 * `spdt-collector replay [--event-id ID …]`: dead deliveries (all, or of these events) back to
 * pending with a fresh clock; prints `{"replayed": N}`. A running collector's relay picks them up
 * at its next poll.
 */
import type { Config } from '../context.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';

export const REPLAY_USAGE = 'usage: spdt-collector replay [--event-id ID …]';

/** The event ids named on the command line; undefined: all. Throws on anything else. */
export function parseReplayArgs(argv: string[]): string[] | undefined {
  const ids: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const inline = /^--event-id=(.*)$/.exec(arg);
    const id = inline ? inline[1] : arg == '--event-id' ? argv[++i] : undefined;
    if (id === undefined) throw new Error(arg == '--event-id' ? '--event-id needs an ID' : `unknown argument ${JSON.stringify(arg)}`);
    if (!id) throw new Error('--event-id needs an ID');
    ids.push(id);
  }
  return ids.length ? ids : undefined;
}

/** Runs the subcommand; resolves to the process exit code (0, or 2 for bad arguments, 1 when the store fails). */
export async function runReplay(argv: string[], config: Config, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let ids: string[] | undefined;
  try {
    ids = parseReplayArgs(argv);
  } catch (error) {
    err.write(`${(error as Error).message}\n${REPLAY_USAGE}\n`);
    return 2;
  }
  let store: Store | undefined;
  try {
    store = await openStore(config);
    const replayed = await store.replay(ids);
    out.write(JSON.stringify({ replayed }) + '\n');
    return 0;
  } catch (error) {
    err.write(JSON.stringify({ level: 'error', msg: 'replay failed', error: (error as Error)?.message }) + '\n');
    return 1;
  } finally {
    await store?.close().catch(() => undefined);
  }
}
