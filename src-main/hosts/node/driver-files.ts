// The driver file store behind the Drivers view: the user's driver sources in one folder of their
// data (Electron: userData/drivers; web host: <--data>/drivers), and the bundled plugins
// (plugins/<name>/<name>.ts) listed beside them, read-only. Runs in the lab worker, with the
// folders the host passed in workerData, apart from the session: a lab that failed to boot,
// or a plugin that faulted, still lets the user save.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { DriverFile, DriverFileInfo, DriverFilesRequest, LabRequest } from '../../api';

/** A driver file name: letters, digits, `_` and `-`, then `.ts`. No dots, slashes or folders. */
export const DRIVER_NAME_RE = /^[A-Za-z0-9_-]{1,64}\.ts$/;

/** Longest source the store takes (the web host's messages are at most 1 MiB). */
export const MAX_DRIVER_SOURCE = 512 * 1024;

const REQUESTS: ReadonlySet<string> = new Set<DriverFilesRequest['type']>([
  'listDrivers',
  'readDriver',
  'writeDriver',
  'renameDriver',
  'deleteDriver',
  'newDriver',
]);

export function isDriverFilesRequest(req: LabRequest): req is DriverFilesRequest {
  return REQUESTS.has(req.type);
}

/** A refused file request: `code` is the errno name the front end shows. */
export class DriverFileError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DriverFileError';
  }
}

/** The skeleton a new driver starts from when no bundled plugin is its template. */
export const DRIVER_TEMPLATE = `// A device driver plugin for HMM Lab. The lab calls the callbacks this module exports when the
// kernel needs the driver (named as the kernel's: probe, fault, free, ...); the driver calls the
// kernel through what it imports from 'hmm-lab'. The bundled plugins are complete examples.
import { dev_info, hmm_devmem_add, VM_FAULT_SIGBUS, type DeviceInfo, type Page, type Vma } from 'hmm-lab';

let devmem = 0;

/** Set the device up: hotplug its memory as device-private pages. 0 or -errno. */
export function probe(dev: DeviceInfo): number {
  devmem = hmm_devmem_add(dev.memory);
  if (devmem < 0) return devmem;
  dev_info(\`\${dev.memory / 2 ** 20} MiB of device memory\`);
  return 0;
}

/** hmm_devmem_ops.fault: the CPU touched one of our pages. This driver cannot migrate yet. */
export function fault(_vma: Vma, addr: number, _page: Page, _flags: number): number {
  dev_info(\`CPU fault at 0x\${addr.toString(16)}\`);
  return VM_FAULT_SIGBUS;
}

/** hmm_devmem_ops.free: a device page is ours again. */
export function free(_page: Page): void {}
`;

export interface DriverFilesOptions {
  /** The user's driver folder; created on the first write. Without it the store only lists bundled plugins. */
  userDir?: string;
  /** The folder of bundled plugins, one subfolder per plugin holding <name>.ts. */
  bundledDir?: string;
}

export class DriverFiles {
  private readonly userDir: string | undefined;
  private readonly bundledDir: string | undefined;

  constructor(opts: DriverFilesOptions = {}) {
    this.userDir = opts.userDir;
    this.bundledDir = opts.bundledDir;
  }

  handle(req: DriverFilesRequest): unknown {
    switch (req.type) {
      case 'listDrivers':
        return this.list();
      case 'readDriver':
        return req.bundled ? this.readBundled(req.name) : this.read(req.name);
      case 'writeDriver':
        return this.write(req.name, req.source);
      case 'renameDriver':
        return this.rename(req.from, req.to);
      case 'deleteDriver':
        return this.remove(req.name);
      case 'newDriver':
        return this.create(req.name, req.template);
    }
  }

  list(): DriverFileInfo[] {
    const user: DriverFileInfo[] = [];
    if (this.userDir && existsSync(this.userDir)) {
      for (const name of readdirSync(this.userDir).sort()) {
        if (!DRIVER_NAME_RE.test(name)) continue;
        const path = join(this.userDir, name);
        const st = statSync(path, { throwIfNoEntry: false });
        if (st?.isFile()) user.push({ name, origin: 'user', size: st.size, mtime: st.mtimeMs });
      }
    }
    return [...user, ...this.bundled()];
  }

  read(name: string): DriverFile {
    const path = this.userPath(name, 'name');
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new DriverFileError('ENOENT', `no driver named ${name}`);
    return { name, origin: 'user', size: st.size, mtime: st.mtimeMs, source: readFileSync(path, 'utf8') };
  }

  readBundled(name: string): DriverFile {
    checkName(name, 'name');
    const info = this.bundled().find((b) => b.name === name);
    if (!info) throw new DriverFileError('ENOENT', `no bundled plugin named ${name}`);
    return { ...info, source: readFileSync(this.bundledPath(name), 'utf8') };
  }

  /** Write to a temporary file, flush it, then rename it over the old one: never half a file. */
  write(name: string, source: unknown): DriverFileInfo {
    const path = this.userPath(name, 'name');
    if (typeof source !== 'string') throw new DriverFileError('EINPUT', 'source: expected a string');
    if (source.length > MAX_DRIVER_SOURCE)
      throw new DriverFileError(
        'EFBIG',
        `${name}: ${source.length} characters, more than the ${MAX_DRIVER_SOURCE} a driver may have`,
      );
    mkdirSync(this.userDir!, { recursive: true });
    const tmp = join(this.userDir!, `.${name}.${process.pid}.${Date.now()}.tmp`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, source);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, path);
    } catch (err) {
      unlinkSync(tmp);
      throw err;
    }
    return this.info(name);
  }

  rename(from: string, to: string): DriverFileInfo {
    const src = this.userPath(from, 'from');
    const dst = this.userPath(to, 'to');
    if (!statSync(src, { throwIfNoEntry: false })?.isFile())
      throw new DriverFileError('ENOENT', `no driver named ${from}`);
    if (from === to) return this.info(to);
    if (existsSync(dst)) throw new DriverFileError('EEXIST', `a driver named ${to} already exists`);
    renameSync(src, dst);
    return this.info(to);
  }

  /** Move the file into .deleted/ (name plus the time), so a slip of the mouse can be undone by hand. */
  remove(name: string): { name: string } {
    const path = this.userPath(name, 'name');
    if (!statSync(path, { throwIfNoEntry: false })?.isFile())
      throw new DriverFileError('ENOENT', `no driver named ${name}`);
    const trash = join(this.userDir!, '.deleted');
    mkdirSync(trash, { recursive: true });
    renameSync(path, join(trash, `${name.slice(0, -3)}.${Date.now()}.ts`));
    return { name };
  }

  create(name: string, template?: string): DriverFile {
    const path = this.userPath(name, 'name');
    if (existsSync(path)) throw new DriverFileError('EEXIST', `a driver named ${name} already exists`);
    const source = template === undefined ? DRIVER_TEMPLATE : this.readBundled(template).source;
    this.write(name, source);
    return this.read(name);
  }

  private info(name: string): DriverFileInfo {
    const st = statSync(join(this.userDir!, name));
    return { name, origin: 'user', size: st.size, mtime: st.mtimeMs };
  }

  private bundled(): DriverFileInfo[] {
    const dir = this.bundledDir;
    if (!dir || !existsSync(dir)) return [];
    const out: DriverFileInfo[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const name = `${entry.name}.ts`;
      if (!entry.isDirectory() || !DRIVER_NAME_RE.test(name)) continue;
      const st = statSync(join(dir, entry.name, name), { throwIfNoEntry: false });
      if (st?.isFile()) out.push({ name, origin: 'bundled', size: st.size, mtime: st.mtimeMs });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private bundledPath(name: string): string {
    return join(this.bundledDir!, name.slice(0, -3), name);
  }

  private userPath(name: unknown, field: string): string {
    checkName(name, field);
    if (!this.userDir) throw new DriverFileError('ENOSYS', 'this lab has no data folder for drivers');
    return join(this.userDir, name);
  }
}

function checkName(name: unknown, field: string): asserts name is string {
  if (typeof name !== 'string' || !DRIVER_NAME_RE.test(name))
    throw new DriverFileError(
      'EINPUT',
      `${field}: expected a file name like my-driver.ts (letters, digits, _ and -, then .ts), got ${JSON.stringify(name)}`,
    );
}
