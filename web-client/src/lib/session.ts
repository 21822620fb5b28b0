// The worker's session on this device: first sign-in (PocketBase auth,
// device registration, a new data key wrapped by the password), unlock
// offline with the password, lock when idle or hidden, change of password
// (re-wraps the key), sign-out and the wipe of a revoked device.
import { signal } from '@preact/signals';
import PocketBase, { BaseAuthStore } from 'pocketbase';
import { db, deleteDatabase, type AccountRow, type AttemptsRow } from './db';
import { canEncrypt, createDataKey, open, rewrapDataKey, seal, unlockDataKey } from './crypto';
import { request, ApiError, NetworkError, isRevoked } from './api';
import { uuid } from './ids';

export const APP_VERSION = '1.0.0';
/** The idle lock time until the server sends its own (internal/syncapi/policy.go). */
export const DEFAULT_LOCK_MINUTES = 15;
/** The token is refreshed at the start of a sync when the last refresh is older than this. */
export const REFRESH_EVERY_MS = 60 * 60_000;

/** What the server asks of the device, with the registration and every pull page. */
export interface DevicePolicy {
  lockAfterSeconds: number;
}

export type Phase = 'loading' | 'insecure' | 'signin' | 'locked' | 'ready';

export interface Profile {
  email: string;
  name: string;
  token: string;
}

export const phase = signal<Phase>('loading');
export const account = signal<AccountRow | null>(null);
export const profile = signal<Profile | null>(null);
/** Set when the server refused the token: the worker types the password again. */
export const needsPassword = signal(false);
/** Shown on the sign-in screen after a wipe: how many unsynced mutations were dropped. */
export const wipedNotice = signal<number | null>(null);

let dataKey: CryptoKey | null = null;

export function key(): CryptoKey | null {
  return dataKey;
}

/** The PocketBase SDK, with an in-memory auth store: no token in localStorage. */
export function pocketbase(token?: string): PocketBase {
  const pb = new PocketBase(location.origin, new BaseAuthStore());
  if (token) pb.authStore.save(token, null);
  return pb;
}

export async function start(): Promise<void> {
  if (!canEncrypt()) {
    phase.value = 'insecure';
    return;
  }
  const acc = (await db().meta.get('account')) as AccountRow | undefined;
  account.value = acc ?? null;
  phase.value = acc ? 'locked' : 'signin';
}

function platform(): string {
  const ua = navigator.userAgent;
  const m = ua.match(/Android [\d.]+|iPhone OS [\d_]+|iPad|Windows NT [\d.]+|Mac OS X [\d_]+|Linux/);
  return (m?.[0] ?? 'browser').replace(/_/g, '.').slice(0, 100);
}

export class SignInError extends Error {
  constructor(public code: 'credentials' | 'network' | 'revoked' | 'superuser') {
    super(code);
  }
}

/** First sign-in on this device: needs the network. */
export async function signIn(email: string, password: string): Promise<void> {
  const pb = pocketbase();
  // The key derivation (PBKDF2, 600,000 rounds) needs only the password: it
  // runs while the server checks the password and registers the device.
  const keyReady = createDataKey(password);
  keyReady.catch(() => {});
  let auth;
  try {
    auth = await pb.collection('users').authWithPassword(email, password);
  } catch (e: any) {
    throw new SignInError(e?.status === 400 ? 'credentials' : 'network');
  }
  const record = auth.record;
  const deviceId = uuid();
  let registered: { id: string; secret?: string; policy?: DevicePolicy };
  try {
    registered = await request('POST', '/api/sync/devices', { token: auth.token }, {
      id: deviceId,
      name: `${platform()} – ${record.name || email}`.slice(0, 100),
      platform: platform(),
      appVersion: APP_VERSION,
    });
  } catch (e) {
    if (isRevoked(e)) throw new SignInError('revoked');
    if (e instanceof ApiError && e.status === 401) throw new SignInError('superuser');
    throw new SignInError('network');
  }
  const { wrapped, key: k } = await keyReady;
  const p: Profile = { email, name: String(record.name ?? ''), token: auth.token };
  const acc: AccountRow = {
    k: 'account',
    userId: record.id,
    role: String(record.role ?? ''),
    teams: (record.teams as string[]) ?? [],
    deviceId,
    deviceSecret: registered.secret ?? '',
    key: wrapped,
    profile: await seal(k, p),
    lockMinutes: lockMinutesOf(registered.policy) ?? DEFAULT_LOCK_MINUTES,
  };
  await db().transaction('rw', db().meta, async () => {
    await db().meta.put(acc);
    await db().meta.put({ k: 'attempts', failures: 0, notBefore: 0 });
  });
  dataKey = k;
  account.value = acc;
  profile.value = p;
  refreshedAt = Date.now();
  wipedNotice.value = null;
  phase.value = 'ready';
  void requestPersistence();
}

/** Seconds to wait after n failed unlocks: none for the first three, then doubling up to 5 minutes. */
export function unlockDelay(failures: number): number {
  return failures < 3 ? 0 : Math.min(300, 2 ** (failures - 2));
}

export class UnlockError extends Error {
  constructor(
    public code: 'wrong' | 'wait',
    public waitSeconds = 0,
  ) {
    super(code);
  }
}

/** Unlocks with the password, offline. Wrong passwords slow further attempts. */
export async function unlock(password: string): Promise<void> {
  const acc = account.value;
  if (!acc) throw new Error('no account on this device');
  const att = ((await db().meta.get('attempts')) as AttemptsRow | undefined) ?? {
    k: 'attempts',
    failures: 0,
    notBefore: 0,
  };
  const now = Date.now();
  if (att.notBefore > now) throw new UnlockError('wait', Math.ceil((att.notBefore - now) / 1000));
  let k: CryptoKey;
  try {
    k = await unlockDataKey(acc.key, password);
  } catch {
    const failures = att.failures + 1;
    const wait = unlockDelay(failures);
    await db().meta.put({ k: 'attempts', failures, notBefore: Date.now() + wait * 1000 });
    throw new UnlockError('wrong', wait);
  }
  await db().meta.put({ k: 'attempts', failures: 0, notBefore: 0 });
  profile.value = await open<Profile>(k, acc.profile);
  dataKey = k;
  phase.value = 'ready';
}

/** Drops the key and everything decrypted. The outbox stays, sealed. */
export function lock(): void {
  if (phase.value !== 'ready') return;
  dataKey = null;
  profile.value = null;
  phase.value = 'locked';
}

/** Stores a new token (after the server refused the old one). */
export async function reauthenticate(password: string): Promise<void> {
  const p = profile.value;
  const acc = account.value;
  if (!p || !acc || !dataKey) throw new Error('locked');
  let auth;
  try {
    auth = await pocketbase().collection('users').authWithPassword(p.email, password);
  } catch (e: any) {
    throw new SignInError(e?.status === 400 ? 'credentials' : 'network');
  }
  await saveToken(auth.token);
  refreshedAt = Date.now();
  needsPassword.value = false;
}

export async function saveToken(token: string): Promise<void> {
  const p = profile.value;
  if (!p || !dataKey) return;
  const next = { ...p, token };
  const sealed = await seal(dataKey, next);
  // Only the profile changes: a policy stored meanwhile stays.
  await db().meta.update('account', (row) => void ((row as AccountRow).profile = sealed));
  if (account.value) account.value = { ...account.value, profile: sealed };
  profile.value = next;
}

let refreshedAt = 0;

/**
 * The sliding session: at the start of a sync, when the last refresh is
 * older than REFRESH_EVERY_MS (or the app was just opened), the token is
 * exchanged for a new one (PocketBase auth-refresh), so a worker who syncs
 * now and then is never signed out in the field. No answer (offline, a
 * server fault) is not an error: the token stays and the next sync tries
 * again. A refused refresh changes nothing here: the sync calls that follow
 * carry the same token and the device secret, and their answer leads where
 * it always does (a revoked device wipes itself, a refused session asks
 * for the password).
 */
export async function refreshSession(): Promise<void> {
  const p = profile.value;
  if (!p || !dataKey || Date.now() - refreshedAt < REFRESH_EVERY_MS) return;
  let auth: { token?: string };
  try {
    auth = await request('POST', '/api/collections/users/auth-refresh', { token: p.token });
  } catch (e) {
    if (e instanceof NetworkError || e instanceof ApiError) return;
    throw e;
  }
  if (!auth?.token) return;
  refreshedAt = Date.now();
  await saveToken(auth.token);
}

function lockMinutesOf(policy: DevicePolicy | undefined): number | null {
  const s = Number(policy?.lockAfterSeconds);
  return Number.isFinite(s) && s > 0 ? s / 60 : null;
}

/** Stores the idle lock time the server sent, when it differs; the idle and hidden timers read it. */
export async function applyPolicy(policy: DevicePolicy | undefined): Promise<void> {
  const minutes = lockMinutesOf(policy);
  const acc = account.value;
  if (minutes === null || !acc || acc.lockMinutes === minutes) return;
  await db().meta.update('account', (row) => void ((row as AccountRow).lockMinutes = minutes));
  if (account.value) account.value = { ...account.value, lockMinutes: minutes };
}

/** Changes the password on the server, then re-wraps the data key: nothing is downloaded again. */
export async function changePassword(oldPassword: string, newPassword: string): Promise<void> {
  const p = profile.value;
  const acc = account.value;
  if (!p || !acc) throw new Error('locked');
  const wrapped = await rewrapDataKey(acc.key, oldPassword, newPassword).catch(() => {
    throw new SignInError('credentials');
  });
  const pb = pocketbase(p.token);
  try {
    await pb.collection('users').update(acc.userId, {
      oldPassword,
      password: newPassword,
      passwordConfirm: newPassword,
    });
  } catch (e: any) {
    throw new SignInError(e?.status === 400 ? 'credentials' : 'network');
  }
  await db().meta.put({ ...acc, key: wrapped });
  account.value = { ...acc, key: wrapped };
  // The server invalidates the old token with the password change.
  const auth = await pb.collection('users').authWithPassword(p.email, newPassword);
  await saveToken(auth.token);
}

/**
 * Deletes every local trace: IndexedDB, Cache Storage, the service worker
 * registration and the key. dropped is shown on the sign-in screen.
 */
export function wipe(dropped: number | null): Promise<void> {
  // The push, the pull and the stream can all learn of a revocation: the
  // first one wipes, with its count, and the others wait for it.
  wiping ??= doWipe(dropped).finally(() => (wiping = null));
  return wiping;
}

let wiping: Promise<void> | null = null;

async function doWipe(dropped: number | null): Promise<void> {
  dataKey = null;
  profile.value = null;
  account.value = null;
  wipedNotice.value = dropped;
  await deleteDatabase();
  if ('caches' in globalThis) {
    for (const name of await caches.keys()) await caches.delete(name);
  }
  if ('serviceWorker' in navigator) {
    for (const reg of await navigator.serviceWorker.getRegistrations()) await reg.unregister();
  }
  phase.value = 'signin';
}

export const storage = signal<{ persisted: boolean | null; usage: number; quota: number }>({
  persisted: null,
  usage: 0,
  quota: 0,
});

export async function requestPersistence(): Promise<void> {
  if (!navigator.storage) return;
  let persisted = (await navigator.storage.persisted?.()) ?? false;
  if (!persisted) persisted = (await navigator.storage.persist?.()) ?? false;
  await refreshStorage(persisted);
}

export async function refreshStorage(persisted?: boolean): Promise<void> {
  if (!navigator.storage) return;
  const est = await navigator.storage.estimate();
  storage.value = {
    persisted: persisted ?? (await navigator.storage.persisted?.()) ?? false,
    usage: est.usage ?? 0,
    quota: est.quota ?? 0,
  };
}

/** An iPhone or iPad in a Safari tab rather than installed to the home screen. */
export function iosTab(): boolean {
  const ios = /iPhone|iPad|iPod/.test(navigator.userAgent);
  const standalone =
    matchMedia('(display-mode: standalone)').matches || (navigator as any).standalone === true;
  return ios && !standalone;
}

/** Wrapped with the account: used by the sync engine. */
export function credentials(pending?: number) {
  const acc = account.value;
  const p = profile.value;
  if (!acc || !p) return null;
  return { token: p.token, device: acc.deviceId, deviceSecret: acc.deviceSecret, pending };
}

/**
 * Asks the server, without a token, whether this device was revoked: the
 * device secret proves the device. Used while the app is locked, so that a
 * lost phone wipes itself even though nobody unlocks it.
 */
export async function revokedWhileLocked(): Promise<boolean> {
  const acc = account.value;
  if (!acc?.deviceSecret || phase.value !== 'locked') return false;
  try {
    await request('GET', '/api/sync/pull?limit=1', { token: '', device: acc.deviceId, deviceSecret: acc.deviceSecret });
  } catch (e) {
    if (isRevoked(e)) {
      const dropped = await db().outbox.where('state').equals('pending').count();
      await wipe(dropped);
      return true;
    }
  }
  return false;
}

export function isSupervisor(): boolean {
  return account.value?.role === 'supervisor';
}
