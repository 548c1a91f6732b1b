// JWS signature checks with node:crypto.verify against cached KeyObjects, rather than jose's
// jwtVerify, which goes through WebCrypto and costs ~3× more per RS256 token. Where the
// arithmetic runs is chosen once per verifier: on the event loop, batched (with one CPU a
// thread-pool round trip adds a context switch and buys no parallelism) or on libuv's thread
// pool (with more CPUs, another core shares the work while the event loop serves requests).
//
// Batched: the checks asked for during one turn of the event loop run back to back once its I/O
// is handled (one setImmediate). After a turn's HTTP work the RSA code and data are cold, and a
// lone check costs 1.2-2× one that follows another (bench/README.md); under load a turn brings
// ~16 first-seen tokens, and a first-seen request cost ~14 µs less (of ~139). `inline` checks at
// once, synchronously: for tests and benchmarks.
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { KeyEntry } from './jwk.js';

/** Where signature checks run: on the event loop at once or at the end of the turn, or on libuv's thread pool. */
export type SignatureMode = 'inline' | 'batched' | 'thread-pool';

/** How each supported `alg` is checked with node:crypto. Nothing else (none, HS*) exists here. */
export interface AlgSpec {
  readonly digest: string | null;
  readonly kty: KeyEntry['kty'];
  /** Extra options for crypto.verify's key argument; null: pass the KeyObject itself. */
  readonly opts: Readonly<Record<string, unknown>> | null;
  /** ES*: the exact IEEE P1363 signature length (r‖s). */
  readonly sigBytes?: number;
}
const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
const P1363 = { dsaEncoding: 'ieee-p1363' };
const ALGS: Readonly<Record<string, AlgSpec>> = Object.freeze({
  RS256: { digest: 'sha256', kty: 'RSA', opts: null },
  RS384: { digest: 'sha384', kty: 'RSA', opts: null },
  RS512: { digest: 'sha512', kty: 'RSA', opts: null },
  PS256: { digest: 'sha256', kty: 'RSA', opts: PSS },
  PS384: { digest: 'sha384', kty: 'RSA', opts: PSS },
  PS512: { digest: 'sha512', kty: 'RSA', opts: PSS },
  ES256: { digest: 'sha256', kty: 'EC', opts: P1363, sigBytes: 64 },
  ES384: { digest: 'sha384', kty: 'EC', opts: P1363, sigBytes: 96 },
  ES512: { digest: 'sha512', kty: 'EC', opts: P1363, sigBytes: 132 },
  EdDSA: { digest: null, kty: 'OKP', opts: null },
});

/** How `alg` is checked, or undefined: not an algorithm we implement (none, HS*, unknown). */
export function algSpec(alg: string): AlgSpec | undefined {
  return Object.hasOwn(ALGS, alg) ? ALGS[alg] : undefined;
}

/** The largest signature of any supported algorithm (RSA-16384; ES512 is 132 bytes). */
const MAX_SIG_BYTES = 2048;
/** Its base64url length (and a little more): a longer signature part is refused undecoded. */
const MAX_SIG_CHARS = (MAX_SIG_BYTES * 4) / 3 + 4;

function keyArg(spec: AlgSpec, key: KeyObject): KeyObject | Record<string, unknown> {
  // RS*: node:crypto's default padding for an RSA KeyObject is PKCS#1 v1.5 (RSASSA-PKCS1-v1_5),
  // so the key goes in as is (no options object on the hot path). EdDSA: digest null.
  return spec.opts === null ? key : { key, ...spec.opts };
}

/**
 * The signature check on libuv's thread pool (crypto.verify with a callback): the RSA arithmetic
 * leaves the event loop, which meanwhile serves other requests. Same check, same inputs as the
 * inline one; any error means "does not verify".
 */
function signatureOkOnPool(spec: AlgSpec, entry: KeyEntry, data: Buffer, sig: Buffer): Promise<boolean> {
  if (spec.sigBytes !== undefined && sig.length !== spec.sigBytes) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    try {
      cryptoVerify(spec.digest, data, keyArg(spec, entry.key) as KeyObject, sig, (err, ok) => resolve(err === null && ok === true));
    } catch {
      resolve(false);
    }
  });
}

/** The signature check on the event loop: no thread hop, no promise. Never throws. */
function signatureOkInline(spec: AlgSpec, entry: KeyEntry, data: Buffer, sig: Buffer): boolean {
  if (spec.sigBytes !== undefined && sig.length !== spec.sigBytes) return false;
  try {
    return cryptoVerify(spec.digest, data, keyArg(spec, entry.key) as KeyObject, sig);
  } catch {
    return false;
  }
}

/** The candidate whose key verifies `sig` over `data`, on the event loop. Never throws. */
function verifyingKey(spec: AlgSpec, candidates: readonly KeyEntry[], data: Buffer, sig: Buffer): KeyEntry | undefined {
  for (const c of candidates) if (c.kty === spec.kty && signatureOkInline(spec, c, data, sig)) return c;
  return undefined;
}

/** The batched checks of this turn (one queue per process: every verifier's, in arrival order). */
let queued: Array<() => void> = [];
let scheduled = false;
function runQueued(): void {
  const jobs = queued;
  queued = [];
  scheduled = false;
  // Each job only verifies and resolves (the promise reactions run after the whole batch).
  for (let i = 0; i < jobs.length; i++) jobs[i]!();
}

export class SignatureChecker {
  /** Reused by inline checks (nothing else runs between writing and reading them); empty in the other modes. */
  private readonly dataScratch: Buffer;
  private readonly sigScratch: Buffer;

  constructor(readonly mode: SignatureMode, maxTokenBytes: number) {
    const inline = mode === 'inline';
    this.dataScratch = Buffer.allocUnsafe(inline ? maxTokenBytes : 0);
    this.sigScratch = Buffer.allocUnsafe(inline ? MAX_SIG_BYTES : 0);
  }

  /** The candidate key whose signature verifies, if any. Inline: into reused buffers. */
  check(spec: AlgSpec, candidates: readonly KeyEntry[], token: string, dot2: number, sigPart: string): KeyEntry | undefined | Promise<KeyEntry | undefined> {
    // No supported signature is this long: refused undecoded, in every mode.
    if (sigPart.length > MAX_SIG_CHARS) return undefined;
    if (this.mode === 'inline') {
      const data = this.dataScratch.subarray(0, this.dataScratch.write(token, 0, dot2, 'latin1'));
      const sig = this.sigScratch.subarray(0, this.sigScratch.write(sigPart, 'base64url'));
      return verifyingKey(spec, candidates, data, sig);
    }
    // Copies: the check runs after this request's synchronous part (and others') is done.
    const data = Buffer.from(token.slice(0, dot2), 'latin1');
    const sig = Buffer.from(sigPart, 'base64url');
    if (this.mode === 'batched') {
      return new Promise((resolve) => {
        queued.push(() => resolve(verifyingKey(spec, candidates, data, sig)));
        if (!scheduled) {
          scheduled = true;
          setImmediate(runQueued);
        }
      });
    }
    return (async () => {
      for (const c of candidates) if (c.kty === spec.kty && await signatureOkOnPool(spec, c, data, sig)) return c;
      return undefined;
    })();
  }
}
