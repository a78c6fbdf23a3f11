import { api, byId, h } from './dom.js';

/** An app as the list shows it: its settings without secrets, or the reason its row is unusable. */
export interface AppRow {
  readonly id: string;
  readonly key?: string;
  readonly enabled?: boolean;
  readonly webhooks?: unknown[];
  readonly invalid?: string;
  readonly [setting: string]: unknown;
}
interface AppList {
  readonly apps: AppRow[];
  readonly editable: boolean;
  readonly store: string;
}
interface Saved {
  readonly app: AppRow & { readonly secret?: string };
}

/** How long a "Rotate secret" button waits for its confirming second press. */
const CONFIRM_MS = 5_000;

/**
 * The Apps page: the list, and where the app store takes writes (a database), create, edit,
 * enable/disable and rotate the secret. A new secret is shown once, in the notice above the
 * list, and nowhere else: the list and edits come back without secrets.
 */
export class AppsPage {
  private editing: string | undefined;
  private rows = new Map<string, AppRow>();

  constructor(
    /** Told of the apps after every load (the console's app list, the live view). */
    private readonly onList: (apps: readonly AppRow[]) => void,
    private readonly onOpen: (appId: string) => void,
    private readonly onError: (err: unknown) => void,
  ) {
    byId('new-app').addEventListener('click', () => this.openForm(undefined));
    byId('af-cancel').addEventListener('click', () => this.closeForm());
    byId('secret-done').addEventListener('click', () => {
      byId('secret-once').hidden = true;
      byId('secret-value').textContent = '';
    });
    byId<HTMLFormElement>('app-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  async load(): Promise<void> {
    const list = await api<AppList>('/apps');
    byId('apps-note').textContent = list.editable
      ? `Apps live in the ${list.store} app store: changes reach every node at once.`
      : 'Apps come from the configuration file, which is read-only while the server runs: edit the file and restart, or use a database app store (appStore) to manage apps here.';
    byId('new-app').hidden = !list.editable;
    byId('app-list').querySelector('tbody')?.replaceChildren(...list.apps.map((a) => this.row(a, list.editable)));
    this.rows = new Map(list.apps.map((a) => [a.id, a]));
    this.onList(list.apps.filter((a) => a.invalid === undefined));
  }

  private row(a: AppRow, editable: boolean): HTMLTableRowElement {
    const actions: HTMLElement[] = [];
    if (a.invalid === undefined) actions.push(this.button('Open', `Open app ${a.id}`, () => this.onOpen(a.id)));
    if (editable && a.invalid === undefined) {
      actions.push(
        this.button('Edit', `Edit app ${a.id}`, () => this.openForm(a.id)),
        this.button(a.enabled ? 'Disable' : 'Enable', `${a.enabled ? 'Disable' : 'Enable'} app ${a.id}`, () => this.run(`/apps/${encodeURIComponent(a.id)}/${a.enabled ? 'disable' : 'enable'}`)),
        this.rotateButton(a.id),
      );
    }
    return h(
      'tr',
      { 'data-app': a.id },
      h('th', { scope: 'row' }, a.id),
      h('td', {}, a.key ?? '–'),
      h('td', {}, a.invalid !== undefined ? `invalid: ${a.invalid}` : a.enabled ? 'yes' : 'no'),
      h('td', {}, String(a.webhooks?.length ?? 0)),
      h('td', { class: 'actions' }, ...actions),
    );
  }

  private button(text: string, label: string, onClick: () => void): HTMLButtonElement {
    const b = h('button', { type: 'button', 'aria-label': label }, text);
    b.addEventListener('click', onClick);
    return b;
  }

  /** Rotating cuts off every backend still signing with the old secret: a second press confirms. */
  private rotateButton(appId: string): HTMLButtonElement {
    let armed: number | undefined;
    const b = this.button('Rotate secret', `Rotate the secret of app ${appId}`, () => {
      if (armed === undefined) {
        b.textContent = 'Press again to rotate';
        armed = window.setTimeout(() => {
          armed = undefined;
          b.textContent = 'Rotate secret';
        }, CONFIRM_MS);
        return;
      }
      clearTimeout(armed);
      armed = undefined;
      api<Saved>(`/apps/${encodeURIComponent(appId)}/rotate-secret`, {}).then((saved) => {
        this.showSecret(saved.app);
        return this.load();
      }, this.onError);
    });
    return b;
  }

  private run(path: string): void {
    api<Saved>(path, {}).then(() => this.load(), this.onError);
  }

  private openForm(appId: string | undefined): void {
    this.editing = appId;
    const form = byId('app-form');
    form.hidden = false;
    byId('app-form-title').textContent = appId === undefined ? 'New app' : `Edit app ${appId}`;
    const id = byId<HTMLInputElement>('af-id');
    id.value = appId ?? '';
    id.disabled = appId !== undefined;
    const current = appId === undefined ? undefined : this.rows.get(appId);
    const settings: Record<string, unknown> = { ...current };
    delete settings['id'];
    byId<HTMLTextAreaElement>('af-settings').value = JSON.stringify(current ? settings : { enableClientMessages: false }, null, 2);
    byId('app-form-error').textContent = '';
    (appId === undefined ? id : byId<HTMLTextAreaElement>('af-settings')).focus();
  }

  private closeForm(): void {
    byId('app-form').hidden = true;
    this.editing = undefined;
  }

  private save(): void {
    const error = byId('app-form-error');
    error.textContent = '';
    let settings: unknown;
    try {
      settings = JSON.parse(byId<HTMLTextAreaElement>('af-settings').value);
    } catch {
      error.textContent = 'Settings: not valid JSON';
      return;
    }
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      error.textContent = 'Settings: a JSON object, such as {"enableClientMessages": true}';
      return;
    }
    const editing = this.editing;
    const request =
      editing === undefined
        ? api<Saved>('/apps', { ...settings, id: byId<HTMLInputElement>('af-id').value })
        : api<Saved>(`/apps/${encodeURIComponent(editing)}`, settings, 'PATCH');
    request.then(
      (saved) => {
        if (editing === undefined) this.showSecret(saved.app);
        this.closeForm();
        return this.load();
      },
      (err: unknown) => {
        this.onError(err);
        error.textContent = err instanceof Error ? err.message : 'Not saved';
      },
    );
  }

  private showSecret(app: Saved['app']): void {
    byId('secret-app').textContent = app.id;
    byId('secret-key').textContent = app.key ?? '';
    byId('secret-value').textContent = app.secret ?? '';
    byId('secret-once').hidden = false;
    byId('secret-done').focus();
  }
}
