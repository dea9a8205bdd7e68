// A client's identity could not be set up or read: a refused or unreachable
// join, unreadable or mismatched credential files. Its cause tells an outage
// (worth waiting out) from a refusal.
import { WeftError } from '../../common/errors';

export class IdentityError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_IDENTITY', message, options);
    this.name = 'IdentityError';
  }
}
