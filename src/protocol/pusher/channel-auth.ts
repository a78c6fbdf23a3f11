import type { App } from '../../core/app.js';
import type { SignedInUser } from '../../core/connection.js';
import type { PresenceMember } from '../../core/hub.js';
import { hmacSha256HexMatches } from '../../util/hmac.js';
import { jsonText } from '../../util/json.js';

/** The member a presence subscribe's `channel_data` names, or why it is refused. */
export function presenceMember(app: App, user: SignedInUser | undefined, channelData: string): PresenceMember | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return 'channel_data must be JSON';
  }
  const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  const rawId = obj?.user_id;
  if ((typeof rawId !== 'string' && typeof rawId !== 'number') || rawId === '') return 'channel_data.user_id must be a non-empty string';
  // A 64-bit id sent as a JSON number has already lost its last digits here: refuse it rather
  // than list a member the backend cannot recognise.
  if (typeof rawId === 'number' && !Number.isSafeInteger(rawId)) return 'channel_data.user_id must be a string or an integer below 2^53 (send larger ids as strings)';
  const userId = String(rawId);
  if (userId.length > app.maxUserIdLength) return `channel_data.user_id is longer than ${app.maxUserIdLength} characters`;
  // A signed-in user's info stands in when the channel auth gives none (Pusher's rule).
  const info = obj?.user_info ?? (user?.id === userId ? user.info : undefined);
  if (info !== undefined) {
    const text = jsonText(info);
    if (text === undefined) return 'channel_data.user_info is nested too deeply';
    if (Buffer.byteLength(text) > app.maxPresenceUserInfoBytes) return `channel_data.user_info is larger than ${app.maxPresenceUserInfoBytes} bytes`;
  }
  return { userId, info };
}

/** Whether `auth` (`key:signature`) is the app's HMAC-SHA256 of `toSign`: a channel or sign-in signature. */
export function validSignature(app: App, auth: unknown, toSign: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon < 0 || auth.slice(0, colon) !== app.key) return false;
  return hmacSha256HexMatches(app.secret, toSign, auth.slice(colon + 1));
}
