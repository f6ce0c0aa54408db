/**
 * The one process the WebKit harness starts inside a browser context's own network namespace
 * (`unshare --net`, see ./offline.ts); the context's WebDriver and browser are started next to it.
 * It brings the namespace's loopback up with a default route over it, which is all GLib's network
 * monitor, and so WebKit's navigator.onLine, asks of "online" (the pages reach this machine's test
 * servers through the harness's proxy, never through that route). Over its IPC channel it
 *  - takes the route away and puts it back (`{ online }`), which flips navigator.onLine,
 *  - hands over each connection made to a port here (`{ listen }`: the proxy's) to the harness,
 *  - connects a socket the harness hands in to a port here (`{ connect }`: the driver's).
 * It ends with the harness (its IPC channel closing), and the namespace with it and the browser.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const reply = (message, socket) => process.send(message, socket);

/** Every failure goes back to the harness as its message, naming the step. */
function step(name, run) {
  try {
    run();
    return true;
  } catch (e) {
    reply({ failed: `${name}: ${String(e.stderr || e.message).trim()}` });
    return false;
  }
}

function pipe(a, b) {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

let online = false;
const setOnline = (wanted) =>
  step(`ip route ${wanted ? 'add' : 'del'} default dev lo`, () => {
    if (wanted !== online) ip('route', wanted ? 'add' : 'del', 'default', 'dev', 'lo');
    online = wanted;
  });

process.on('message', (message, socket) => {
  if ('online' in message && setOnline(message.online)) reply({ online });
  if (message.listen)
    net
      .createServer({ pauseOnConnect: true }, (accepted) => reply({ accepted: message.listen }, accepted))
      .on('error', (e) => reply({ failed: `listen on ${message.listen}: ${e.message}` }))
      .listen(message.listen, '127.0.0.1', () => reply({ listening: message.listen }));
  if (message.connect && socket) pipe(socket, net.connect(message.connect, '127.0.0.1'));
});
process.on('disconnect', () => process.exit());

if (step('ip link set lo up', () => ip('link', 'set', 'lo', 'up')) && setOnline(true)) reply({ ready: true });
