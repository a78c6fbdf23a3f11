/**
 * Switchboard's history recovery for pusher-js (and Laravel Echo, which drives pusher-js),
 * without a fork. On channels that keep history, Switchboard adds a `position` to each event
 * frame, which pusher-js drops; this helper reads it from the raw frames, remembers the last one
 * per channel, and adds it as `since` to the `pusher:subscribe` pusher-js sends again after a
 * reconnect. The server then replays what was missed, in order, before live messages, and the
 * application's bindings receive those events like any others. When the history no longer
 * reaches back, `onRecoveryFailed` tells the application to reload that channel's state.
 */

/** A message's place in its channel's history. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

export interface RecoveryFailure {
  readonly channel: string;
  /** The channel's newest position now (undefined when its history could not be read). */
  readonly position: Position | undefined;
}

export interface RecoveryOptions {
  /** The channel is live again but messages since its last position are lost: reload its state. */
  readonly onRecoveryFailed?: (failure: RecoveryFailure) => void;
  /** The missed messages of `channel` follow, in order, before its live ones. */
  readonly onRecovered?: (channel: string, since: Position) => void;
}

export interface PusherRecovery {
  /** The last position seen on a channel (undefined for channels without history). */
  position(channel: string): Position | undefined;
  /** Takes the helper off the client: subscribes are sent as pusher-js builds them again. */
  stop(): void;
}

type Listener = (...args: never[]) => void;

/** pusher-js's event emitters, as far as this helper uses them. */
interface Emitter {
  bind(event: string, callback: Listener): unknown;
  unbind(event?: string, callback?: Listener): unknown;
}

/**
 * The parts of a pusher-js `Pusher` this helper touches: `send_event` (which every
 * `pusher:subscribe` goes through), the connection's events, and the current transport, whose
 * `message` event hands over each raw frame.
 */
export interface PusherLike {
  send_event(event: string, data: unknown, channel?: string): boolean;
  readonly connection: Emitter & {
    readonly state: string;
    readonly connection?: { readonly transport?: Emitter | null } | null;
  };
}

/** Adds recovery to `pusher`; call it before subscribing (right after `new Pusher(…)`). */
export function withRecovery(pusher: PusherLike, options: RecoveryOptions = {}): PusherRecovery {
  const positions = new Map<string, Position>();
  const watched = new WeakSet<object>();
  const original = pusher.send_event.bind(pusher);

  const onFrame = (message: { readonly data?: unknown }): void => {
    const text = message.data;
    // Most frames carry neither field: skip them without parsing.
    if (typeof text !== 'string' || (!text.includes('"position"') && !text.includes('"recovered"'))) return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    const channel = frame.channel;
    if (typeof channel !== 'string') return;
    const position = asPosition(frame.position);
    if (frame.event === 'pusher_internal:subscription_succeeded') {
      if (frame.recovered === true) {
        const since = positions.get(channel);
        if (since) options.onRecovered?.(channel, since);
        return; // the replay that follows moves the position on
      }
      if (position) positions.set(channel, position);
      else positions.delete(channel);
      if (frame.recovered === false) options.onRecoveryFailed?.({ channel, position });
      return;
    }
    if (!position) return;
    const last = positions.get(channel);
    if (!last || last.epoch !== position.epoch || position.offset > last.offset) positions.set(channel, position);
  };

  // Each reconnect is a new transport: listen to its raw frames. pusher-js bound its own
  // listener first, so the application's handlers have run when a position is taken.
  const watchTransport = (): void => {
    const transport = pusher.connection.connection?.transport;
    if (!transport || watched.has(transport)) return;
    watched.add(transport);
    transport.bind('message', onFrame);
  };
  pusher.connection.bind('connected', watchTransport);
  if (pusher.connection.state === 'connected') watchTransport();

  pusher.send_event = (event: string, data: unknown, channel?: string): boolean => {
    if (!isObject(data) || typeof data.channel !== 'string') return original(event, data, channel);
    const since = positions.get(data.channel);
    if (event === 'pusher:unsubscribe') positions.delete(data.channel);
    const sent = event === 'pusher:subscribe' && since ? { ...data, since } : data;
    return original(event, sent, channel);
  };

  return {
    position: (channel) => positions.get(channel),
    stop: () => {
      pusher.send_event = original;
      pusher.connection.unbind('connected', watchTransport);
      pusher.connection.connection?.transport?.unbind('message', onFrame);
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asPosition(value: unknown): Position | undefined {
  if (!isObject(value)) return undefined;
  const { epoch, offset } = value;
  return typeof epoch === 'string' && typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? { epoch, offset } : undefined;
}
