// Calls of the dashboard API with the signed-in supervisor's token
// (docs/dashboard.md). Everything goes through lib/api's request(), with
// its timeout; the export is a fetch whose body is saved as a file.
import { request, ApiError, NetworkError, REQUEST_TIMEOUT_MS } from '../lib/api';
import { apiParams, type Filters } from './filters';
import { TicketError } from './live';
import type { Records, Summary } from './types';

export function summary(token: string, f: Filters): Promise<Summary> {
  return request<Summary>('GET', '/api/dashboard/summary?' + apiParams(f), { token });
}

export function records(token: string, f: Filters, params: Record<string, string>, page: number): Promise<Records> {
  const q = apiParams(f, { ...params, page: String(page), perPage: '50' });
  return request<Records>('GET', '/api/dashboard/records?' + q, { token });
}

export async function ticket(token: string): Promise<string> {
  try {
    const t = await request<{ ticket: string }>('POST', '/api/dashboard/stream-ticket', { token });
    return t.ticket;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) throw new TicketError(e.status);
    throw e;
  }
}

export function streamURL(ticket: string, f: Filters): string {
  const q = new URLSearchParams({ ticket });
  if (f.team) q.set('team', f.team);
  return '/api/dashboard/stream?' + q;
}

/** Resolves an entry of the conflict journal (the records API, as the field app does). */
export function resolveConflict(token: string, id: string, resolution: 'keep_current' | 'restore_overwritten') {
  return request('PATCH', `/api/collections/sync_conflicts/records/${encodeURIComponent(id)}`, { token }, { resolution });
}

/** Revokes a device: its owner's tokens end and the device wipes itself at its next call. */
export function revokeDevice(token: string, id: string) {
  return request('PATCH', `/api/collections/devices/records/${encodeURIComponent(id)}`, { token }, { revoked: true });
}

/**
 * Downloads the monthly CSV. The token is a header, not a cookie, so a
 * plain link cannot carry it: the file is fetched and handed to the
 * browser as a Blob.
 */
export async function exportCSV(token: string, f: Filters, month: string): Promise<void> {
  const q = new URLSearchParams({ month });
  if (f.team) q.set('team', f.team);
  if (f.site) q.set('site', f.site);
  if (f.worker) q.set('worker', f.worker);
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS * 4);
  let resp: Response;
  let blob: Blob;
  try {
    resp = await fetch('/api/dashboard/export.csv?' + q, {
      headers: { Authorization: token },
      cache: 'no-store',
      signal: ctl.signal,
    });
    blob = await resp.blob();
  } catch (e) {
    throw new NetworkError(`export: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  if (!resp.ok) {
    let body: any = null;
    try {
      body = JSON.parse(await blob.text());
    } catch {
      body = null;
    }
    throw new ApiError(resp.status, body?.code ?? String(resp.status), body?.message ?? resp.statusText);
  }
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `strada-${month}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
