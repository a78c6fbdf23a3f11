/**
 * pusher-js over wss:// in a process of its own, so that NODE_EXTRA_CA_CERTS (read at start-up
 * only) can make it trust the test's root certificate the way a machine's trust store would.
 * argv: port, app key, channel. Prints one JSON line per step: connected, subscribed, each event.
 */
import { PusherJs } from './clients.js';

const [port, key, channel] = process.argv.slice(2) as [string, string, string];
const say = (line: object): boolean => process.stdout.write(`${JSON.stringify(line)}\n`);
const client = new PusherJs(key, { cluster: 'local', wsHost: '127.0.0.1', wssPort: Number(port), forceTLS: true, enabledTransports: ['ws'], disableStats: true });
client.connection.bind('connected', () => say({ connected: client.connection.socket_id }));
client.connection.bind('error', (err: unknown) => say({ error: JSON.stringify(err) }));
const subscription = client.subscribe(channel);
subscription.bind('pusher:subscription_succeeded', () => say({ subscribed: channel }));
subscription.bind_global((event: string, data: unknown) => {
  if (!event.startsWith('pusher:')) say({ event, data });
});
process.on('SIGTERM', () => {
  client.disconnect();
  process.exit(0);
});
