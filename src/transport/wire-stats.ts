/** What went over one app's WebSocket connections of one protocol on this node (monotonic). */
export class WireStats {
  opened = 0;
  messagesIn = 0;
  bytesIn = 0;
  /** Frames handed to sockets (a turn's frames for one socket count one by one), and their bytes. */
  messagesOut = 0;
  bytesOut = 0;
  /** Close code (or OTHER_CODE) → connections closed with it. */
  readonly closed = new Map<string, number>();
}

/** Close codes a client may choose freely (3000-4999) are counted under this label, not one each. */
export const OTHER_CODE = 'other';
/** Apps past the table's cap are counted together under this app id. */
export const OTHER_APPS = '_other';

/**
 * The WireStats of every app and protocol, with a cap on the apps: an app store with many apps
 * (or a client naming app after app) must not grow the metrics without bound.
 */
export class WireStatsTable {
  private readonly byApp = new Map<string, Map<string, WireStats>>();

  constructor(private readonly maxApps: number) {}

  for(appId: string, protocol: string): WireStats {
    let byProtocol = this.byApp.get(appId);
    if (!byProtocol) {
      if (this.byApp.size >= this.maxApps && appId !== OTHER_APPS) return this.for(OTHER_APPS, protocol);
      this.byApp.set(appId, (byProtocol = new Map<string, WireStats>()));
    }
    let stats = byProtocol.get(protocol);
    if (!stats) byProtocol.set(protocol, (stats = new WireStats()));
    return stats;
  }

  *entries(): IterableIterator<[appId: string, protocol: string, stats: WireStats]> {
    for (const [appId, byProtocol] of this.byApp) for (const [protocol, stats] of byProtocol) yield [appId, protocol, stats];
  }
}

/** The label of a close code: the standard ones (1000-1015) and the server's own as they are, the rest together. */
export function closeCodeLabel(code: number, sentByServer: boolean): string {
  return sentByServer || (code >= 1000 && code <= 1015) ? String(code) : OTHER_CODE;
}
