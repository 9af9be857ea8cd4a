import { describe, expect, it } from 'vitest';
import { parseMachine } from '../../src-main/lab/machine-file';
import { costModel, DEFAULT_COSTS } from '../../src-main/lab/clock';
import { lab, PAGE, refusal } from './helpers';

describe('lab/clock: the cost model and the machine file', () => {
  it('defaults: PCIe 3/4/5 x16 and NVLink-C2C per direction, 256-fault batches of ~45 us', () => {
    expect(DEFAULT_COSTS.links).toEqual({ pcie3: 15.75, pcie4: 31.5, pcie5: 63, 'nvlink-c2c': 450 });
    expect(DEFAULT_COSTS).toMatchObject({ cpuFaultNs: 1300, gpuFaultBatchNs: 45_000, faultBatchSize: 256 });
    expect(costModel({ cpuFaultNs: 900, links: { pcie4: 20 } })).toMatchObject({
      cpuFaultNs: 900,
      syscallNs: DEFAULT_COSTS.syscallNs,
      links: { pcie3: 15.75, pcie4: 20 },
    });
  });

  it('a machine file sets costs and links; bad ones are refused naming the path', () => {
    const spec = parseMachine(
      {
        costs: { cpuFaultNs: 1000, links: { pcie5: 60 } },
        link: 'pcie5',
        devices: [{ name: 'gpu0', kind: 'private', memory: '256M', link: 'nvlink-c2c' }],
      },
      'm',
    );
    expect(spec.costs).toEqual({ cpuFaultNs: 1000, links: { pcie5: 60 } });
    expect(spec.link).toBe('pcie5');
    expect(spec.devices[0]!.link).toBe('nvlink-c2c');
    const bad = (m: unknown) => () => parseMachine(m, 'm');
    expect(refusal(bad({ costs: { cpuFaultNS: 1 } }))).toContain('machine.costs.cpuFaultNS: unknown field');
    expect(refusal(bad({ costs: { cpuFaultNs: -1 } }))).toContain(
      'machine.costs.cpuFaultNs: expected a positive number, got -1',
    );
    expect(refusal(bad({ costs: { links: { pcie6: 128 } } }))).toContain(
      'machine.costs.links.pcie6: unknown field',
    );
    expect(refusal(bad({ costs: { dmaEfficiency: 1.5 } }))).toContain(
      'machine.costs.dmaEfficiency: expected at most 1',
    );
    expect(refusal(bad({ link: 'usb' }))).toContain(
      'machine.link: expected one of pcie3, pcie4, pcie5, nvlink-c2c',
    );
    expect(
      refusal(bad({ devices: [{ name: 'g', kind: 'private', memory: '256M', link: 'pcie9' }] })),
    ).toContain('machine.devices[0].link: expected one of');
  });

  it("a device's migration is charged at its link's speed, and the machine's costs apply", () => {
    const timeOfMigrate = (machine: unknown): number => {
      const { op } = lab(machine);
      op({ op: 'spawn', proc: 'p' });
      op({ op: 'open', proc: 'p', device: 'gpu0' });
      op({
        op: 'mmap',
        proc: 'p',
        name: 'buf',
        length: 256 * PAGE,
        prot: 'rw',
        flags: ['private', 'anonymous'],
      });
      op({ op: 'store', proc: 'p', at: 'buf', fill: { byte: 1 } });
      const before = op({ op: 'stat', proc: 'p' }).t;
      return (
        op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate_to_sys', at: 'buf' }).t -
        before +
        (op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf' }).t - before)
      );
    };
    const base = { ram: [{ start: 0, size: '1G' }], reserved: [] };
    const dev = (link: string) => ({
      ...base,
      devices: [{ name: 'gpu0', kind: 'private', memory: '256M', link }],
    });
    const pcie3 = timeOfMigrate(dev('pcie3'));
    const c2c = timeOfMigrate(dev('nvlink-c2c'));
    // 1 MiB at 0.8 x 15.75 GB/s against 0.8 x 450 GB/s: about 80 us apart.
    expect(pcie3 - c2c).toBeGreaterThan(70_000);
    const faster = timeOfMigrate({ ...dev('pcie3'), costs: { links: { pcie3: 450 } } });
    expect(faster).toBe(c2c);
  });
});
