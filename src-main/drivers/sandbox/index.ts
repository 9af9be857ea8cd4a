// The plugin sandbox: compile a driver plugin's TypeScript and run it in QuickJS.
export { compilePlugin, type CompiledPlugin } from './compile';
export { HostError, PluginError, STOPPING_KINDS, type PluginErrorInfo, type PluginErrorKind } from './errors';
export {
  DEFAULT_SANDBOX_OPTIONS,
  PluginSandbox,
  type HostApi,
  type HostFunction,
  type SandboxOptions,
} from './sandbox';
export { SourceMap, type Position } from './source-map';
export {
  DEFAULT_LIMITS,
  intArg,
  returns,
  stringArg,
  type CallValue,
  type Expect,
  type PlainValue,
  type ValueLimits,
} from './values';
