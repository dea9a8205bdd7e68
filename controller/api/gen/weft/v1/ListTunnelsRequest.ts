// Original file: controller/api/weft.proto


export interface ListTunnelsRequest {
}

export interface ListTunnelsRequest__Output {
}
