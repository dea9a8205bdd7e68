// The netns lab: one machine, many hosts. createLab builds a topology from a
// plain-data spec (see plan.ts for the layout and addressing), withLab gives
// a test a lab with guaranteed teardown.
import { recordOwnedNetns } from '../helpers/names';
import { buildLab, assertUnderlayMtu, createNetns, type NetnsRegistry } from './build';
import { planLab, planNamespaces, containerNetnsName, type LabPlan, type LabSpec } from './plan';
import { startProcess, type LabProcess, type SpawnOptions } from './procs';
import { nsRun, type ExecOptions, type ExecResult } from './run';
import { claimState, writeState, readState, removeState, LabExistsError, type LabState } from './state';
import { destroyLabByName, destroyNamespaces, warnAboutLeftovers, type TeardownReport } from './teardown';
import { processAlive } from '../helpers/process';

export type { LabSpec } from './plan';
export type { LabProcess } from './procs';
export type { ExecResult } from './run';

export interface LabHost {
  name: string;
  netns: string;
  underlayIp: string;
  rack: string;
  datacenter: string;
  gateway: string;
  prefixLen: number;
}

export interface LabController {
  netns: string;
  ip: string;
}

export interface Lab {
  name: string;
  spec: LabSpec;
  plan: LabPlan;
  hosts: LabHost[];
  /** null when the spec asks for no controller */
  controller: LabController | null;
  host(name: string): LabHost;
  /** every namespace the lab has created so far */
  namespaces(): string[];
  /** run a command inside a namespace and wait for it; throws on a non-zero exit unless opts.check === false */
  exec(netns: string, cmd: string, args: string[], opts?: ExecOptions): ExecResult;
  /** start a long-running command inside a namespace; stopped (with its process group) on destroy */
  spawn(netns: string, cmd: string, args: string[], opts?: SpawnOptions): LabProcess;
  /** an empty namespace (only lo, down) for a container of this host; the lab does not wire it. Returns its path. */
  addContainerNetns(host: string | LabHost, name: string): string;
  /** remove every namespace, link and process of the lab; safe to call twice */
  destroy(): Promise<TeardownReport>;
}

export interface CreateOptions {
  /**
   * true for labs meant to outlive the creating process (`lab up`): their
   * namespaces are left out of the test sweep and spawned processes survive
   * the creator. Tests leave this false.
   */
  persistent?: boolean;
}

export async function createLab(spec: LabSpec, opts: CreateOptions = {}): Promise<Lab> {
  const plan = planLab(spec);
  const persistent = opts.persistent === true;
  const state: LabState = {
    name: plan.name,
    spec,
    createdAt: new Date().toISOString(),
    ownerPid: process.pid,
    persistent,
    namespaces: [],
    processes: [],
    ready: false,
  };
  await claimName(state);

  const registry: NetnsRegistry = {
    willCreate(name) {
      state.namespaces.push(name);
      writeState(state);
    },
    created(name) {
      if (!persistent) recordOwnedNetns(name);
    },
    notCreated(name) {
      state.namespaces = state.namespaces.filter((n) => n !== name);
      writeState(state);
    },
  };

  const processes: LabProcess[] = [];
  let destroying: Promise<TeardownReport> | null = null;
  const destroy = (): Promise<TeardownReport> => {
    destroying ??= (async () => {
      // the lab's own children first, gracefully; then whatever the record still names
      await Promise.all(processes.map((p) => p.stop('SIGTERM', 2000).catch(() => undefined)));
      const report = await destroyNamespaces(state.namespaces, state.processes);
      warnAboutLeftovers(plan.name, report);
      if (report.errors.length === 0) removeState(plan.name);
      return report;
    })();
    return destroying;
  };

  try {
    buildLab(plan, registry);
    assertUnderlayMtu(planNamespaces(plan));
    state.ready = true;
    writeState(state);
  } catch (e) {
    await destroy();
    throw e;
  }

  const hosts: LabHost[] = plan.hosts.map((h) => ({
    name: h.name,
    netns: h.netns,
    underlayIp: h.underlayIp,
    rack: h.rack,
    datacenter: h.datacenter,
    gateway: h.gateway,
    prefixLen: h.prefixLen,
  }));

  const lab: Lab = {
    name: plan.name,
    spec,
    plan,
    hosts,
    controller: plan.controller ? { netns: plan.controller.netns, ip: plan.controller.ip } : null,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (!h) throw new Error(`lab ${plan.name} has no host "${name}"`);
      return h;
    },
    namespaces: () => [...state.namespaces],
    exec: (netns, cmd, args, o) => nsRun(netns, cmd, args, o),
    spawn(netns, cmd, args, o = {}) {
      if (destroying) throw new Error(`lab ${plan.name} is being destroyed`);
      const p = startProcess(netns, cmd, args, { dieWithParent: !persistent, ...o });
      processes.push(p);
      state.processes.push(p.record);
      writeState(state);
      return p;
    },
    addContainerNetns(host, name) {
      if (destroying) throw new Error(`lab ${plan.name} is being destroyed`);
      const h = typeof host === 'string' ? lab.host(host) : host;
      const ns = containerNetnsName(plan.name, h.name, name);
      // as a runtime hands it to a CNI plugin: fresh, lo still down
      createNetns(ns, registry, false);
      return `/run/netns/${ns}`;
    },
    destroy,
  };
  return lab;
}


/**
 * A test lab whose owner died (killed mid-run, before its teardown) still has
 * its record; its name is free again once what the record names is removed.
 * A persistent lab is only ever removed by an explicit `lab down`.
 */
async function claimName(state: LabState): Promise<void> {
  try {
    claimState(state);
  } catch (e) {
    const old = readState(state.name);
    if (!(e instanceof LabExistsError) || !old || old.persistent || processAlive(old.ownerPid)) throw e;
    warnAboutLeftovers(state.name, await destroyLabByName(state.name));
    claimState(state);
  }
}

/** Run fn with a fresh lab; the lab is destroyed whether fn returns or throws. */
export async function withLab<T>(spec: LabSpec, fn: (lab: Lab) => Promise<T> | T, opts: CreateOptions = {}): Promise<T> {
  const lab = await createLab(spec, opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}
