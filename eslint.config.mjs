// ESLint for the TypeScript sources: the server's own code (src, without its specs and
// src/testing) gets typescript-eslint's recommendedTypeChecked rules, which also keep `any` from
// flowing out of JSON.parse, query rows and the like; tests, benches and scripts get the
// recommended ones. All of it gets the type-aware rules that catch what the compiler does not (a
// promise nobody awaits, a switch that misses a case).
// The dashboard's browser modules (plain JavaScript, served as they are) get ESLint's own
// recommended rules (@eslint/js) with the browser's globals.
// Layout is Prettier's (.prettierrc.json): eslint-config-prettier turns off the rules it owns.
// `npm run lint`, which CI runs before the tests.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'test/client/**',
      '**/*.js',
      '!src/dashboard/public/**/*.js',
      '**/*.mjs',
    ],
  },
  ...tseslint.configs.recommended.map((config) => ({ ...config, files: ['**/*.ts'] })),
  ...tseslint.configs.recommendedTypeChecked.map((config) => ({
    ...config,
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.spec.ts', 'src/testing/**'],
  })),
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Tests, benches and scripts read JSON answers as loosely as they need, and load some modules
    // only when a case needs them; the server's own code does neither.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/dashboard/public/**/*.js'],
    ...js.configs.recommended,
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: globals.browser },
    rules: {
      ...js.configs.recommended.rules,
      // As for the TypeScript: a leading underscore marks what is unused on purpose.
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Everything linted: a function over 15 is split along its seams, or says above its
    // `eslint-disable-next-line complexity` why it reads better whole (CONTRIBUTING.md).
    rules: { complexity: ['error', 15] },
  },
  prettier,
);
