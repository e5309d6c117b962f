// ESLint flat config (`npm run lint`, run by .ci/run before the tests): the JavaScript and
// typescript-eslint recommended rules over the sources, tests, benchmarks, dashboards and
// scripts. Layout is prettier's job (`npm run format`), so no stylistic rules here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // generated or runtime output, not sources
  { ignores: ['node_modules/', 'data/', 'coverage/', 'dashboards/generated/', 'schema/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `const { password, ...rest } = user` omits a field; `_x` names a deliberately unused one
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `let server!: T` assigned once after a closure that reads it is declared before use on purpose;
      // `let [a, b] = …` where only some are reassigned stays one declaration
      'prefer-const': ['error', { ignoreReadBeforeAssign: true, destructuring: 'all' }],
    },
  },
  {
    // the web page's script runs in the browser, not in Node
    files: ['src/web/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
);
