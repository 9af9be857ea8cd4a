// Monaco for the Drivers view, bundled with the app (no CDN, works offline): the editor core and
// its features, the TypeScript language and language service, and their two web workers. The
// Drivers view imports this module on first use, so it is a chunk of its own.
//
// The workers are inlined (`?worker&inline`): each is created from a blob: URL holding its code,
// so nothing is fetched from file:// by a worker, which Chromium refuses to an Electron page
// loaded from a file. The CSPs allow `worker-src blob:` for this and nothing else.
import * as monaco from 'monaco-editor/editor';
import 'monaco-editor/features/register.all';
import 'monaco-editor/languages/definitions/typescript/register';
import * as typescript from 'monaco-editor/languages/features/typescript/register';
import EditorWorker from 'monaco-editor/editor/editor.worker?worker&inline';
import TsWorker from 'monaco-editor/language/typescript/ts.worker?worker&inline';
// The driver API's declarations, as text: the very file that defines it for the plugin host.
import HMM_LAB_DTS from '../../../src-main/drivers/api/hmm-lab.d.ts?raw';

export { monaco, HMM_LAB_DTS };

/** Where the declarations sit in Monaco's file system: an import of 'hmm-lab' resolves to them. */
const API_URI = 'file:///node_modules/hmm-lab/index.d.ts';

/** ScriptTarget.ES2022 (Monaco's enum stops at ES2020 and ESNext). */
const ES2022 = 9 as typescript.ScriptTarget;

let ready = false;

/** Workers, TypeScript options and the driver API: once, before the first editor is made. */
export function setUpMonaco(): typeof monaco {
  if (ready) return monaco;
  ready = true;
  self.MonacoEnvironment = {
    getWorker: (_id, label) =>
      label === 'typescript' || label === 'javascript' ? new TsWorker() : new EditorWorker(),
  };
  const ts = typescript.typescriptDefaults;
  ts.setCompilerOptions({
    target: ES2022,
    // The plugin's realm is QuickJS's: the language, no DOM and no Node.
    lib: ['es2022'],
    types: [],
    module: typescript.ModuleKind.ESNext,
    moduleResolution: typescript.ModuleResolutionKind.NodeJs,
    strict: true,
    noImplicitOverride: true,
    noFallthroughCasesInSwitch: true,
    isolatedModules: true,
    noEmit: true,
    allowNonTsExtensions: true,
  });
  ts.setDiagnosticsOptions({ noSemanticValidation: false, noSyntaxValidation: false });
  // Type errors of the open driver as soon as it is opened, not only after the first edit.
  ts.setEagerModelSync(true);
  ts.setExtraLibs([{ content: HMM_LAB_DTS, filePath: API_URI }]);
  return monaco;
}
