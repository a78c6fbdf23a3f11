export { createServer, type Switchboard, type ServerOptions, type PublishOptions } from './server.js';
export { loadConfig, validateConfig, ConfigError } from './config/load.js';
export type { Config, ConfigInput, AppConfig } from './config/schema.js';
export type { App } from './core/app.js';
export { TlsLoadError } from './transport/tls.js';
export type { ConnectionTarget, ConnectionSummary } from './core/bus.js';
export type { StatsSnapshot } from './core/stats.js';
export type { CounterName } from './core/counters.js';
export { MetadataError } from './embedding/metadata.js';
export type {
  SwitchboardHooks,
  HookConnection,
  HookUser,
  ConnectionOpened,
  ConnectionClosed,
  ChannelChange,
  SignedIn,
  InboundMessage,
  OpenVerdict,
  InboundVerdict,
  InboundChange,
} from './embedding/hooks.js';
