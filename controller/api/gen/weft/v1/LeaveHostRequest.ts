// Original file: controller/api/weft.proto


export interface LeaveHostRequest {
  'name'?: (string);
}

export interface LeaveHostRequest__Output {
  'name': (string);
}
