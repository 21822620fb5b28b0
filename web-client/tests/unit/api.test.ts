import { describe, expect, it } from 'vitest';
import { encodeBody, GZIP_ABOVE } from '../../src/lib/api';

const long = JSON.stringify({ mutations: Array.from({ length: 20 }, (_, i) => ({ id: String(i), fields: { needs: 'documenti per la scuola' } })) });

describe('encodeBody', () => {
  it('gzips a push over the threshold, and the gzip decodes to the JSON', async () => {
    expect(long.length).toBeGreaterThan(GZIP_ABOVE);
    const got = await encodeBody('/api/sync/push', long);
    expect(got.encoding).toBe('gzip');
    const bytes = new Uint8Array(got.body as ArrayBuffer);
    expect(bytes.length).toBeLessThan(long.length / 3);
    const plain = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
    expect(plain).toBe(long);
  });

  it.each([
    ['a short push', '/api/sync/push', '{"mutations":[]}'],
    ['a route that takes only JSON', '/api/sync/devices', long],
    ['a push with a query', '/api/sync/push?x=1', long],
  ])('sends %s as it is', async (_name, path, json) => {
    const got = await encodeBody(path, json);
    expect(got.encoding).toBeUndefined();
    expect(got.body).toBe(json);
  });
});
