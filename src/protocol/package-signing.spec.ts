import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  decodeSignature,
  findSigningKey,
  parsePublicKey,
  signedMessage,
  signPackage,
  verifyPackageSignature,
} from './package-signing';

const SHA = 'ab'.repeat(32);
const pem = (type: 'ed25519' | 'rsa' | 'ec') => {
  const { publicKey, privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 1024 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
};

describe('package signing', () => {
  it('signs a fixed, domain-separated text over the sha256', () => {
    expect(signedMessage(SHA).toString('ascii')).toBe(`lockstep-package-v1 sha256:${SHA}`);
    expect(signedMessage(SHA.toUpperCase()).toString('ascii')).toBe(`lockstep-package-v1 sha256:${SHA}`);
    expect(() => signedMessage('abc')).toThrow(/not a sha256/);
  });

  it('verifies its own signatures, and nothing else', () => {
    const keys = pem('ed25519');
    const signature = signPackage(SHA, keys.privateKey);
    expect(decodeSignature(signature)).toHaveLength(64);
    expect(verifyPackageSignature(SHA, signature, keys.publicKey)).toBe(true);
    expect(verifyPackageSignature('cd'.repeat(32), signature, keys.publicKey)).toBe(false);
    expect(verifyPackageSignature(SHA, signature, pem('ed25519').publicKey)).toBe(false);
    const flipped = Buffer.from(signature, 'base64');
    flipped[10] ^= 1;
    expect(verifyPackageSignature(SHA, flipped.toString('base64'), keys.publicKey)).toBe(false);
  });

  it('finds which key made a signature', () => {
    const a = { name: 'a', ...pem('ed25519') };
    const b = { name: 'b', ...pem('ed25519') };
    expect(findSigningKey(SHA, signPackage(SHA, b.privateKey), [a, b])?.name).toBe('b');
    expect(findSigningKey(SHA, signPackage(SHA, pem('ed25519').privateKey), [a, b])).toBeNull();
    expect(findSigningKey(SHA, signPackage(SHA, a.privateKey), [])).toBeNull();
  });

  it.each([
    ['', 'not 64 bytes'],
    ['abc', 'not base64 padding'],
    [Buffer.alloc(63).toString('base64'), '63 bytes'],
    [Buffer.alloc(65).toString('base64'), '65 bytes'],
    [`${Buffer.alloc(64).toString('base64')}!`, 'a stray character'],
  ])('refuses the signature text %j (%s)', (text) => {
    expect(decodeSignature(text)).toBeNull();
    expect(verifyPackageSignature(SHA, text, pem('ed25519').publicKey)).toBe(false);
  });

  it('reads an Ed25519 public key with its fingerprint (sha256 of the raw key)', () => {
    const { publicKey } = pem('ed25519');
    const parsed = parsePublicKey(`\n${publicKey}\n`);
    expect(parsed.pem).toBe(publicKey);
    expect(parsed.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(parsePublicKey(publicKey).fingerprint).toBe(parsed.fingerprint);
  });

  it.each([
    ['an RSA key', () => pem('rsa').publicKey, /must be an Ed25519 key, not rsa/],
    ['an EC key', () => pem('ec').publicKey, /must be an Ed25519 key, not ec/],
    ['a private key', () => pem('ed25519').privateKey, /is a private key/],
    ['text', () => 'hello', /must be a PEM public key/],
    ['a damaged PEM', () => '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', /not a readable/],
  ])('refuses %s', (_case, key, message) => {
    expect(() => parsePublicKey(key())).toThrow(message);
  });

  it('agrees with openssl pkeyutl -rawin (the command docs/packages.md gives)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-sign-'));
    try {
      const keys = pem('ed25519');
      fs.writeFileSync(path.join(dir, 'key.pem'), keys.privateKey);
      fs.writeFileSync(path.join(dir, 'message'), signedMessage(SHA));
      let signature: string;
      try {
        signature = execFileSync('openssl', [
          'pkeyutl',
          '-sign',
          '-inkey',
          path.join(dir, 'key.pem'),
          '-rawin',
          '-in',
          path.join(dir, 'message'),
        ]).toString('base64');
      } catch {
        console.log('openssl with pkeyutl -rawin is not here: the comparison is skipped');
        return;
      }
      // Ed25519 is deterministic: the same key signs the same text the same way.
      expect(signature).toBe(signPackage(SHA, keys.privateKey));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
