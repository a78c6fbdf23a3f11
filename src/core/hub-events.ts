/**
 * Things that happened on the hub that a backend may want to hear about (Pusher's webhook
 * events). Occupancy and membership events are raised by the node whose own change made the
 * cluster-wide transition, so one transition is reported once while nodes agree.
 */
export type HubEvent =
  | { readonly name: 'channel_occupied'; readonly channel: string }
  | { readonly name: 'channel_vacated'; readonly channel: string }
  | { readonly name: 'member_added'; readonly channel: string; readonly userId: string }
  | { readonly name: 'member_removed'; readonly channel: string; readonly userId: string }
  | {
      readonly name: 'client_event';
      readonly channel: string;
      readonly event: string;
      readonly data: string;
      readonly socketId: string;
      readonly userId?: string | undefined;
    }
  | { readonly name: 'cache_miss'; readonly channel: string };

export type HubEventListener = (appId: string, event: HubEvent) => void;
