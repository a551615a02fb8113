// One lint configuration for the whole monorepo. Type-aware, so that a floating
// promise in a message-driven service is a build failure rather than a lost ack.
import js from '@eslint/js';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

/** Imports that would give the pure packages I/O. */
const impure = [
  {
    group: ['pg', 'pg-*', '@nats-io/*', 'mongodb', '@aws-sdk/*', 'pino', 'opossum', '@opentelemetry/*'],
    message: 'core and contracts stay pure: no drivers.',
  },
  {
    group: [
      'node:fs',
      'node:fs/*',
      'node:net',
      'node:http',
      'node:https',
      'node:child_process',
      'node:os',
      'node:dgram',
      'node:tls',
      'node:worker_threads',
      'node:process',
      'fs',
      'fs/*',
      'path',
      'net',
      'http',
      'https',
      'child_process',
      'os',
    ],
    message: 'core and contracts stay pure: no Node I/O (pass data in).',
  },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**', '.turbo/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../../*/src/*', '../../../packages/*', '**/packages/*/src/*'],
              message: 'Import a package through its name and index, not its files.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/core/src/**/*.ts', 'packages/contracts/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: impure }] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
