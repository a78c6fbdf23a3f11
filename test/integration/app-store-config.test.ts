import { appStoreSuite } from '../contract/app-store.contract.js';


await appStoreSuite({ name: 'config', unavailable: () => Promise.resolve(undefined) });
