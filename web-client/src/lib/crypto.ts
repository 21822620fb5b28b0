// Encryption at rest. Every stored object that holds personal data is
// sealed with AES-GCM (a fresh 96-bit IV per write) under a random data key.
// The data key is wrapped (AES-GCM) by a key derived from the worker's
// password with PBKDF2-SHA256; only the wrapped form, the salt and the
// iteration count are stored. Unwrapped, the data key is a non-extractable
// CryptoKey held in memory while the app is unlocked.

export const PBKDF2_ITERATIONS = 600_000;

export interface WrappedKey {
  salt: Uint8Array;
  iterations: number;
  iv: Uint8Array;
  wrapped: Uint8Array;
}

export interface Sealed {
  iv: Uint8Array;
  ct: ArrayBuffer;
}

export class InsecureContextError extends Error {
  constructor() {
    super('crypto.subtle is not available: the page is not in a secure context');
  }
}

function subtle(): SubtleCrypto {
  if (!globalThis.isSecureContext && typeof window !== 'undefined') throw new InsecureContextError();
  if (!globalThis.crypto?.subtle) throw new InsecureContextError();
  return globalThis.crypto.subtle;
}

export function canEncrypt(): boolean {
  try {
    subtle();
    return true;
  } catch {
    return false;
  }
}

function random(n: number): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

async function deriveKek(password: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const s = subtle();
  const base = await s.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveKey']);
  return s.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['wrapKey', 'unwrapKey'],
  );
}

async function wrapRaw(raw: CryptoKey, password: string, iterations: number): Promise<WrappedKey> {
  const salt = random(16);
  const iv = random(12);
  const kek = await deriveKek(password, salt, iterations);
  const wrapped = new Uint8Array(await subtle().wrapKey('raw', raw, kek, { name: 'AES-GCM', iv }));
  return { salt, iterations, iv, wrapped };
}

async function unwrap(w: WrappedKey, password: string, extractable: boolean): Promise<CryptoKey> {
  const kek = await deriveKek(password, w.salt, w.iterations);
  return subtle().unwrapKey(
    'raw',
    w.wrapped as Uint8Array<ArrayBuffer>,
    kek,
    { name: 'AES-GCM', iv: w.iv as Uint8Array<ArrayBuffer> },
    { name: 'AES-GCM', length: 256 },
    extractable,
    ['encrypt', 'decrypt'],
  );
}

/**
 * Creates a new data key wrapped by password; returns the wrapped form and
 * a non-extractable copy. The password is derived once: the same key that
 * wraps the data key unwraps it again as non-extractable.
 */
export async function createDataKey(
  password: string,
  iterations = PBKDF2_ITERATIONS,
): Promise<{ wrapped: WrappedKey; key: CryptoKey }> {
  const s = subtle();
  const temp = await s.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
  const salt = random(16);
  const iv = random(12);
  const kek = await deriveKek(password, salt, iterations);
  const wrapped = new Uint8Array(await s.wrapKey('raw', temp, kek, { name: 'AES-GCM', iv }));
  const key = await s.unwrapKey('raw', wrapped, kek, { name: 'AES-GCM', iv }, { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  return { wrapped: { salt, iterations, iv, wrapped }, key };
}

/** Unwraps the data key with password; rejects when the password is wrong. */
export async function unlockDataKey(w: WrappedKey, password: string): Promise<CryptoKey> {
  return unwrap(w, password, false);
}

/** Re-wraps the data key under a new password, with a fresh salt. */
export async function rewrapDataKey(w: WrappedKey, oldPassword: string, newPassword: string): Promise<WrappedKey> {
  const raw = await unwrap(w, oldPassword, true);
  return wrapRaw(raw, newPassword, Math.max(w.iterations, PBKDF2_ITERATIONS));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function seal(key: CryptoKey, value: unknown): Promise<Sealed> {
  const iv = random(12);
  const data = encoder.encode(JSON.stringify(value));
  const ct = await subtle().encrypt({ name: 'AES-GCM', iv }, key, data);
  return { iv, ct };
}

export async function open<T>(key: CryptoKey, s: Sealed): Promise<T> {
  const data = await subtle().decrypt({ name: 'AES-GCM', iv: s.iv as Uint8Array<ArrayBuffer> }, key, s.ct);
  return JSON.parse(decoder.decode(data)) as T;
}
