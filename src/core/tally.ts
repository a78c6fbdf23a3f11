/**
 * Counts per key contributed by several nodes, with the totals kept as contributions change.
 * Each node owns its own contributions, so a node that leaves takes exactly them away.
 */
export class NodeTally {
  private readonly totals = new Map<string, number>();
  private readonly byNode = new Map<string, Map<string, number>>();

  /** Sets `node`'s count for `key`; returns the cluster total before and after. */
  set(node: string, key: string, count: number): [before: number, after: number] {
    let own = this.byNode.get(node);
    const previous = own?.get(key) ?? 0;
    const before = this.totals.get(key) ?? 0;
    if (previous === count) return [before, before];
    if (count === 0) own?.delete(key);
    else {
      if (!own) this.byNode.set(node, (own = new Map<string, number>()));
      own.set(key, count);
    }
    if (own && own.size === 0) this.byNode.delete(node);
    const after = before - previous + count;
    if (after === 0) this.totals.delete(key);
    else this.totals.set(key, after);
    return [before, after];
  }

  total(key: string): number {
    return this.totals.get(key) ?? 0;
  }

  /** Keys whose total is above zero. */
  keys(): IterableIterator<string> {
    return this.totals.keys();
  }

  /** `node`'s own contributions. */
  entriesOf(node: string): IterableIterator<[string, number]> {
    return (this.byNode.get(node) ?? new Map<string, number>()).entries();
  }

  /** Removes everything `node` contributed; returns the keys whose total changed. */
  dropNode(node: string): Array<[key: string, before: number, after: number]> {
    const own = this.byNode.get(node);
    if (!own) return [];
    const changes: Array<[string, number, number]> = [];
    for (const key of [...own.keys()]) changes.push([key, ...this.set(node, key, 0)]);
    return changes;
  }

  nodes(): IterableIterator<string> {
    return this.byNode.keys();
  }
}
