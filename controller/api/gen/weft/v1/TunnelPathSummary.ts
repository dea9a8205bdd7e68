// Original file: controller/api/weft.proto


export interface TunnelPathSummary {
  /**
   * the hosts' datacenter
   */
  'from'?: (string);
  /**
   * the remote datacenter
   */
  'to'?: (string);
  /**
   * gateway -> hosts that chose it: a non-gateway host chooses a gateway of
   * `from`, a gateway one of `to`; "" counts hosts with no gateway answering.
   */
  'chosen'?: ({[key: string]: number});
  /**
   * summed over the reporting hosts
   */
  'failovers'?: (number);
  /**
   * hosts of `from` that reported a path to `to`
   */
  'hosts'?: (number);
}

export interface TunnelPathSummary__Output {
  /**
   * the hosts' datacenter
   */
  'from': (string);
  /**
   * the remote datacenter
   */
  'to': (string);
  /**
   * gateway -> hosts that chose it: a non-gateway host chooses a gateway of
   * `from`, a gateway one of `to`; "" counts hosts with no gateway answering.
   */
  'chosen': ({[key: string]: number});
  /**
   * summed over the reporting hosts
   */
  'failovers': (number);
  /**
   * hosts of `from` that reported a path to `to`
   */
  'hosts': (number);
}
