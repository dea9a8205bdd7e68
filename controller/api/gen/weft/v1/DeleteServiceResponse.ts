// Original file: controller/api/weft.proto


export interface DeleteServiceResponse {
  'deleted'?: (boolean);
}

export interface DeleteServiceResponse__Output {
  'deleted': (boolean);
}
