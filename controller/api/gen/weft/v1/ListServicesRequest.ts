// Original file: controller/api/weft.proto


export interface ListServicesRequest {
}

export interface ListServicesRequest__Output {
}
