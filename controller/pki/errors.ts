/** Anything wrong with the cluster CA or certificates: the message says which file and what to do. */
export class PkiError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
  }
}
