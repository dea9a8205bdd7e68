import { WeftError } from '../common/errors';

/** Anything wrong with the cluster CA or certificates: the message says which file and what to do. */
export class PkiError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_PKI', message, options);
    this.name = 'PkiError';
  }
}
