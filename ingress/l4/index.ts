// The L4 kernel fast path (TCP/UDP DNAT with nf_tables): see programmer.ts.
export { createL4Programmer, type L4Programmer, type L4ProgrammerOptions, type SyncResult } from './programmer';
export type { L4Service, SourceNat } from './render';
