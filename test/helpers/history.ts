/** The history rule of the resume tests: `chat-*` channels keep their last 100 messages for a minute. */
export const CHAT_HISTORY = [{ channels: 'chat-*', size: 100, ttlSeconds: 60 }];

/** The payloads `{ i }` for i in from..to, as the resume tests publish them. */
export function numbered(from: number, to: number): Array<{ i: number }> {
  return Array.from({ length: to - from + 1 }, (_, k) => ({ i: from + k }));
}

/** Fresh channel names under the rule (`chat-1`, `chat-2`, …), one sequence per suite. */
export function chatChannels(): () => string {
  let n = 0;
  return () => `chat-${(n += 1)}`;
}
