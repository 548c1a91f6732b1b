// Compact JWS parts: the base64url check of a segment and the fields the verifier reads from
// a JOSE header, decoded once per distinct header.
import { TextDecoder } from 'node:util';

/** Base64url alphabet, no padding. */
const B64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What the verifier reads from a JOSE header (nothing else in it is ever used). */
export interface HeaderFields {
  readonly alg: unknown;
  readonly kid: unknown;
  readonly crit: boolean;
}
/**
 * Header segments seen recently → their fields. An issuer signs every token with the same few
 * headers (alg, kid, typ), so the header is decoded once per key rather than once per token.
 * Only well-formed headers are kept; the map is cleared when full, so a flood of distinct
 * headers costs what it would without the map.
 */
const HEADER_MEMO_MAX = 64;
const HEADER_PART_MAX = 512;
const headerMemo = new Map<string, HeaderFields>();

export function headerFields(part: string): HeaderFields | null {
  const memo = headerMemo.get(part);
  if (memo !== undefined) return memo;
  const header = decodeJsonObject(part);
  if (header === null) return null;
  const fields: HeaderFields = Object.freeze({ alg: header.alg, kid: header.kid, crit: Object.hasOwn(header, 'crit') });
  if (part.length <= HEADER_PART_MAX) {
    if (headerMemo.size >= HEADER_MEMO_MAX) headerMemo.clear();
    headerMemo.set(part, fields);
  }
  return fields;
}

/** base64url → a JSON object (not an array), or null. */
function decodeJsonObject(part: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    return null;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** A base64url segment that decodes to whole bytes (length ≡ 1 mod 4 never does). */
export function isB64url(part: string): boolean {
  return part.length > 0 && part.length % 4 !== 1 && B64URL.test(part);
}
