// Type-aware lint over src/, test/, bench/ and the client packages in clients/ (run by `npm test` after the build).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'clients/*/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // The underscore marks a parameter an interface requires but this implementation ignores.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // An async function with no await is how a promise-returning interface is met; the rule would
      // ask for Promise.resolve wrappers instead, which say the same less plainly.
      '@typescript-eslint/require-await': 'off',
      // A class declared inside a method (a test's fake browser socket, an in-memory broker's
      // transport) reaches the object it belongs to through a named alias.
      '@typescript-eslint/no-this-alias': 'off',
      // ws hands messages as Buffers (binaryType 'nodebuffer', its default, which no caller here
      // changes); its RawData type also names ArrayBuffer for other binary types.
      '@typescript-eslint/no-base-to-string': ['error', { ignoredTypeNames: ['Error', 'RegExp', 'URL', 'URLSearchParams', 'ArrayBuffer'] }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
