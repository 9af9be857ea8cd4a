// A plugin's TypeScript to the JavaScript the sandbox runs: one ES module, a source map to bring
// positions back, and where each exported callback is declared (the position reported when a failure
// has no stack of its own, such as a bad return value).
import ts from 'typescript';
import { PluginError } from './errors';
import { SourceMap, type Position } from './source-map';

export interface CompiledPlugin {
  /** The plugin's file name as the user knows it ("dmirror.ts"). */
  readonly filename: string;
  /** The JavaScript module, without its sourceMappingURL comment. */
  readonly js: string;
  readonly map: SourceMap;
  /** Export path ("fault", "driver.fault") to the position of its name in the TypeScript. */
  readonly sites: ReadonlyMap<string, Position>;
}

/** Past this a source is refused before parsing: a plugin is one hand-written module. */
export const MAX_SOURCE_LENGTH = 1 << 20;

const COMPILER_OPTIONS: ts.CompilerOptions = {
  // QuickJS 2025 runs ES2023; ES2022 keeps class fields native and their positions exact.
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  sourceMap: true,
  inlineSources: false,
  isolatedModules: true,
  removeComments: false,
};

/**
 * The last plugins compiled, by file and source, least recently used first. A source is checked
 * before it is loaded (the editor's loadDriver, the CLI's --driver), loaded once per device and
 * reloaded on a reprobe: it compiles once.
 */
const compiled = new Map<string, CompiledPlugin>();
const COMPILED_CACHE_SIZE = 16;

/**
 * Transpile one plugin. Only syntax is checked here (types are the editor's job); a syntax error
 * throws a PluginError of kind 'compile' at its TypeScript line and column.
 */
export function compilePlugin(source: string, filename: string): CompiledPlugin {
  const key = `${filename}\0${source}`;
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new PluginError({
      kind: 'compile',
      callback: '<load>',
      message: `source is ${source.length} characters; the limit is ${MAX_SOURCE_LENGTH}`,
      file: filename,
      line: 1,
      column: 1,
    });
  }
  const sites = new Map<string, Position>();
  let out: ts.TranspileOutput;
  try {
    out = ts.transpileModule(source, {
      fileName: filename,
      reportDiagnostics: true,
      compilerOptions: COMPILER_OPTIONS,
      transformers: { before: [() => (sf) => (collectSites(sf, sites), sf)] },
    });
  } catch (e) {
    // The compiler's own recursion can overflow on pathological nesting.
    throw new PluginError({
      kind: 'compile',
      callback: '<load>',
      message: `the compiler failed: ${e instanceof Error ? e.message : String(e)}`,
      file: filename,
      line: 1,
      column: 1,
    });
  }
  const error = out.diagnostics?.find((d) => d.category === ts.DiagnosticCategory.Error);
  if (error) throw diagnosticError(error, filename);
  if (out.sourceMapText === undefined) throw new Error('typescript emitted no source map');
  const plugin: CompiledPlugin = {
    filename,
    js: out.outputText.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'),
    map: new SourceMap(out.sourceMapText),
    sites,
  };
  if (compiled.size >= COMPILED_CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  compiled.set(key, plugin);
  return plugin;
}

function diagnosticError(d: ts.Diagnostic, filename: string): PluginError {
  const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
  return new PluginError({
    kind: 'compile',
    callback: '<load>',
    message: `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    file: filename,
    line: (pos?.line ?? 0) + 1,
    column: (pos?.character ?? 0) + 1,
  });
}

function hasExport(node: ts.Node): boolean {
  return (
    ts.canHaveModifiers(node) && !!ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
  );
}

/** Exported functions, and the members of exported object literals (`export const ops = { fault() {} }`). */
function collectSites(sf: ts.SourceFile, sites: Map<string, Position>): void {
  const at = (node: ts.Node): Position => {
    const p = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    return { line: p.line + 1, column: p.character + 1 };
  };
  const members = (prefix: string, obj: ts.ObjectLiteralExpression): void => {
    for (const prop of obj.properties) {
      if (!prop.name || !(ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name))) continue;
      const path = `${prefix}.${prop.name.text}`;
      sites.set(path, at(prop.name));
      if (ts.isPropertyAssignment(prop) && ts.isObjectLiteralExpression(prop.initializer)) {
        members(path, prop.initializer);
      }
    }
  };
  for (const stmt of sf.statements) {
    if (ts.isExportAssignment(stmt) && !stmt.isExportEquals) {
      sites.set('default', at(stmt));
      if (ts.isObjectLiteralExpression(stmt.expression)) members('default', stmt.expression);
      continue;
    }
    if (!hasExport(stmt)) continue;
    if (ts.isFunctionDeclaration(stmt) || ts.isClassDeclaration(stmt)) {
      const isDefault = ts.getModifiers(stmt)?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
      const name = isDefault ? 'default' : stmt.name?.text;
      if (name) sites.set(name, at(stmt.name ?? stmt));
    } else if (ts.isVariableStatement(stmt)) {
      for (const decl of stmt.declarationList.declarations) {
        if (!ts.isIdentifier(decl.name)) continue;
        sites.set(decl.name.text, at(decl.name));
        if (decl.initializer && ts.isObjectLiteralExpression(decl.initializer)) {
          members(decl.name.text, decl.initializer);
        }
      }
    }
  }
}
