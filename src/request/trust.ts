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

export interface Cidr {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
  /** null: a single address. */
  readonly prefix: number | null;
}

/**
 * Parses one `server.trustedProxies` entry: an IPv4 or IPv6 address, optionally `/prefix`.
 * `::ffff:a.b.c.d` is the IPv4 address (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). Throws TypeError
 * whose message says what is wrong (config validation reports it at the key).
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const written = slash === -1 ? text : text.slice(0, slash);
  if (written.includes('%') || isIP(written) === 0) {
    throw new TypeError('must be an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)');
  }
  const address = normalizeAddress(written);
  const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
  if (slash === -1) return { address, family, prefix: null };
  const bits = text.slice(slash + 1);
  const max = isIP(written) === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new TypeError(`prefix length must be between 0 and ${max}`);
  const mapped = address !== written;
  if (mapped && Number(bits) < 96) throw new TypeError('an IPv4-mapped address (::ffff:…) needs a prefix length between 96 and 128');
  return { address, family, prefix: mapped ? Number(bits) - 96 : Number(bits) };
}

/**
 * Compile CIDRs and single addresses (IPv4 or IPv6) into a predicate over socket addresses.
 * IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, as a dual-stack socket reports them) match IPv4
 * entries. An empty list gives a constant `false`. Throws TypeError on an entry parseCidr refuses
 * (config validation should have caught it).
 */
export function trustedProxyMatcher(cidrs: readonly string[]): (address: string) => boolean {
  if (cidrs.length === 0) return never;
  const list = new BlockList();
  for (const raw of cidrs) {
    const { address, family, prefix } = parseCidr(raw.trim());
    if (prefix === null) list.addAddress(address, family);
    else list.addSubnet(address, prefix, family);
  }
  return (address: string): boolean => {
    const a = normalizeAddress(address);
    const family = isIP(a);
    if (family === 0) return false;
    return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}
