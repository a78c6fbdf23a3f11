/** What a channel's name says about it. Parsed once per channel, then kept on its state. */
export interface ChannelKind {
  readonly isPrivate: boolean; // needs a signature (private-, presence- and their variants)
  readonly isPresence: boolean;
  readonly isEncrypted: boolean;
  readonly isCache: boolean;
  /** `#server-to-user-{id}`: only that signed-in user may subscribe. */
  readonly serverToUser: string | undefined;
}

const SERVER_TO_USER = '#server-to-user-';
const NAME_PATTERN = /^[A-Za-z0-9_\-=@,.;]+$/;

export function channelKind(name: string): ChannelKind {
  if (name.startsWith(SERVER_TO_USER)) {
    return {
      isPrivate: false,
      isPresence: false,
      isEncrypted: false,
      isCache: false,
      serverToUser: name.slice(SERVER_TO_USER.length),
    };
  }
  const isPresence = name.startsWith('presence-');
  const isEncrypted = name.startsWith('private-encrypted-');
  const isPrivate = isPresence || name.startsWith('private-');
  const isCache =
    name.startsWith('cache-') ||
    name.startsWith('private-cache-') ||
    name.startsWith('private-encrypted-cache-') ||
    name.startsWith('presence-cache-');
  return { isPrivate, isPresence, isEncrypted, isCache, serverToUser: undefined };
}

/**
 * A channel name is valid when it uses Pusher's character set and fits the app's length
 * limit; `#server-to-user-{id}` is the one reserved name outside that set.
 */
export function isValidChannelName(name: unknown, maxLength: number): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > maxLength) return false;
  if (name.startsWith(SERVER_TO_USER)) return name.length > SERVER_TO_USER.length;
  return NAME_PATTERN.test(name);
}

/** Control characters (NUL included, which separates keys in the hub's state). */
// eslint-disable-next-line no-control-regex -- control characters are what this pattern finds
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Native clients name channels as the systems they come from do: any text (`chat:42`,
 * `orders/7`, `salle-été`) but control characters, within the length limit. Names starting with
 * `#` are the server's own. Pusher clients cannot subscribe to names outside Pusher's set.
 */
export function isValidNativeChannelName(name: unknown, maxLength: number): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= maxLength && !name.startsWith('#') && !CONTROL_CHARACTER.test(name);
}

export function serverToUserChannel(userId: string): string {
  return SERVER_TO_USER + userId;
}

const SOCKET_CHANNEL = '#socket-';

/** A pseudo-channel that reaches one connection, so direct sends travel the same bus as broadcasts. */
export function socketChannel(socketId: string): string {
  return SOCKET_CHANNEL + socketId;
}

/**
 * A pseudo-channel that reaches every connection of the app (embedding `broadcastAll`). A node
 * that predates it finds no subscribers of `#all` and delivers nothing, which is safe.
 */
export const ALL_CONNECTIONS_CHANNEL = '#all';

/** Direct-delivery channels (`#...`) name a user, a socket or every connection instead of subscribers. */
export function directTarget(name: string): { user: string } | { socket: string } | { all: true } | undefined {
  if (name.charCodeAt(0) !== 35 /* # */) return undefined;
  if (name === ALL_CONNECTIONS_CHANNEL) return { all: true };
  if (name.startsWith(SERVER_TO_USER)) return { user: name.slice(SERVER_TO_USER.length) };
  if (name.startsWith(SOCKET_CHANNEL)) return { socket: name.slice(SOCKET_CHANNEL.length) };
  return undefined;
}

/**
 * Event names Pusher clients act on themselves (`pusher:error`, `pusher_internal:member_removed`…):
 * nobody but the server may send them, whichever way an event comes in.
 */
export function isReservedEventName(name: string): boolean {
  return name.startsWith('pusher:') || name.startsWith('pusher_internal:');
}
