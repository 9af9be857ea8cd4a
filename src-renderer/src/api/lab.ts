// The renderer's one window onto src-main: the contract's types, nothing else.
export type * from '../../../src-main/api';
