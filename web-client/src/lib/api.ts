// HTTP to the Strada server. Every request has a timeout: one bar of signal
// must never block the app. "Online" means that the last request reached
// the server, whatever navigator.onLine says.
import { signal } from '@preact/signals';

export const online = signal<boolean | null>(null);

export const REQUEST_TIMEOUT_MS = 15_000;

export class NetworkError extends Error {}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public wipe = false,
  ) {
    super(message);
  }
}

export interface Credentials {
  token: string;
  device?: string;
  deviceSecret?: string;
  pending?: number;
}

/** Paths whose request body the server accepts gzipped (Content-Encoding). */
const GZIP_PATHS = new Set(['/api/sync/push']);

/** Bodies up to this size go as they are: gzip would save little. */
export const GZIP_ABOVE = 1024;

/**
 * The body as sent: gzipped with CompressionStream when the path accepts
 * it, the browser has it and the JSON is long enough; else the JSON.
 * Answers need nothing: the browser asks for gzip (and zstd on HTTPS) and
 * decodes them itself.
 */
export async function encodeBody(path: string, json: string): Promise<{ body: BodyInit; encoding?: string }> {
  if (!GZIP_PATHS.has(path) || json.length <= GZIP_ABOVE || typeof CompressionStream !== 'function') {
    return { body: json };
  }
  try {
    const stream = new Blob([json]).stream().pipeThrough(new CompressionStream('gzip'));
    return { body: await new Response(stream).arrayBuffer(), encoding: 'gzip' };
  } catch {
    return { body: json };
  }
}

export async function request<T>(
  method: string,
  path: string,
  creds: Credentials | null,
  body?: unknown,
  timeout = REQUEST_TIMEOUT_MS,
): Promise<T> {
  const sent = body === undefined ? undefined : await encodeBody(path, JSON.stringify(body));
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  const headers: Record<string, string> = {};
  if (creds?.token) headers.Authorization = creds.token;
  if (creds?.device) headers['X-Strada-Device'] = creds.device;
  if (creds?.deviceSecret) headers['X-Strada-Device-Secret'] = creds.deviceSecret;
  if (creds?.pending !== undefined) headers['X-Strada-Pending'] = String(creds.pending);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (sent?.encoding) headers['Content-Encoding'] = sent.encoding;
  let resp: Response;
  let text: string;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: sent?.body,
      signal: ctl.signal,
      cache: 'no-store',
    });
    text = await resp.text();
  } catch (e) {
    online.value = false;
    throw new NetworkError(`${method} ${path}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  online.value = true;
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, json?.code ?? String(resp.status), json?.message ?? text, !!json?.wipe);
  }
  return json as T;
}

/** A server fault or no answer: try again later with the same request. */
export function isTemporary(e: unknown): boolean {
  return e instanceof NetworkError || (e instanceof ApiError && e.status >= 500);
}

export function isRevoked(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403 && e.code === 'device_revoked';
}

export function isUnauthorized(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401;
}
