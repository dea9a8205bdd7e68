// Original file: controller/api/weft.proto


export interface Network {
  'name'?: (string);
  'vni'?: (number);
  'cidr'?: (string);
  'host_prefix_length'?: (number);
}

export interface Network__Output {
  'name': (string);
  'vni': (number);
  'cidr': (string);
  'host_prefix_length': (number);
}
