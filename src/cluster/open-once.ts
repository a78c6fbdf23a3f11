/**
 * Opens something on first use and keeps it: the NATS stores need the connection that the bus
 * makes at start. A failed open (JetStream not reachable yet) is retried on the next use, not
 * remembered.
 */
export function openOnce<T>(open: () => Promise<T>): { get(): Promise<T>; opened(): Promise<T> | undefined } {
  let value: Promise<T> | undefined;
  return {
    get: () =>
      (value ??= open().catch((err: unknown) => {
        value = undefined;
        throw err;
      })),
    opened: () => value,
  };
}
