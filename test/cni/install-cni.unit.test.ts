// `weft install-cni` and the runtimes' "first config wins" rule: a second
// weft network must never become the default by sorting first, and a
// network installed again under another priority appears once.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflistFileName, installCni, parseInstallCniArgs, type InstallCniOptions } from '../../cni-plugin/install-cni';

// any ELF file stands in for the shim: install-cni checks the magic, not the program
const ELF = '/bin/true';

let dir: string;
let confDir: string;
let binDir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-install-cni-'));
  confDir = join(dir, 'net.d');
  binDir = join(dir, 'bin');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(name: string, extra: string[] = []): InstallCniOptions {
  // the agent socket in the test's own dir: install-cni records its conflists beside the socket
  return parseInstallCniArgs(['--bin-dir', binDir, '--conf-dir', confDir, '--socket', join(dir, 'agent.sock'), '--name', name, '--source', ELF, ...extra], {});
}

const files = () => readdirSync(confDir).sort();

describe('install-cni priority', () => {
  it('writes <priority>-<name>.conflist, 10 by default', () => {
    expect(installCni(options('weft')).conflist.path).toBe(join(confDir, '10-weft.conflist'));
    expect(installCni(options('weft-blue', ['--priority', '20'])).conflist.path).toBe(join(confDir, '20-weft-blue.conflist'));
    expect(conflistFileName(5, 'x')).toBe('05-x.conflist');
  });

  it('refuses a second weft network that would sort before the default one, and says what to give instead', () => {
    installCni(options('weft'));
    // "10-weft-blue" < "10-weft." bytewise ('-' < '.'): the silent takeover the rule exists for
    expect(() => installCni(options('weft-blue'))).toThrow(/10-weft-blue\.conflist would sort before 10-weft\.conflist .*--priority 11 or higher.*--default/);
    expect(files()).toEqual(['10-weft.conflist']);
    expect(readdirSync(binDir)).toEqual(['weft']);
  });

  it('installs it beside the default with a higher priority, or as the default with --default', () => {
    installCni(options('weft'));
    const beside = installCni(options('weft-blue', ['--priority', '11']));
    expect(beside.warnings).toEqual([]);
    const made = installCni(options('weft-red', ['--priority', '05', '--default']));
    expect(made.warnings.join('\n')).toMatch(/05-weft-red\.conflist sorts before 10-weft\.conflist \(weft network "weft"\)/);
    expect(files()).toEqual(['05-weft-red.conflist', '10-weft.conflist', '11-weft-blue.conflist']);
  });

  it('warns, without refusing, when weft sorts before another plugin\'s network', () => {
    mkdirSync(confDir);
    writeFileSync(join(confDir, '87-podman-bridge.conflist'), JSON.stringify({ cniVersion: '0.4.0', name: 'podman', plugins: [{ type: 'bridge' }] }));
    const r = installCni(options('weft'));
    expect(r.warnings.join('\n')).toMatch(/10-weft\.conflist sorts before 87-podman-bridge\.conflist \(a network of another plugin\)/);
  });

  it('moving a network to another priority removes its old file only after the new one is written', () => {
    installCni(options('weft'));
    installCni(options('weft-blue', ['--priority', '20']));
    const r = installCni(options('weft-blue', ['--priority', '30']));
    expect(r.removed).toEqual([join(confDir, '20-weft-blue.conflist')]);
    expect(files()).toEqual(['10-weft.conflist', '30-weft-blue.conflist']);
    expect(JSON.parse(readFileSync(join(confDir, '30-weft-blue.conflist'), 'utf8')).name).toBe('weft-blue');
  });

  it('the default network installed again stays the default, with other weft networks after it', () => {
    installCni(options('weft'));
    installCni(options('weft-blue', ['--priority', '20']));
    const again = installCni(options('weft'));
    expect([again.conflist.changed, again.warnings]).toEqual([false, []]);
    const moved = installCni(options('weft', ['--priority', '30']));
    expect(moved.warnings.join('\n')).toMatch(/30-weft\.conflist no longer sorts first: .* now use 20-weft-blue\.conflist/);
    expect(files()).toEqual(['20-weft-blue.conflist', '30-weft.conflist']);
  });

  it('running it again changes nothing', () => {
    installCni(options('weft'));
    const again = installCni(options('weft'));
    expect([again.binary.changed, again.conflist.changed, again.removed, again.warnings]).toEqual([false, false, [], []]);
  });

  it('rejects a priority that is not 0-99', () => {
    for (const p of ['100', '-1', '1.5', 'ten', '']) expect(() => options('weft', ['--priority', p]), p).toThrow(/--priority.*whole number from 0 to 99/);
  });
});
