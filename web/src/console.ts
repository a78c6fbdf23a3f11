import { h } from './dom.js';

/** One line of the server's debug console stream (see src/core/debug-tap.ts). */
export interface Entry {
  readonly at: number;
  readonly node: string;
  readonly type: string;
  readonly socketId?: string;
  readonly channel?: string;
  readonly event?: string;
  readonly data?: string;
  readonly code?: number;
  readonly detail?: string;
}

/** Lines the page keeps; older ones go first (a ring buffer, so an open tab never grows). */
const MAX_LINES = 500;

/**
 * The live log of one app. Paused, new lines wait (in the same bounded buffer) and the view
 * stays where it is; resumed, they appear in order. The filter hides lines, it does not drop them.
 */
export class DebugConsole {
  private readonly lines: Entry[] = [];
  private paused = false;
  /** Lines that arrived while paused (shown on resume). */
  private waiting = 0;
  private droppedByServer = 0;
  private source: EventSource | undefined;
  private filter = '';
  private type = '';

  constructor(
    private readonly list: HTMLOListElement,
    private readonly status: HTMLElement,
  ) {}

  get watching(): boolean {
    return this.source !== undefined;
  }

  watch(appId: string): void {
    this.source?.close();
    this.lines.length = 0;
    this.waiting = 0;
    this.render();
    const source = new EventSource(`api/apps/${encodeURIComponent(appId)}/console`);
    this.source = source;
    // "Live" once every node of the cluster forwards this app's lines (the server says so).
    source.addEventListener('open', () => this.setStatus('Connecting to every node…'));
    source.addEventListener('ready', () => this.setStatus(this.paused ? 'Paused' : 'Live'));
    source.addEventListener('error', () => this.setStatus('Reconnecting…'));
    source.addEventListener('entry', (e) => this.add(JSON.parse((e as MessageEvent<string>).data) as Entry));
    source.addEventListener('dropped', (e) => {
      this.droppedByServer += Number((e as MessageEvent<string>).data);
      this.setStatus(`Live (server dropped ${this.droppedByServer} lines for a slow page)`);
    });
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused) {
      this.waiting = 0;
      this.render();
    }
    this.setStatus(paused ? 'Paused' : 'Live');
  }

  setFilter(text: string, type: string): void {
    this.filter = text.toLowerCase();
    this.type = type;
    this.render();
  }

  clear(): void {
    this.lines.length = 0;
    this.render();
  }

  private add(entry: Entry): void {
    this.lines.push(entry);
    if (this.lines.length > MAX_LINES) this.lines.shift();
    if (this.paused) {
      this.waiting = Math.min(MAX_LINES, this.waiting + 1);
      this.setStatus(`Paused (${this.waiting} new)`);
      return;
    }
    if (this.matches(entry)) {
      this.list.prepend(this.line(entry));
      while (this.list.children.length > MAX_LINES) this.list.lastElementChild?.remove();
    }
  }

  private matches(e: Entry): boolean {
    if (this.type && e.type !== this.type) return false;
    if (!this.filter) return true;
    return [e.channel, e.event, e.socketId, e.data, e.detail].some((v) => v?.toLowerCase().includes(this.filter));
  }

  private render(): void {
    // Shown lines are the buffer minus what came while paused.
    const shown = this.lines.slice(0, this.lines.length - (this.paused ? this.waiting : 0));
    this.list.replaceChildren(...shown.filter((e) => this.matches(e)).reverse().map((e) => this.line(e)));
  }

  private line(e: Entry): HTMLLIElement {
    const time = new Date(e.at).toISOString().slice(11, 23);
    const parts = [
      e.channel && `channel ${e.channel}`,
      e.event && `event ${e.event}`,
      e.socketId && `socket ${e.socketId}`,
      e.code !== undefined && `code ${e.code}`,
      e.detail,
    ].filter(Boolean) as string[];
    return h(
      'li',
      { class: `entry type-${e.type}`, 'data-type': e.type, 'data-node': e.node },
      h('time', { datetime: new Date(e.at).toISOString() }, time),
      h('span', { class: 'node', title: `node ${e.node}` }, e.node.slice(0, 8)),
      h('span', { class: 'badge' }, e.type.replace('_', ' ')),
      h('span', { class: 'what' }, parts.join(' · ')),
      ...(e.data !== undefined ? [h('code', {}, e.data)] : []),
    );
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }
}
