export { ensureCa, loadCa, caCertHash, CA_CERT_FILE, CA_KEY_FILE, type Ca, type EnsureCaOptions } from './ca';
export { PkiError } from './errors';
export { issueClientCert, issueServerCert, MAX_LEAF_TTL_DAYS, type IssuedCert, type ClientCertOptions, type ServerCertOptions } from './issue';
export { serverCertFor, SERVER_CERT_FILE, SERVER_KEY_FILE, type ServerCertFiles, type ServerCertFilesOptions } from './serving';
export { identityFromPeerCert, peerIdentity, callIdentity, type HostIdentity, type IngressIdentity, type PeerIdentity, type IdentityResult, type CallWithAuth } from './identity';
export { serverCredentials, reloadableServerCredentials, clientCredentials, type ServerTlsMaterial, type ClientTlsMaterial } from './grpc';
export { hostUri, isDnsName, HOST_URI_PREFIX } from '../common/names';
export { certIdentity, callCertIdentity, type CertIdentityResult } from './identity';
export { verifyPossession } from './possession';
