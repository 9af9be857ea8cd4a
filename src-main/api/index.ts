export type * from './layout';
export type * from './process';
export type * from './protocol';
