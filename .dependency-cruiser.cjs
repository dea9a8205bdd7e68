// The allowed import directions between weft's rooms (see ARCHITECTURE.md).
// `npm run check:deps` prints every violation; test/architecture/dependencies.unit.test.ts
// runs the same rules, plus a check that no two folders import each other,
// in every test run.
/** @type {import('dependency-cruiser').IConfiguration} */
const ROOMS = '^(controller|cni-plugin|dataplane|ingress)/';
// The controller's state and serving layers, lowest first: none imports one above it.
const CONTROLLER_LAYERS = ['ipam|registry|pki', 'service', 'daemon', 'cli'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module imports itself through others.',
      severity: 'error',
      from: { path: ROOMS },
      to: { circular: true },
    },
    {
      name: 'common-depends-on-no-role',
      comment: 'controller/common is the plumbing every role uses; it imports nothing of weft outside itself.',
      severity: 'error',
      from: { path: '^controller/common/' },
      to: { path: ROOMS, pathNot: '^controller/common/' },
    },
    {
      name: 'dataplane-is-a-leaf',
      comment: 'The kernel library knows nothing of the controller, the agent or the ingress (it shares only the error base).',
      severity: 'error',
      from: { path: '^dataplane/' },
      to: { path: '^(controller|cni-plugin|ingress)/', pathNot: '^controller/common/errors\\.ts$' },
    },
    {
      name: 'contract-depends-on-common-only',
      comment: 'controller/api (the proto, its types, the rules and the one client) is what every role builds on; it reaches into no controller internals and no role.',
      severity: 'error',
      from: { path: '^controller/api/' },
      to: { path: ROOMS, pathNot: '^controller/(api|common)/' },
    },
    {
      name: 'roles-use-the-contract-not-controller-internals',
      comment: 'The agent and the ingress reach the controller only through controller/api and share only controller/common.',
      severity: 'error',
      from: { path: '^(cni-plugin|ingress)/' },
      to: { path: '^controller/', pathNot: '^controller/(api|common)/' },
    },
    {
      name: 'roles-stay-apart',
      comment: 'The agent and the ingress do not import each other ($1: the importing role).',
      severity: 'error',
      from: { path: '^(cni-plugin|ingress)/' },
      to: { path: '^(cni-plugin|ingress)/', pathNot: '^$1/' },
    },
    {
      name: 'controller-never-imports-a-role',
      comment: 'Only the entry point (controller/cli/weft.ts) knows every role, and it loads them on demand.',
      severity: 'error',
      from: { path: '^controller/', pathNot: '^controller/cli/weft\\.ts$' },
      to: { path: '^(cni-plugin|ingress)/' },
    },
    {
      name: 'entry-point-loads-roles-on-demand',
      comment: 'weft version must not pay for every role: the entry point imports roles with import() only.',
      severity: 'error',
      from: { path: '^controller/cli/weft\\.ts$' },
      to: { path: ROOMS, pathNot: '^controller/common/', dependencyTypesNot: ['dynamic-import'] },
    },
    {
      name: 'store-is-the-bottom-of-the-controller',
      severity: 'error',
      from: { path: '^controller/store/' },
      to: { path: '^controller/', pathNot: '^controller/(store|common)/' },
    },
    // IPAM, registry and PKI sit on the store and the contract; the service, daemon and CLI sit on them.
    ...CONTROLLER_LAYERS.slice(0, -1).map((layer, i) => ({
      name: `controller-${layer.replace(/\|/g, '-')}-below-${CONTROLLER_LAYERS[i + 1]}`,
      severity: 'error',
      from: { path: `^controller/(${layer})/` },
      to: { path: `^controller/(${CONTROLLER_LAYERS.slice(i + 1).join('|')})/` },
    })),
    {
      name: 'cni-protocol-does-not-know-the-agent',
      comment: 'cni-plugin/cni speaks the CNI protocol; the agent implements its handlers.',
      severity: 'error',
      from: { path: '^cni-plugin/cni/' },
      to: { path: '^cni-plugin/agent/' },
    },
    {
      name: 'no-tests-in-the-product',
      severity: 'error',
      from: { path: ROOMS },
      to: { path: '^test/' },
    },
    {
      name: 'resolvable',
      comment: 'Every import resolves.',
      severity: 'error',
      from: { path: ROOMS },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
