import { appStoreSuite } from '../contract/app-store.contract.js';

// dynalite, started by the harness on a free loopback port.
await appStoreSuite({ name: 'dynamodb', unavailable: () => Promise.resolve(undefined) });
