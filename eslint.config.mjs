// ESLint for the TypeScript sources: typescript-eslint's recommended rules plus the type-aware ones
// that catch what the compiler does not (a promise nobody awaits, a switch that misses a case).
// The dashboard's browser modules (plain JavaScript, served as they are) get ESLint's own
// recommended rules with the browser's globals.
// Layout is Prettier's (.prettierrc.json): eslint-config-prettier turns off the rules it owns.
// `npm run lint`, which CI runs before the tests.
import { builtinRules } from 'eslint/use-at-your-own-risk';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

// ESLint's recommended rules (what @eslint/js's `recommended` lists), read from the rules' own
// metadata rather than from one more package.
const jsRecommended = Object.fromEntries(
  [...builtinRules].filter(([, rule]) => rule.meta?.docs?.recommended).map(([name]) => [name, 'error']),
);

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
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: globals.browser },
    rules: {
      ...jsRecommended,
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
