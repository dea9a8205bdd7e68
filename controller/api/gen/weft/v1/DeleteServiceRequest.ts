// Original file: controller/api/weft.proto


export interface DeleteServiceRequest {
  'name'?: (string);
}

export interface DeleteServiceRequest__Output {
  'name': (string);
}
