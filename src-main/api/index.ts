export type * from './drivers';
export type * from './drivers-files';
export type * from './layout';
export type * from './mirror';
export type * from './process';
export type * from './protocol';
export type * from './run';
