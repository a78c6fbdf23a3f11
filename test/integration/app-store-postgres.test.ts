import { appStoreSuite } from '../contract/app-store.contract.js';
import { reachable } from '../helpers/app-stores.js';

await appStoreSuite({ name: 'postgres', unavailable: () => reachable(5432, 'PostgreSQL') });
