// Original file: controller/api/weft.proto


export interface DatacenterSubnet {
  'network'?: (string);
  /**
   * CIDR leased to host
   */
  'subnet'?: (string);
  'host'?: (string);
}

export interface DatacenterSubnet__Output {
  'network': (string);
  /**
   * CIDR leased to host
   */
  'subnet': (string);
  'host': (string);
}
