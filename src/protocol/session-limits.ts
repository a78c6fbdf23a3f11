import type { App } from '../core/app.js';
import type { QueuePolicy } from '../transport/seam.js';

const policies = new WeakMap<App, QueuePolicy>();

/** The app's send-queue bounds, as the transport takes them; one shared object per app, not per connection. */
export function queuePolicyFor(app: App): QueuePolicy {
  let policy = policies.get(app);
  if (!policy) {
    policy = { maxBytes: app.maxQueueBytes, maxMessages: app.maxQueueMessages, onFull: app.slowConsumerPolicy, waitMs: app.slowConsumerWaitMs };
    policies.set(app, policy);
  }
  return policy;
}

/**
 * Closes a connection that has not subscribed to anything within the app's idle timeout. One
 * timer per connection, only for apps that ask for it; cleared on the first subscription.
 */
export function watchIdle(app: App, hasSubscribed: () => boolean, close: () => void): NodeJS.Timeout | undefined {
  if (app.idleTimeoutSeconds === 0) return undefined;
  const timer = setTimeout(() => {
    if (!hasSubscribed()) close();
  }, app.idleTimeoutSeconds * 1000);
  timer.unref();
  return timer;
}

/**
 * Closes a Pusher connection that has not signed in within the app's sign-in timeout, for apps
 * that require sign-in (soketi's forced user authentication). Cleared by the session on sign-in.
 */
export function watchSignIn(app: App, close: () => void): NodeJS.Timeout | undefined {
  if (app.signIn !== 'required') return undefined;
  const timer = setTimeout(close, app.signInTimeoutMs);
  timer.unref();
  return timer;
}
