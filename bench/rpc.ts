// Message shapes between the main process and forked client workers.

import type { ChurnSpec, OpenSpec } from './client-group.js';

export type RpcRequest =
  | { id: number; method: 'open'; params: OpenSpec }
  | { id: number; method: 'stats' }
  | { id: number; method: 'reset' }
  | { id: number; method: 'churn'; params: ChurnSpec }
  | { id: number; method: 'closeAll' };

export interface RpcResponse {
  id: number;
  /** Structured-clone of the method's result; typed by the caller that knows the method. */
  result?: unknown;
  error?: string;
}
