/** decodeURIComponent that gives the segment back unchanged when it is not valid percent-encoding. */
export function decodeOrKeep(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
