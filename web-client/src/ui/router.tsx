// A small router over the History API. Every route is also served by the
// server (index.html fallback) and by the service worker.
import { signal } from '@preact/signals';

export const path = signal(location.pathname + location.search);

export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  path.value = to;
  window.scrollTo(0, 0);
  queueMicrotask(() => document.querySelector<HTMLElement>('main h1')?.focus());
}

window.addEventListener('popstate', () => {
  path.value = location.pathname + location.search;
});

export function query(name: string): string {
  return new URLSearchParams(path.value.split('?')[1] ?? '').get(name) ?? '';
}

/** Matches "/persone/:id" style patterns; returns the params or null. */
export function match(pattern: string): Record<string, string> | null {
  const p = path.value.split('?')[0].split('/').filter(Boolean);
  const q = pattern.split('/').filter(Boolean);
  if (p.length !== q.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < q.length; i++) {
    if (q[i].startsWith(':')) out[q[i].slice(1)] = decodeURIComponent(p[i]);
    else if (q[i] !== p[i]) return null;
  }
  return out;
}

export function Link(props: { href: string; class?: string; children: any; 'aria-current'?: any }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-current={props['aria-current']}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
