/**
 * Offline and online again for a WebKit context, which WebDriver cannot emulate: each context's
 * driver and browser run in a network namespace of their own (`unshare --net`; not as root, inside
 * a user namespace too), whose only network is its loopback with a default route over it.
 * WebKitGTK's navigator.onLine is GLib's network monitor, "available" while there is a default
 * route: taking the route away takes the page offline (an `offline` event, navigator.onLine false)
 * and putting it back brings it online, while the harness itself keeps reaching the browser. The
 * namespace's one process (./offline-namespace.mjs) passes connections across: the harness's
 * WebDriver calls in, the browser's requests out to the context's proxy, which fails them while
 * offline (./proxy.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const REPLY_MS = 10_000;
const NAMESPACE_PROCESS = fileURLToPath(new URL('./offline-namespace.mjs', import.meta.url));

type Reply = { ready?: true; online?: boolean; listening?: number; accepted?: number; failed?: string };

export interface ContextNetwork {
  /** The command line that runs `command` inside the namespace. */
  inside(command: string, args: string[]): [string, string[]];
  /** Makes `port` inside the namespace reachable at the same port on this machine's loopback. */
  expose(port: number): Promise<void>;
  /** Makes `port` on this machine's loopback reachable at the same port inside the namespace. */
  reach(port: number): Promise<void>;
  /** Puts the namespace's default route back (online) or takes it away (offline). */
  setOnline(online: boolean): Promise<void>;
  close(): void;
}

function pipe(a: net.Socket, b: net.Socket) {
  a.pipe(b).pipe(a);
  for (const [x, y] of [[a, b], [b, a]]) {
    x.on('error', () => y.destroy());
    x.on('close', () => y.destroy());
  }
}

const failure = (what: string, reason: string) =>
  new Error(
    what === 'start'
      ? `WebKit harness: no network namespace for the browser (${reason}). It needs util-linux's unshare and nsenter, iproute2's ip, and root or user namespaces.`
      : `WebKit harness: the browser's network namespace, ${what}: ${reason}`,
  );

export async function openNetwork(): Promise<ContextNetwork> {
  // Not root: a user namespace of its own too, where this user may configure the network.
  const user = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  const namespace: ChildProcess = spawn('unshare', [...user, '--net', process.execPath, NAMESPACE_PROCESS], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  namespace.stderr!.on('data', (d) => (stderr += d));
  const stop = () => namespace.kill();
  process.once('exit', stop);
  namespace.once('exit', () => process.off('exit', stop));
  // A send to a namespace that has died emits 'error': reported by the next answer(), never a crash.
  namespace.on('error', () => {});

  /** The namespace's answer to the last request: the first reply `wanted` accepts. */
  const answer = (what: string, wanted: (r: Reply) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        namespace.off('message', heard);
        namespace.off('exit', ended);
        namespace.off('error', ended);
        error ? reject(error) : resolve();
      };
      const heard = (r: Reply) => (r.failed ? done(failure(what, r.failed)) : wanted(r) && done());
      const ended = (e?: unknown) => done(failure(what, e instanceof Error ? e.message : `unshare ended: ${stderr.trim() || 'no reason given'}`));
      const timer = setTimeout(() => done(failure(what, `no answer in ${REPLY_MS} ms`)), REPLY_MS);
      namespace.on('message', heard);
      namespace.once('exit', ended);
      namespace.once('error', ended);
    });

  await answer('start', (r) => !!r.ready).catch((error) => {
    stop();
    throw error;
  });
  const exposed: net.Server[] = [];
  namespace.on('message', (r: Reply, socket?: net.Socket) => {
    if (r.accepted && socket) pipe(socket, net.connect(r.accepted, '127.0.0.1'));
  });

  return {
    inside: (command, args) => [
      'nsenter',
      [...(user.length ? [`--user=/proc/${namespace.pid}/ns/user`, '--preserve-credentials'] : []), `--net=/proc/${namespace.pid}/ns/net`, '--', command, ...args],
    ],
    async expose(port) {
      const server = net.createServer({ pauseOnConnect: true }, (socket) => namespace.send({ connect: port }, socket));
      exposed.push(server);
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    },
    async reach(port) {
      const listening = answer(`listen on ${port}`, (r) => r.listening === port);
      namespace.send({ listen: port });
      await listening;
    },
    async setOnline(online) {
      const done = answer(online ? 'online' : 'offline', (r) => r.online === online);
      namespace.send({ online });
      await done;
    },
    close() {
      for (const server of exposed) server.close();
      namespace.kill();
    },
  };
}

/**
 * Where no namespace can be made (a container without the right to make one): the context uses
 * this machine's network as it is, and only going offline fails, saying why.
 */
export function hostNetwork(why: Error): ContextNetwork {
  return {
    inside: (command, args) => [command, args],
    expose: async () => {},
    reach: async () => {},
    setOnline: async () => {
      throw why;
    },
    close: () => {},
  };
}
