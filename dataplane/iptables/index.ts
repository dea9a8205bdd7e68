export * from './model';
export { parseSave, splitArgs, ruleTarget, type SavedState, type SavedTable, type SavedRule } from './save';
export { planRestore, renderRestore, weftPart, type RenderOptions } from './render';
export { iptablesRestore, iptablesSave, IptablesRestoreError, IptablesExecError, type ExecOptions } from './restore';
export { applyRuleSet, removeWeftChains, readState, type ApplyResult } from './apply';
export { weftRules, type WeftPolicyInput, type WeftNetwork } from './rules';
