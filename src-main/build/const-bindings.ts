// Build helper for the bundles that run the simulator: electron-vite's main process and lab
// worker (electron.vite.config.ts), and the benchmarks (bench/run.ts).
//
// A bundler puts every module's top-level functions and constants in one scope, as `function f`
// and `var X` (esbuild and rolldown turn `const` into `var`). Both are mutable bindings, and
// V8 11 (Node 20, Electron's main process) folds only immutable ones into the code it optimizes:
// each call to a helper such as `pte_flags` loads the binding and checks it is still the
// function it inlined, and each `MIGRATE_PFN_UNIT` is a load, so `x / MIGRATE_PFN_UNIT` divides
// instead of multiplying. This gives the bindings back the `const` the source had:
// - `function f(...) {...}` becomes `const f = function f(...) {...};`, moved to the top of the
//   bundle, where the declaration's hoisting would have put it.
// - `var X = ...;` becomes `const X = ...;` when no code anywhere assigns to a name X (a local of
//   the same name included: the test is by name, so it errs on the side of `var`).
// Generators and async functions are left alone (never hot), as is any name declared twice.
import MagicString from 'magic-string';
import ts from 'typescript';
import type { Plugin } from 'vite';

/** `=`, `+=`, ... `??=`. */
function isAssignment(kind: ts.SyntaxKind): boolean {
  return kind >= ts.SyntaxKind.FirstAssignment && kind <= ts.SyntaxKind.LastAssignment;
}

/** Names assigned anywhere in the file: `x = `, `x += `, `x++`, destructuring and for-in/of targets. */
function assignedNames(file: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  const target = (e: ts.Node): void => {
    if (ts.isIdentifier(e)) names.add(e.text);
    else if (ts.isParenthesizedExpression(e)) target(e.expression);
    else if (ts.isArrayLiteralExpression(e)) e.elements.forEach(target);
    else if (ts.isObjectLiteralExpression(e))
      for (const p of e.properties) {
        if (ts.isShorthandPropertyAssignment(p)) names.add(p.name.text);
        else if (ts.isPropertyAssignment(p)) target(p.initializer);
        else if (ts.isSpreadAssignment(p)) target(p.expression);
      }
    else if (ts.isSpreadElement(e)) target(e.expression);
    else if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken) target(e.left);
  };
  const visit = (n: ts.Node): void => {
    if (ts.isBinaryExpression(n) && isAssignment(n.operatorToken.kind)) target(n.left);
    else if (
      (ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) &&
      (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)
    )
      target(n.operand);
    else if (
      (ts.isForInStatement(n) || ts.isForOfStatement(n)) &&
      !ts.isVariableDeclarationList(n.initializer)
    )
      target(n.initializer);
    ts.forEachChild(n, visit);
  };
  visit(file);
  return names;
}

/** The names a declaration binds: `x`, or each name of a pattern (`{ a, b: [c] }`). */
function boundNames(name: ts.BindingName, out: string[]): string[] {
  if (ts.isIdentifier(name)) out.push(name.text);
  else for (const el of name.elements) if (!ts.isOmittedExpression(el)) boundNames(el.name, out);
  return out;
}

/**
 * Module-scope names declared more than once: by two `var`s (one may sit in a block or a loop
 * head, a `var` still binds in the module's scope), or by a `var` and a function.
 */
function redeclared(file: ts.SourceFile): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  const add = (name: string): void => void (seen.has(name) ? twice.add(name) : seen.add(name));
  for (const st of file.statements) if (ts.isFunctionDeclaration(st) && st.name) add(st.name.text);
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) || ts.isClassLike(n)) return;
    if (ts.isVariableDeclarationList(n) && !(n.flags & ts.NodeFlags.BlockScoped))
      for (const d of n.declarations) boundNames(d.name, []).forEach(add);
    ts.forEachChild(n, visit);
  };
  visit(file);
  return twice;
}

/** The bundle with its top-level functions and never-assigned vars as `const` (see above). */
export function constBindings(code: string, fileName = 'bundle.js'): MagicString {
  const s = new MagicString(code);
  const file = ts.createSourceFile(fileName, code, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const assigned = assignedNames(file);
  const twice = redeclared(file);
  const fixed = (name: string): boolean => !assigned.has(name) && !twice.has(name);
  // Imports are hoisted as well: the functions go after the leading ones.
  let top = 0;
  for (const st of file.statements) {
    if (!ts.isImportDeclaration(st)) break;
    top = st.end;
  }
  for (const st of file.statements) {
    if (ts.isFunctionDeclaration(st)) {
      if (!st.name || st.asteriskToken || st.modifiers?.length || !st.body || !fixed(st.name.text)) continue;
      const start = st.getStart(file);
      // Attached to the text moved, both ends.
      s.prependRight(start, `const ${st.name.text} = `);
      s.appendLeft(st.end, ';\n');
      s.move(start, st.end, top);
    } else if (ts.isVariableStatement(st)) {
      const list = st.declarationList;
      if (st.modifiers?.length || list.flags & ts.NodeFlags.BlockScoped) continue;
      const all = list.declarations.every(
        (d) => ts.isIdentifier(d.name) && d.initializer && fixed(d.name.text),
      );
      if (!all) continue;
      const at = list.getStart(file);
      s.overwrite(at, at + 'var'.length, 'const');
    }
  }
  return s;
}

/** constBindings on every chunk of a build, its source map kept when the build makes one. */
export function constBindingsPlugin(): Plugin {
  return {
    name: 'hmm-lab:const-bindings',
    apply: 'build',
    renderChunk(code, chunk, output) {
      const s = constBindings(code, chunk.fileName);
      return { code: s.toString(), map: output.sourcemap ? s.generateMap({ hires: true }) : null };
    },
  };
}
