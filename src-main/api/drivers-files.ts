// Driver sources as the Drivers view edits them: the user's own files, kept in the user's data
// folder, and the bundled plugins (plugins/<name>/<name>.ts), listed read-only. Editing a
// bundled plugin starts from a user copy (`newDriver` with it as the template).

/** A driver file name: `[A-Za-z0-9_-]+\.ts`, at most 64 characters before `.ts`; no folders. */
export type DriverFileName = string;

/** One entry of the file list. */
export interface DriverFileInfo {
  name: DriverFileName;
  /** `user`: the user's own file, writable; `bundled`: a plugin shipped with the lab, read-only. */
  origin: 'user' | 'bundled';
  /** Bytes of source. */
  size: number;
  /** Last modification, ms since the epoch (the file's mtime). */
  mtime: number;
}

export interface DriverFile extends DriverFileInfo {
  source: string;
}

/**
 * Requests of the driver file store. Names are checked before anything touches a file: a bad
 * one is refused with EINPUT; a missing file is ENOENT, a taken name EEXIST, and a store
 * without a data folder ENOSYS.
 */
export type DriverFilesRequest =
  /** The user's files by name, then the bundled plugins by name. */
  | { type: 'listDrivers' }
  /** A user file, or with `bundled` the bundled plugin of that name. */
  | { type: 'readDriver'; name: DriverFileName; bundled?: boolean }
  /** Replace (or create) a user file; the old content stays whole until the new one is written. */
  | { type: 'writeDriver'; name: DriverFileName; source: string }
  /** Rename a user file; refused with EEXIST when `to` is taken. */
  | { type: 'renameDriver'; from: DriverFileName; to: DriverFileName }
  /** Delete a user file (it is kept in the store's `.deleted` folder, not unlinked). */
  | { type: 'deleteDriver'; name: DriverFileName }
  /**
   * Create a user file from a template: a bundled plugin's name (`"dmirror.ts"`), or, without
   * one, a skeleton driver. Refused with EEXIST when the name is taken.
   */
  | { type: 'newDriver'; name: DriverFileName; template?: DriverFileName };

export interface DriverFilesResponses {
  listDrivers: DriverFileInfo[];
  readDriver: DriverFile;
  writeDriver: DriverFileInfo;
  renameDriver: DriverFileInfo;
  deleteDriver: { name: DriverFileName };
  newDriver: DriverFile;
}
