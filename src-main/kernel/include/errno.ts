// Kernel error codes. Functions return them negated (-EINVAL), as the kernel does;
// they become messages only at the lab's edge.

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const ENOEXEC = 8;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const EDEADLK = 35;
/** A driver's probe asks to be tried again later (include/linux/errno.h, kernel-internal). */
export const EPROBE_DEFER = 517;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EINTR]: 'EINTR',
  [EIO]: 'EIO',
  [ENXIO]: 'ENXIO',
  [ENOEXEC]: 'ENOEXEC',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [ERANGE]: 'ERANGE',
  [EDEADLK]: 'EDEADLK',
  [EPROBE_DEFER]: 'EPROBE_DEFER',
};

/** "-EBUSY" for -16; "0" for success. */
export function errname(err: number): string {
  if (err === 0) return '0';
  const name = NAMES[-err];
  return name ? `-${name}` : String(err);
}

/** The inverse of errname: -16 for "-EBUSY", undefined for an unknown name. */
export function errnum(name: string): number | undefined {
  const bare = name.replace(/^-/, '');
  for (const [num, n] of Object.entries(NAMES)) if (n === bare) return -Number(num);
  return undefined;
}

/**
 * ERR_PTR: a kernel function that returns an object (or an address) or an error
 * returns `T | number`, the error being a negative errno.
 */
export type ErrPtr<T> = T | number;

export function IS_ERR<T>(v: ErrPtr<T>): v is number {
  return typeof v === 'number' && v < 0;
}
