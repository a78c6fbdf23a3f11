/** Refused connection metadata: not JSON, or larger than the bound. */
export class MetadataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataError';
  }
}

/**
 * The application's data for a connection, as it will be kept: a JSON copy (so a later change
 * to the caller's object cannot grow it past the bound, and it can travel to other nodes in an
 * info answer), checked against `maxBytes` of JSON. `undefined` clears it.
 */
export function boundedMetadata(value: unknown, maxBytes: number): unknown {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new MetadataError(`connection metadata must serialise to JSON: ${(err as Error).message}`);
  }
  // JSON.stringify answers undefined for a function or a symbol, which would be lost silently.
  if (text === undefined) throw new MetadataError(`connection metadata must serialise to JSON (got a ${typeof value})`);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) {
    throw new MetadataError(`connection metadata is ${bytes} bytes as JSON; the limit is ${maxBytes} (maxConnectionMetadataBytes)`);
  }
  return JSON.parse(text) as unknown;
}
