// A chat server in one Node process: Switchboard embedded, with hooks that name each
// connection and welcome it, moderate every message before it is delivered (changed, renamed,
// refused or swallowed), and announce who comes and goes.
//
//   npm run build && PORT=6001 node examples/node/moderated-chat.mjs
//
// Clients: native  ws://127.0.0.1:6001/ws?name=alice&format=envelope
//          then    {"action":"subscribe","channel":"chat"}
//                  {"action":"publish","channel":"chat","data":{"text":"hello"}}
//          Pusher  pusher-js with key "chat-key" (client events on private-chat need your auth endpoint)
import { createServer, MetadataError } from 'switchboard'; // the package itself, as an application imports it

const BLOCKED = ['spam-link.example'];
const RUDE = /\b(darn|heck)\b/gi;
const MAX_NAME = 32;

/** A chat message, or why it is refused: the same rules for both protocols. */
function moderate({ connection, data }) {
  const text = typeof data === 'string' ? data : data?.text;
  if (typeof text !== 'string' || text.trim() === '') return { drop: true }; // nothing to say: swallowed
  if (BLOCKED.some((b) => text.includes(b))) return { reject: 'Links to that site are not allowed here' };
  const { name } = connection.metadata ?? {};
  const action = text.startsWith('/me ');
  const said = { from: name ?? 'someone', text: (action ? text.slice(4) : text).replace(RUDE, '***') };
  // "/me waves" goes out as its own event, which clients show differently. A Pusher client
  // event's name must keep its client- prefix; a native one may be any name but pusher:…
  if (action) return { event: connection.protocol === 'pusher' ? 'client-action' : 'action', data: said };
  return { data: said };
}

const port = Number(process.env.PORT ?? 6001);
const sb = await createServer(
  {
    host: '127.0.0.1',
    port,
    logLevel: 'warn',
    hookTimeoutMs: 2_000,
    apps: [{ id: 'chat', key: 'chat-key', secret: 'chat-secret-change-me', clientPublish: true, enableClientMessages: true }],
  },
  {
    hooks: {
      connectionOpened({ connection, url }) {
        const name = new URL(url, 'http://localhost').searchParams.get('name');
        if (!name) return { reject: 'Connect with ?name=<your name>' };
        try {
          connection.setMetadata({ name: name.slice(0, MAX_NAME), since: Date.now() });
        } catch (err) {
          if (err instanceof MetadataError) return { reject: 'That name is too long' };
          throw err;
        }
        // Sent now, delivered once this hook has let the connection in (right after Pusher's
        // pusher:connection_established); a refused connection never gets it.
        sb.sendToConnection(connection.id, JSON.stringify({ from: 'server', text: `Welcome, ${name.slice(0, MAX_NAME)}` }), { event: 'welcome' });
        return undefined;
      },
      subscribed({ connection, channel }) {
        sb.broadcast(channel, JSON.stringify({ from: 'server', text: `${connection.metadata.name} joined` }), { event: 'notice' });
      },
      connectionClosed({ connection }) {
        sb.broadcastAll(JSON.stringify({ from: 'server', text: `${connection.metadata.name} left` }), { event: 'notice' });
      },
      publish: moderate, // native {"action":"publish"}
      clientEvent: moderate, // Pusher client-* events
    },
  },
);
console.log(`moderated chat listening on ${sb.url}`);

const stop = async () => {
  await sb.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
