// Original file: controller/api/weft.proto


export interface ListDatacentersRequest {
}

export interface ListDatacentersRequest__Output {
}
