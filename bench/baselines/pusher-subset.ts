// The slice of the Pusher protocol the bench tool speaks, shared by the baseline servers:
// enough to connect, subscribe and receive REST-published events, nothing more (no auth, no
// signatures, no limits). Baselines exist to show what an engine costs with no features on.

export const CONNECTION_ESTABLISHED = (socketId: string): string =>
  JSON.stringify({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: socketId, activity_timeout: 120 }) });

export const SUBSCRIPTION_SUCCEEDED = (channel: string): string =>
  JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });

export const PONG = JSON.stringify({ event: 'pusher:pong', data: {} });

export type ClientCommand = { kind: 'subscribe'; channel: string } | { kind: 'ping' } | { kind: 'other' };

export function parseClientMessage(text: string): ClientCommand {
  try {
    const msg = JSON.parse(text) as { event?: unknown; data?: { channel?: unknown } };
    if (msg.event === 'pusher:subscribe' && typeof msg.data?.channel === 'string') return { kind: 'subscribe', channel: msg.data.channel };
    if (msg.event === 'pusher:ping') return { kind: 'ping' };
  } catch {
    // not JSON: ignored, as a baseline has no error replies
  }
  return { kind: 'other' };
}

export interface Publication {
  channel: string;
  /** The complete Pusher event JSON a subscriber receives. */
  message: string;
}

/** Events from a REST `events` (one event, several channels) or `batch_events` body; undefined if malformed. */
export function parsePublications(path: string, body: string): Publication[] | undefined {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const events = path.endsWith('/batch_events') ? (parsed.batch as Record<string, unknown>[]) : [parsed];
    const out: Publication[] = [];
    for (const e of events) {
      const channels = Array.isArray(e.channels) ? (e.channels as string[]) : [e.channel as string];
      for (const channel of channels) out.push({ channel, message: JSON.stringify({ event: e.name, channel, data: e.data }) });
    }
    return out;
  } catch {
    return undefined;
  }
}

let nextSocket = 0;
export function newSocketId(): string {
  nextSocket += 1;
  return `${process.pid}.${nextSocket}`;
}

export function listenPort(): number {
  return Number(process.env.PORT ?? 6001);
}

/** Exit cleanly on SIGTERM/SIGINT, so `node --cpu-prof` writes its profile. */
export function exitOnSignals(): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}
