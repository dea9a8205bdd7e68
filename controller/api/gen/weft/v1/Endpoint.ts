// Original file: controller/api/weft.proto


export interface Endpoint {
  'network'?: (string);
  'ip'?: (string);
  'container_id'?: (string);
  'host'?: (string);
  'labels'?: ({[key: string]: string});
  'ifname'?: (string);
}

export interface Endpoint__Output {
  'network': (string);
  'ip': (string);
  'container_id': (string);
  'host': (string);
  'labels': ({[key: string]: string});
  'ifname': (string);
}
