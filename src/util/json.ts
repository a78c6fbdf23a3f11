/**
 * JSON text of a value that came from a client, or undefined when it has none: JSON.parse
 * accepts any nesting depth, but JSON.stringify recurses and throws a RangeError on what a few
 * kilobytes of brackets can build.
 */
export function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** A short, printable account of a client's value for an error message. */
export function describeValue(value: unknown, maxLength = 210): string {
  return (jsonText(value) ?? `a deeply nested ${Array.isArray(value) ? 'array' : typeof value}`).slice(0, maxLength);
}
