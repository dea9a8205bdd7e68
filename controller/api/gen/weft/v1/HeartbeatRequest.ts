// Original file: controller/api/weft.proto


export interface HeartbeatRequest {
  'name'?: (string);
}

export interface HeartbeatRequest__Output {
  'name': (string);
}
