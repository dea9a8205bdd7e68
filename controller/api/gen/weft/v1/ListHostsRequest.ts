// Original file: controller/api/weft.proto


export interface ListHostsRequest {
}

export interface ListHostsRequest__Output {
}
