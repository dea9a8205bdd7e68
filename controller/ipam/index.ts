// IPAM: the cluster config and the per-host subnet leases. The rest of the
// controller uses only what is exported here.
export {
  type ClusterConfig, type NetworkConfig, DEFAULTS, DEFAULT_NETWORK,
  validateClusterConfig, defaultClusterConfig, loadClusterConfig, saveClusterConfig, findNetwork,
} from './cluster-config';
export {
  type Lease, type LeaseRef, type AcquireRequest, type LeaseOptions, type LeaseEvent, type ReclaimResult,
  acquireLease, renewLease, releaseLease, listLeases, reclaimExpired, watchLeases,
} from './leases';
export {
  ClusterConfigError, OrphanedLeasesError, LeaseRequestError, UnknownNetworkError, PoolExhaustedError,
  LeaseLostError, LeaseContentionError,
} from './errors';
export { type Cidr, parseCidr, formatCidr } from '../common/cidr';
