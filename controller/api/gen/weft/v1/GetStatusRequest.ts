// Original file: controller/api/weft.proto


export interface GetStatusRequest {
}

export interface GetStatusRequest__Output {
}
