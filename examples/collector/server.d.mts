// Types for server.mjs, so TypeScript code (the tests) can import it.
export interface StartServerOptions {
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to bind. Default '127.0.0.1'. */
  host?: string;
  /** Where events.jsonl lives. Default $SPDT_DATA_DIR or <root>/.data. */
  dataDir?: string;
  /** Repository root for /dist/* and /examples/*. Default: two levels above server.mjs. */
  root?: string;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  port: number;
  /** Stops listening and ends open event streams. */
  close(): Promise<void>;
}

export function startServer(options?: StartServerOptions): Promise<RunningServer>;
