import type * as PusherRecoveryPackage from '../../clients/pusher-recovery/dist/index.js';
import type * as NativeClientPackage from '../../clients/js/dist/index.js';

/**
 * The client packages of clients/, as their users get them: each one's own build output
 * (`npm run build` compiles them first). Tests run from dist/test/, so the path is resolved from
 * the repository root rather than written relative to this file.
 */
const clients = new URL('../../../clients/', import.meta.url);

export const pusherRecovery = (await import(new URL('pusher-recovery/dist/index.js', clients).href)) as typeof PusherRecoveryPackage;
export const nativeClient = (await import(new URL('js/dist/index.js', clients).href)) as typeof NativeClientPackage;

/** The native client library's module file, for pages that load it in a browser. */
export const nativeClientFile = new URL('js/dist/index.js', clients);
