// The message of the ConfigError a settings loader throws, so a config test
// can say exactly how a bad value is worded (which flag, variable or file
// key it names) and fail plainly when the value was taken instead.
import { expect } from 'vitest';
import { ConfigError } from '../../controller/common/config-sources';

export function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}
