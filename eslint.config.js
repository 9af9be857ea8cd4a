// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import pluginVue from 'eslint-plugin-vue';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['out/', 'dist/', 'node_modules/', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  // Prettier owns layout; keep eslint-plugin-vue's formatting rules out of its way.
  pluginVue.configs['no-layout-rules'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    files: ['src-main/**', 'test/**', 'bin/**', '*.config.{js,ts}', '.ci/**'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['src-renderer/**'],
    languageOptions: { globals: globals.browser },
    rules: {
      // The renderer shows what the lab says: it may see the contract's types and nothing else of src-main.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            // ...and the driver API's declaration file as text, for the editor (Monaco) to load.
            {
              regex: 'src-main/(?!api(/|$)|drivers/api/hmm-lab\\.d\\.ts\\?raw$)',
              message: 'The renderer imports only src-main/api types.',
            },
            {
              regex: 'src-main/api',
              allowTypeImports: true,
              message: 'The renderer imports only src-main/api types.',
            },
          ],
        },
      ],
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
