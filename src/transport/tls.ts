import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import type { Logger } from '../log.js';

/** Where the certificate comes from: PEM files, as cert-manager and certbot write them. */
export interface TlsFiles {
  /** The server's certificate (a full chain file is fine). */
  readonly cert: string;
  readonly key: string;
  /** Intermediate certificates sent after `cert`; '' for none. */
  readonly ca: string;
  /** Of an encrypted key; '' for none. */
  readonly passphrase: string;
}

/** The certificate could not be loaded at start: the message names the file and the reason. */
export class TlsLoadError extends Error {
  override name = 'TlsLoadError';
}

/**
 * Renewals write several files (certbot: cert, chain, key in turn; Kubernetes: a symlink swap):
 * a reload waits this long after the last change so it reads one consistent set.
 */
const RELOAD_DEBOUNCE_MS = 300;

function readPem(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsLoadError(`cannot read the TLS ${what} file ${path}: ${(err as Error).message}`);
  }
}

/** Reads the files and checks that they make a usable context (key matches, passphrase right). */
export function loadTlsOptions(files: TlsFiles): SecureContextOptions & { cert: Buffer; key: Buffer } {
  const cert = readPem('certificate', files.cert);
  const key = readPem('key', files.key);
  // The chain goes out after the certificate; as `ca` it would only be the trust store for client certificates.
  const chain = files.ca ? Buffer.concat([cert, Buffer.from('\n'), readPem('CA chain', files.ca)]) : cert;
  const options = { cert: chain, key, ...(files.passphrase ? { passphrase: files.passphrase } : {}) };
  try {
    createSecureContext(options);
  } catch (err) {
    // OpenSSL's reason (bad decrypt, key values mismatch, no start line); never the passphrase.
    throw new TlsLoadError(`the TLS certificate ${files.cert} and key ${files.key} cannot be used: ${(err as Error).message}`);
  }
  return options;
}

/**
 * Keeps the listeners' certificate current: on reload() (SIGHUP) and when the files change, it
 * reads them again and swaps the context for new handshakes; open connections keep theirs. A
 * set that cannot be used is logged and the old certificate stays.
 */
export class CertificateReloader {
  private readonly servers: TlsServer[] = [];
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private current: ReturnType<typeof loadTlsOptions>;

  constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
  ) {
    this.current = loadTlsOptions(files);
  }

  /** The certificate and key to create a listener with. */
  options(): SecureContextOptions {
    return this.current;
  }

  /** Keeps `server`'s certificate current from now on. */
  serve<S extends TlsServer>(server: S): S {
    this.servers.push(server);
    return server;
  }

  /** Reads the files again; true when a new certificate is now in use. */
  reload(reason: string): boolean {
    let next: ReturnType<typeof loadTlsOptions>;
    try {
      next = loadTlsOptions(this.files);
    } catch (err) {
      this.log.error({ reason, error: (err as Error).message }, 'TLS reload failed: still serving the previous certificate');
      return false;
    }
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return false;
    for (const server of this.servers) server.setSecureContext(next);
    this.current = next;
    this.log.info({ reason, cert: this.files.cert }, 'TLS certificate reloaded');
    return true;
  }

  /** Watches the files' folders (a symlink swap or rename replaces the file a watch on it would follow). */
  watch(): void {
    const folders = new Set([this.files.cert, this.files.key, this.files.ca].filter(Boolean).map((f) => dirname(resolve(f))));
    for (const folder of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, () => this.changed());
        watcher.on('error', (err) => this.log.warn({ folder, error: err.message }, 'stopped watching TLS files; SIGHUP still reloads'));
        this.watchers.push(watcher);
      } catch (err) {
        this.log.warn({ folder, error: (err as Error).message }, 'cannot watch TLS files; SIGHUP still reloads');
      }
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const watcher of this.watchers) watcher.close();
    this.watchers.length = 0;
  }

  private changed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('files changed'), RELOAD_DEBOUNCE_MS);
    this.timer.unref();
  }
}
