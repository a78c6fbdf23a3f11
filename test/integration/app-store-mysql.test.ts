import { appStoreSuite } from '../contract/app-store.contract.js';
import { reachable } from '../helpers/app-stores.js';

await appStoreSuite({ name: 'mysql', unavailable: () => reachable(3306, 'MariaDB/MySQL') });
