/**
 * Package signatures, for both ends: the server (upload, signing keys), the reference agent
 * (before it installs) and the package builder import this. Plain TypeScript on node:crypto.
 *
 * What is signed is not the archive itself but a short, domain-separated text naming its SHA-256
 * (as minisign signs a prehash): the server hashes an upload while it streams it to disk, and an
 * agent hashes its download, so neither holds a package in memory to verify it. The text is
 * `lockstep-package-v1 sha256:<64 lower-case hex digits>`, in ASCII, with no line break; the
 * signature is Ed25519 (RFC 8032, pure) over those bytes, sent as base64 of its 64 bytes.
 * docs/packages.md, "Signing", says how to sign with openssl.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** The signed text's prefix; a later format would change the version in it, never the meaning of this one. */
export const SIGNED_MESSAGE_PREFIX = 'lockstep-package-v1 sha256:';

const SHA256_HEX = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
export const SIGNATURE_BYTES = 64;

/** The exact bytes a package's signature is over. */
export function signedMessage(sha256: string): Buffer {
  const hex = sha256.toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new Error(`not a sha256 (64 hex digits): ${sha256}`);
  return Buffer.from(`${SIGNED_MESSAGE_PREFIX}${hex}`, 'ascii');
}

/** A public key as registered: the key, its PEM (SPKI) and a fingerprint (sha256 of the raw 32-byte key, hex). */
export interface ParsedPublicKey {
  key: KeyObject;
  pem: string;
  fingerprint: string;
}

/**
 * Reads an Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`, SPKI, as
 * `openssl pkey -pubout` writes it). Throws an Error saying what is wrong for anything else:
 * not PEM, a private key, another algorithm.
 */
export function parsePublicKey(pem: string): ParsedPublicKey {
  const text = pem.trim();
  if (/PRIVATE KEY-----/.test(text))
    throw new Error('publicKey is a private key: register the public key only (openssl pkey -in key.pem -pubout)');
  if (!/^-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----$/.test(text))
    throw new Error('publicKey must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch {
    throw new Error('publicKey is not a readable PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`publicKey must be an Ed25519 key, not ${key.asymmetricKeyType ?? 'an unknown type'}`);
  const der = key.export({ type: 'spki', format: 'der' });
  // An Ed25519 SPKI is a 12-byte header and the 32-byte key.
  const raw = der.subarray(der.length - 32);
  return {
    key,
    pem: key.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: createHash('sha256').update(raw).digest('hex'),
  };
}

/** The 64 bytes of a signature sent as base64, or null when the text is not that. */
export function decodeSignature(text: string): Buffer | null {
  const trimmed = text.trim();
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) return null;
  const bytes = Buffer.from(trimmed, 'base64');
  return bytes.length === SIGNATURE_BYTES ? bytes : null;
}

/** Whether `signature` (base64) is this key's signature of the package with this sha256. */
export function verifyPackageSignature(sha256: string, signature: string, publicKey: KeyObject | string): boolean {
  const bytes = decodeSignature(signature);
  if (!bytes) return false;
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  try {
    return verify(null, signedMessage(sha256), key, bytes);
  } catch {
    return false;
  }
}

/** The first of these keys whose signature this is, or null: an unknown key, or a package changed after signing. */
export function findSigningKey<K extends { publicKey: string }>(
  sha256: string,
  signature: string,
  keys: K[],
): K | null {
  return keys.find((k) => verifyPackageSignature(sha256, signature, k.publicKey)) ?? null;
}

/** Signs the package with this sha256 with an Ed25519 private key (PEM): the signature as base64. */
export function signPackage(sha256: string, privateKeyPem: string): string {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`the signing key must be an Ed25519 private key, not ${key.asymmetricKeyType}`);
  return sign(null, signedMessage(sha256), key).toString('base64');
}

/** A cluster's signing policy as agents receive it (pairing and heartbeat answers). */
export interface SigningPolicy {
  /** Bumped on every change of the cluster's keys or requireSignedPackages; agents send back the one they hold. */
  revision: number;
  requireSignedPackages: boolean;
  keys: { id: string; name: string; publicKey: string }[];
}
