export type * from './layout';
export type * from './protocol';
