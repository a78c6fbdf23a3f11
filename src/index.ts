export { createServer, type Switchboard, type ServerOptions, type PublishOptions } from './server.js';
export { loadConfig, validateConfig, ConfigError } from './config/load.js';
export type { Config, ConfigInput, AppConfig } from './config/schema.js';
export type { App } from './core/app.js';
export { TlsLoadError } from './transport/tls.js';
