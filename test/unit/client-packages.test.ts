import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const clients = new URL('../../../clients/', import.meta.url); // from dist/test/unit

interface PackageJson {
  readonly name: string;
  readonly type?: string;
  readonly exports: { readonly '.': { readonly types: string; readonly default: string } };
  readonly dependencies?: Record<string, string>;
}

/** The client packages as a user installs them: ESM, typed, built, with no runtime dependencies of their own. */
describe('client packages (clients/*)', () => {
  for (const dir of ['js', 'pusher-recovery']) {
    it(`${dir}: an ESM package whose exports (code and types) the build produced, with no dependencies`, () => {
      const root = new URL(`${dir}/`, clients);
      const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as PackageJson;
      assert.equal(pkg.type, 'module');
      assert.equal(pkg.dependencies, undefined);
      for (const file of [pkg.exports['.'].default, pkg.exports['.'].types]) {
        assert.ok(existsSync(fileURLToPath(new URL(file, root))), `${pkg.name}: ${file} exists after npm run build`);
      }
      // Nothing Node-only at the top level: the module must load in a browser (import() of `ws` happens only without a global WebSocket).
      const code = readFileSync(new URL(pkg.exports['.'].default, root), 'utf8');
      assert.doesNotMatch(code, /^import\s/m);
    });
  }
});
