// The one place that loads @peculiar/x509. It resolves its internals through
// tsyringe, which needs the Reflect metadata polyfill evaluated first; ES
// module imports evaluate in order, so importing the polyfill here, above the
// library, is enough for every module that takes x509 from this file.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** ECDSA P-256 with SHA-256: small keys, fast handshakes, supported by every TLS stack we meet. */
export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export const subtle = webcrypto.subtle;

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
