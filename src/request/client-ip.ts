// The client address written on the access line: the peer, or, when the peer is a trusted proxy,
// the nearest X-Forwarded-For hop that is not itself a trusted proxy (the rightmost address a
// client cannot forge).
import { normalizeAddress } from './trust.js';

export function clientIp(peer: string, forwardedFor: string | string[] | undefined, isTrusted: (a: string) => boolean): string {
  const p = normalizeAddress(peer);
  if (forwardedFor === undefined || !isTrusted(peer)) return p;
  const hops = (typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',')).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (hop === '') continue;
    if (!isTrusted(hop)) return hop.length > 64 ? hop.slice(0, 64) : hop;
  }
  return p;
}
