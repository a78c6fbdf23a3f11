import type { App } from './app.js';
import type { AppStates } from './app-state.js';
import type { MessageBus } from './bus.js';
import type { HubEventListener } from './hub-events.js';

/** What every part of the hub shares: this node's id, the bus, the per-app states, the clock and the webhook hook. */
export interface HubContext {
  readonly self: string;
  readonly bus: MessageBus;
  readonly apps: AppStates;
  readonly appById: (id: string) => App | undefined;
  readonly now: () => number;
  readonly onEvent: HubEventListener;
}
