// Original file: controller/api/weft.proto


export interface Backend {
  'ip'?: (string);
  'host'?: (string);
  'rack'?: (string);
  'datacenter'?: (string);
  'container_id'?: (string);
}

export interface Backend__Output {
  'ip': (string);
  'host': (string);
  'rack': (string);
  'datacenter': (string);
  'container_id': (string);
}
