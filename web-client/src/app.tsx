import { useEffect } from 'preact/hooks';
import { signal } from '@preact/signals';
import { t } from './i18n';
import { phase, account, key, lock, needsPassword } from './lib/session';
import { follow, unfollow, pendingCount, ready } from './lib/view';
import * as engine from './lib/sync';
import { online } from './lib/api';
import { Insecure, SignIn, Locked, PasswordPrompt } from './screens/auth';
import { Home } from './screens/home';
import { People, PersonCard, PersonEdit } from './screens/people';
import { VisitEdit, ContactEdit, ReferralNew, ReferralView } from './screens/records';
import { Services } from './screens/services';
import { SyncStatus, Conflicts, SettingsScreen, StorageWarnings } from './screens/sync';
import { Link, match, path } from './ui/router';
import { dirtyForms } from './ui/form';
import { views } from './lib/view';
import { DashboardRoute } from './dashboard/route';
import { isSupervisor } from './lib/session';

/** Set by the service worker registration when a new version waits. */
export const updateReady = signal<null | (() => void)>(null);

function Route() {
  path.value; // re-render on navigation
  let m;
  if (match('/')) return <Home />;
  if (match('/persone')) return <People />;
  if (match('/persone/nuova')) return <PersonEdit />;
  if ((m = match('/persone/:id/modifica'))) return <PersonEdit id={m.id} />;
  if ((m = match('/persone/:id'))) return <PersonCard id={m.id} />;
  if (match('/visite/nuova')) return <VisitEdit />;
  if ((m = match('/visite/:id'))) return <VisitEdit id={m.id} />;
  if (match('/colloqui/nuovo')) return <ContactEdit />;
  if ((m = match('/colloqui/:id'))) return <ContactEdit id={m.id} />;
  if (match('/invii/nuovo')) return <ReferralNew />;
  if ((m = match('/invii/:id'))) return <ReferralView id={m.id} />;
  if (match('/servizi')) return <Services />;
  if (match('/sync')) return <SyncStatus />;
  if (match('/conflitti')) return <Conflicts />;
  if (match('/impostazioni')) return <SettingsScreen />;
  if (match('/dashboard')) return <DashboardRoute />;
  return <Home />;
}

const nav = [
  { href: '/', key: 'nav.home' as const, icon: '⌂' },
  { href: '/persone', key: 'nav.people' as const, icon: '☺' },
  { href: '/servizi', key: 'nav.services' as const, icon: '☎' },
  { href: '/sync', key: 'nav.sync' as const, icon: '⇅' },
];

function active(href: string): boolean {
  const p = path.value.split('?')[0];
  return href === '/' ? p === '/' : p.startsWith(href);
}

function StatusChip() {
  const n = pendingCount.value;
  const off = online.value === false;
  return (
    <Link href="/sync" class={`chip ${off ? 'off' : 'on'}`}>
      <span id="status-chip">
        {off ? t('sync.offlineShort') : t('sync.online')}
        {n > 0 ? ` · ${t('sync.pendingShort', { n })}` : ''}
      </span>
    </Link>
  );
}

/** Locks after the account's idle time without use, and when hidden for longer. */
function useIdleLock() {
  useEffect(() => {
    let last = Date.now();
    let hiddenAt = 0;
    const limit = () => (account.value?.lockMinutes ?? 15) * 60_000;
    const touch = () => (last = Date.now());
    const events = ['pointerdown', 'keydown', 'touchstart', 'scroll'];
    for (const e of events) window.addEventListener(e, touch, { passive: true });
    const onVis = () => {
      if (document.visibilityState === 'hidden') hiddenAt = Date.now();
      else if (hiddenAt && Date.now() - hiddenAt > limit()) lock();
    };
    document.addEventListener('visibilitychange', onVis);
    const timer = setInterval(() => {
      if (Date.now() - last > limit()) lock();
    }, 1000);
    return () => {
      for (const e of events) window.removeEventListener(e, touch);
      document.removeEventListener('visibilitychange', onVis);
      clearInterval(timer);
    };
  }, []);
}

function Shell() {
  useIdleLock();
  useEffect(() => {
    const k = key();
    if (!k) return;
    follow(k);
    engine.start();
    return () => {
      engine.stop();
      unfollow();
    };
  }, []);
  useEffect(() => {
    if (!needsPassword.value) engine.resume();
  }, [needsPassword.value]);
  const conflicts = [...views.value.sync_conflicts.values()].filter((c) => !c.resolution).length;
  const upd = updateReady.value;
  const canUpdate = dirtyForms.value === 0 && !engine.pushing.value;
  return (
    <>
      <a href="#main" class="skip">
        {t('nav.home')}
      </a>
      <header class="top">
        <Link href="/" class="logo">
          <img src="/icon.svg" alt="" width={28} height={28} />
          <span>{t('app.name')}</span>
        </Link>
        <StatusChip />
        {isSupervisor() && (
          <Link href="/dashboard" class="chip dashboard" aria-current={active('/dashboard') ? 'page' : undefined}>
            {t('dash.nav')}
          </Link>
        )}
        {conflicts > 0 && (
          <Link href="/conflitti" class="chip conflict">
            {t('nav.conflicts')} · {conflicts}
          </Link>
        )}
        <Link href="/impostazioni" class="chip settings">
          <span aria-hidden="true">⚙</span>
          <span class="sr">{t('nav.settings')}</span>
        </Link>
      </header>
      {engine.firstSync.value !== null && (
        <div class="progress" role="status">
          <progress aria-label={t('sync.first', { n: engine.firstSync.value })} />
          <span>{t('sync.first', { n: engine.firstSync.value })}</span>
        </div>
      )}
      {needsPassword.value && <PasswordPrompt />}
      {upd && (
        <div class="banner info" role="status">
          <p>{t('update.available')}</p>
          {!canUpdate && <p class="sub">{t('update.wait')}</p>}
          <button type="button" class="primary" disabled={!canUpdate} onClick={() => upd()}>
            {t('update.apply')}
          </button>
        </div>
      )}
      <main id="main" class={active('/dashboard') ? 'wide' : undefined}>
        {!ready.value ? (
          <p class="muted">{t('app.loading')}</p>
        ) : (
          <>
            {path.value === '/' && <StorageWarnings />}
            <Route />
          </>
        )}
      </main>
      <nav class="bottom" aria-label={t('nav.menu')}>
        {nav.map((n) => (
          <Link key={n.href} href={n.href} aria-current={active(n.href) ? 'page' : undefined}>
            <span class="icon" aria-hidden="true">
              {n.icon}
            </span>
            <span>{t(n.key)}</span>
          </Link>
        ))}
      </nav>
    </>
  );
}

export function App() {
  switch (phase.value) {
    case 'loading':
      return <p class="muted center">{t('app.loading')}</p>;
    case 'insecure':
      return <Insecure />;
    case 'signin':
      return <SignIn />;
    case 'locked':
      return <Locked />;
    default:
      return <Shell />;
  }
}
