// The verified-token cache's key: SHA-256 of the token as a 32-character one-byte string. The
// token itself is never kept as a key.
import * as nodeCrypto from 'node:crypto';

/** crypto.hash (one call, no Hash object) from Node 20.12; engines allow older 20.x. */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'binary') => string }).hash;

export function digest(token: string): string {
  return oneShotHash !== undefined ? oneShotHash('sha256', token, 'binary') : nodeCrypto.createHash('sha256').update(token).digest('binary');
}
