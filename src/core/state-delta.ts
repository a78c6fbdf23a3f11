import type { ChannelMessage } from './message.js';

/**
 * What one node owns of the cluster-wide state, as absolute values: replaying a delta is
 * harmless, and a node's whole share can be re-sent after an engine restart.
 */
export type StateDelta =
  | { readonly kind: 'subscriptions'; readonly appId: string; readonly channel: string; readonly count: number }
  | {
      readonly kind: 'presence';
      readonly appId: string;
      readonly channel: string;
      readonly userId: string;
      /** This node's sockets of the user in the channel; only 0 and >0 matter to others. */
      readonly count: number;
      readonly info?: unknown;
    }
  | { readonly kind: 'user'; readonly appId: string; readonly userId: string; readonly count: number }
  | { readonly kind: 'connections'; readonly appId: string; readonly count: number }
  | { readonly kind: 'cache'; readonly appId: string; readonly message: ChannelMessage; readonly expiresAt: number };
