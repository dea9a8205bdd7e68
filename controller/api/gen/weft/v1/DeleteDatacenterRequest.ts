// Original file: controller/api/weft.proto


export interface DeleteDatacenterRequest {
  'name'?: (string);
  /**
   * delete even while hosts name the datacenter
   */
  'force'?: (boolean);
}

export interface DeleteDatacenterRequest__Output {
  'name': (string);
  /**
   * delete even while hosts name the datacenter
   */
  'force': (boolean);
}
