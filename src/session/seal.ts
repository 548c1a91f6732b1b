// Authenticated encryption of small JSON payloads for cookies (and for session records at rest).
//
// Format (every part base64url, no padding):  v1.<kid>.<iv>.<ciphertext>.<tag>
//   kid   6 chars: a one-way id of the key (HKDF output, not the key), so open() picks the key
//         without trying them all and a removed secret is refused without any decryption.
//   iv    12 random bytes per seal (AES-GCM's 96-bit nonce).
//   tag   the full 16-byte GCM tag; shorter tags are refused (node would accept them otherwise).
// Plaintext is JSON {"e":<expiresAtMs>,"p":<payload>}. The AAD binds the version, kid and
// `purpose`, so a value sealed for one purpose (a flow cookie) never opens as another (a session).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const SALT = 'cdf-auth-gateway/seal/v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_BYTES = 4;
/** Larger inputs are refused before any work (a chunked cookie is < 40 KB; a redis record similar). */
const MAX_SEALED_CHARS = 256 * 1024;
const B64URL = /^[A-Za-z0-9_-]+$/;

interface SealKey {
  readonly kid: string;
  readonly key: Buffer;
}

function deriveKey(secret: string): SealKey {
  const ikm = Buffer.from(secret, 'utf8');
  const key = Buffer.from(hkdfSync('sha256', ikm, SALT, 'aes-256-gcm key', 32));
  const kid = Buffer.from(hkdfSync('sha256', ikm, SALT, 'key id', KID_BYTES)).toString('base64url');
  return { kid, key };
}

function aad(kid: string, purpose: string): Buffer {
  // JSON keeps the fields apart whatever characters `purpose` holds.
  return Buffer.from(JSON.stringify([VERSION, kid, purpose]), 'utf8');
}

/** Strict base64url: only the alphabet, and canonical (re-encodes to the same text). */
function decodePart(text: string): Buffer | null {
  if (!B64URL.test(text)) return null;
  const buf = Buffer.from(text, 'base64url');
  return buf.toString('base64url') === text ? buf : null;
}

export class Sealer {
  private readonly sealKey: SealKey;
  /** kid → keys with that id (more than one only on a 32-bit kid collision between secrets). */
  private readonly byKid: ReadonlyMap<string, readonly SealKey[]>;

  /** secrets: newest first; each ≥ 32 bytes. Seals with the first, opens with any (rotation). */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new TypeError('Sealer: at least one secret is required');
    const keys = secrets.map((s) => {
      if (typeof s !== 'string' || Buffer.byteLength(s, 'utf8') < 32) throw new TypeError('Sealer: each secret must be at least 32 bytes');
      return deriveKey(s);
    });
    this.sealKey = keys[0]!;
    const byKid = new Map<string, SealKey[]>();
    for (const k of keys) {
      const list = byKid.get(k.kid);
      if (list === undefined) byKid.set(k.kid, [k]);
      else if (!list.some((x) => x.key.equals(k.key))) list.push(k);
    }
    this.byKid = byKid;
  }

  /** Seal `payload` (JSON-serialisable) for `purpose` until `expiresAtMs` (epoch ms). Throws on programmer error only. */
  seal(purpose: string, payload: unknown, expiresAtMs: number): string {
    if (typeof purpose !== 'string' || purpose.length === 0) throw new TypeError('Sealer.seal: purpose must be a non-empty string');
    if (!Number.isFinite(expiresAtMs)) throw new TypeError('Sealer.seal: expiresAtMs must be a finite number');
    const p: string | undefined = JSON.stringify(payload);
    if (p === undefined) throw new TypeError('Sealer.seal: payload is not JSON-serialisable');
    const json = `{"e":${JSON.stringify(expiresAtMs)},"p":${p}}`;
    const { kid, key } = this.sealKey;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(kid, purpose));
    const ct = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${VERSION}.${kid}.${iv.toString('base64url')}.${ct.toString('base64url')}.${tag.toString('base64url')}`;
  }

  /** The payload, or null on any problem (malformed, unknown key, tampered, wrong purpose, expired: nowMs ≥ expiresAtMs). Never throws. */
  open<T = unknown>(purpose: string, sealed: string, nowMs: number): T | null {
    try {
      if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_CHARS) return null;
      const parts = sealed.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) return null;
      const [, kid, ivText, ctText, tagText] = parts as [string, string, string, string, string];
      const candidates = this.byKid.get(kid);
      if (candidates === undefined) return null;
      const iv = decodePart(ivText);
      const ct = decodePart(ctText);
      const tag = decodePart(tagText);
      if (iv === null || ct === null || tag === null || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
      for (const { key } of candidates) {
        const plain = decrypt(key, iv, ct, tag, aad(kid, purpose));
        if (plain === null) continue;
        const obj: unknown = JSON.parse(plain);
        if (obj === null || typeof obj !== 'object') return null;
        const { e, p } = obj as { e?: unknown; p?: unknown };
        if (typeof e !== 'number' || !Number.isFinite(e) || !(nowMs < e) || p === undefined) return null;
        return p as T;
      }
      return null;
    } catch {
      return null;
    }
  }
}

function decrypt(key: Buffer, iv: Buffer, ct: Buffer, tag: Buffer, additional: Buffer): string | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(additional);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch {
    return null; // authentication failed
  }
}
