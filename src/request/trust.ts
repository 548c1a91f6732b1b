// Which peers may speak for the client (X-Forwarded-*, forward-auth headers): the configured
// `server.trustedProxies`, matched with node:net BlockList. Built once from config.
import { BlockList, isIP } from 'node:net';

const never = (): boolean => false;

/** `::ffff:10.0.0.1` → `10.0.0.1`; zone ids (`fe80::1%eth0`) are dropped. Anything else unchanged. */
export function normalizeAddress(address: string): string {
  let a = address;
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  if (a.length > 7 && (a.charCodeAt(0) === 58 /* : */) && /^::ffff:/i.test(a)) {
    const v4 = a.slice(7);
    if (isIP(v4) === 4) return v4;
  }
  return a;
}

/**
 * Compile CIDRs and single addresses (IPv4 or IPv6) into a predicate over socket addresses.
 * IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, as a dual-stack socket reports them) match IPv4
 * entries. An empty list gives a constant `false`. Throws TypeError on an entry that is not an
 * address or CIDR (config validation should have caught it).
 */
export function trustedProxyMatcher(cidrs: readonly string[]): (address: string) => boolean {
  if (cidrs.length === 0) return never;
  const list = new BlockList();
  for (const raw of cidrs) {
    const entry = raw.trim();
    const slash = entry.indexOf('/');
    const addr = normalizeAddress(slash === -1 ? entry : entry.slice(0, slash));
    const family = isIP(addr);
    if (family === 0) throw new TypeError(`trusted proxy entry is not an IP address or CIDR: ${raw}`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) {
      list.addAddress(addr, type);
      continue;
    }
    const prefixText = entry.slice(slash + 1);
    let prefix = Number(prefixText);
    // `::ffff:10.0.0.0/104` is the IPv4 net 10.0.0.0/8 written as IPv6.
    if (family === 4 && addr !== entry.slice(0, slash)) prefix -= 96;
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefixText) || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new TypeError(`trusted proxy entry has a bad prefix length: ${raw}`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return (address: string): boolean => {
    const a = normalizeAddress(address);
    const family = isIP(a);
    if (family === 0) return false;
    return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}
