import { useState } from 'preact/hooks';
import { t, fmtTime, fmtDate, fmtNumber, setLang, lang } from '../i18n';
import { online, request } from '../lib/api';
import { pendingCount, rejected, syncRow, views, colleagues } from '../lib/view';
import { syncing, leader, lastError, syncNow, erasedNotice, pullConflicts, push } from '../lib/sync';
import { storage, iosTab, credentials, account, profile, changePassword, lock, wipe } from '../lib/session';
import { countUnsynced, dismiss } from '../lib/store';
import { Link, query } from '../ui/router';
import { personName } from '../ui/format';

/** A storage size: MB below a gigabyte, GB above (0,7 MB; 10,2 GB). */
function mb(n: number) {
  const m = n / 1_048_576;
  return m < 1024 ? `${fmtNumber(m, 1)} MB` : `${fmtNumber(m / 1024, 1)} GB`;
}

export function StorageWarnings() {
  const s = storage.value;
  const pct = s.quota ? Math.round((s.usage / s.quota) * 100) : 0;
  return (
    <>
      {s.persisted === false && <p class="card warn" id="warn-persist">{t('sync.notPersisted')}</p>}
      {pct > 80 && <p class="card warn">{t('sync.usageHigh', { pct })}</p>}
      {iosTab() && <p class="card warn">{t('sync.iosTab')}</p>}
    </>
  );
}

export function SyncStatus() {
  const st = syncRow.value;
  const s = storage.value;
  const pct = s.quota ? Math.round((s.usage / s.quota) * 100) : 0;
  const err = lastError.value;
  const v = views.value;
  return (
    <>
      <h1 tabIndex={-1}>{t('sync.title')}</h1>
      <p class="big" id="pending-count" data-pending={pendingCount.value}>
        {pendingCount.value > 0 ? t('sync.pending', { n: pendingCount.value }) : t('sync.allSynced')}
      </p>
      <p>{st.lastSync ? t('sync.last', { time: fmtTime(st.lastSync) }) : t('sync.never')}</p>
      {err === 'offline' && <p class="card warn">{t('sync.offline')}</p>}
      {err === 'server' && <p class="card warn">{t('sync.serverError')}</p>}
      {err === 'session' && <p class="card warn">{t('sync.sessionError')}</p>}
      {!leader.value && <p class="muted">{t('sync.otherTab')}</p>}
      <button type="button" class="primary" disabled={syncing.value || !leader.value} onClick={() => syncNow()}>
        {syncing.value ? t('sync.running') : t('sync.now')}
      </button>
      {erasedNotice.value > 0 && <p class="card info">{t('sync.erased', { n: erasedNotice.value })}</p>}
      {rejected.value.length > 0 && (
        <section aria-labelledby="h-rej">
          <h2 id="h-rej">{t('sync.rejected')}</h2>
          <p class="muted">{t('sync.rejectedHint')}</p>
          <ul class="cards">
            {rejected.value.map((it) => {
              const m = it.mutation;
              const what =
                m.collection === 'persons'
                  ? personName(v.persons.get(m.recordId) ?? ({ id: m.recordId, code: m.fields?.code } as any))
                  : t((m.collection === 'camp_visits' ? 'visit.title' : m.collection === 'referrals' ? 'referral.title' : 'contact.title') as any);
              return (
                <li key={it.n} class="card warn rejected">
                  <strong>{what}</strong>
                  <p>{it.error?.message || t('error.rejected.generic', { code: it.error?.code ?? '' })}</p>
                  <button type="button" onClick={() => dismiss(it.n)}>
                    {t('sync.dismiss')}
                  </button>
                </li>
              );
            })}
          </ul>
        </section>
      )}
      <section aria-labelledby="h-storage">
        <h2 id="h-storage">{t('sync.storage')}</h2>
        {s.persisted && <p>{t('sync.persisted')}</p>}
        {s.quota > 0 && <p>{t('sync.usage', { used: mb(s.usage), quota: mb(s.quota), pct })}</p>}
        <StorageWarnings />
      </section>
    </>
  );
}

export function Conflicts() {
  const v = views.value;
  const only = query('record');
  const [busy, setBusy] = useState('');
  const [error, setError] = useState('');
  const list = [...v.sync_conflicts.values()].filter((c) => !c.resolution && (!only || c.record_id === only));
  const who = (uid: string) => colleagues.value.find((c) => c.id === uid)?.name ?? t('conflicts.someone');
  const show = (x: unknown) => (x === null || x === undefined || x === '' ? '—' : Array.isArray(x) ? x.join(', ') : typeof x === 'object' ? JSON.stringify(x) : String(x));
  const resolve = async (id: string, resolution: string) => {
    setBusy(id);
    setError('');
    try {
      const c = credentials();
      if (!c) return;
      await request('PATCH', `/api/collections/sync_conflicts/records/${id}`, { token: c.token }, { resolution });
      await pullConflicts();
      await syncNow();
    } catch {
      setError(t('conflicts.offline'));
    } finally {
      setBusy('');
    }
  };
  return (
    <>
      <h1 tabIndex={-1}>{t('conflicts.title')}</h1>
      {error && <p class="card warn" role="alert">{error}</p>}
      {list.length === 0 && <p class="muted">{t('conflicts.empty')}</p>}
      <ul class="cards">
        {list.map((c) => {
          const rec = v[c.collection]?.get(c.record_id);
          const title =
            c.collection === 'persons' ? personName(rec) : c.person ? personName(v.persons.get(c.person)) : t('visit.title');
          return (
            <li key={c.id} class="card conflict-card" data-conflict={c.id}>
              <h2>
                {title} · {c.field === '*' ? t('conflicts.kind.delete_over_edit') : t(`field.${c.field}` as any)}
              </h2>
              {c.kind === 'rejected_transition' && <p class="muted">{t('conflicts.kind.rejected_transition')}</p>}
              <div class="both">
                <div>
                  <h3>{t('conflicts.current')}</h3>
                  <p class="value kept">{show(c.kept_value)}</p>
                  <p class="sub">{t('conflicts.by', { who: who(c.kept_by), when: fmtTime(c.kept_at) })}</p>
                </div>
                <div>
                  <h3>{t('conflicts.overwritten')}</h3>
                  <p class="value overwritten">{show(c.overwritten_value)}</p>
                  <p class="sub">{t('conflicts.by', { who: who(c.overwritten_by), when: fmtTime(c.overwritten_at) })}</p>
                </div>
              </div>
              <div class="quick">
                <button type="button" class="primary" disabled={!!busy} data-resolve="keep_current" onClick={() => resolve(c.id, 'keep_current')}>
                  {t('conflicts.keep')}
                </button>
                <button type="button" disabled={!!busy || c.kind === 'rejected_transition'} data-resolve="restore_overwritten" onClick={() => resolve(c.id, 'restore_overwritten')}>
                  {t('conflicts.restore')}
                </button>
              </div>
            </li>
          );
        })}
      </ul>
    </>
  );
}

export function SettingsScreen() {
  const [msg, setMsg] = useState('');
  const [confirm, setConfirm] = useState<number | null>(null);
  const signOut = async () => {
    if (online.value !== false) {
      try {
        await push();
      } catch {
        /* counted below */
      }
    }
    const n = await countUnsynced();
    if (n > 0 && confirm === null) {
      setConfirm(n);
      return;
    }
    await wipe(null);
  };
  return (
    <>
      <h1 tabIndex={-1}>{t('settings.title')}</h1>
      <p>
        {t('settings.signedInAs', { name: profile.value?.name ?? '' })} ({t(`role.${account.value?.role ?? 'worker'}` as any)})
      </p>
      <section aria-labelledby="h-lang">
        <h2 id="h-lang">{t('settings.language')}</h2>
        <div class="lang" role="group" aria-labelledby="h-lang">
          <button type="button" aria-pressed={lang.value === 'it'} onClick={() => setLang('it')} lang="it">
            Italiano
          </button>
          <button type="button" aria-pressed={lang.value === 'en'} onClick={() => setLang('en')} lang="en">
            English
          </button>
        </div>
      </section>
      <section aria-labelledby="h-lock">
        <button type="button" class="primary" id="lock-now" onClick={() => lock()}>
          {t('lock.now')}
        </button>
      </section>
      <section aria-labelledby="h-pw">
        <h2 id="h-pw">{t('settings.password')}</h2>
        <form
          class="form"
          onSubmit={async (e) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            const f = new FormData(form);
            try {
              await changePassword(String(f.get('old')), String(f.get('new')));
              setMsg(t('settings.passwordChanged'));
              form.reset();
            } catch {
              setMsg(t('settings.passwordError'));
            }
          }}
        >
          <div class="field">
            <label for="pw-old">{t('settings.oldPassword')}</label>
            <input id="pw-old" name="old" type="password" autoComplete="current-password" required />
          </div>
          <div class="field">
            <label for="pw-new">{t('settings.newPassword')}</label>
            <input id="pw-new" name="new" type="password" autoComplete="new-password" minLength={8} required />
          </div>
          {msg && <p role="status">{msg}</p>}
          <button type="submit">{t('settings.password')}</button>
        </form>
      </section>
      <section aria-labelledby="h-out">
        <h2 id="h-out">{t('settings.signout')}</h2>
        {confirm !== null && <p class="card warn">{t('settings.signoutPending', { n: confirm })}</p>}
        <button type="button" class="danger" onClick={signOut}>
          {confirm !== null ? t('settings.signoutConfirm') : t('settings.signout')}
        </button>
      </section>
      <p class="muted">
        <Link href="/conflitti">{t('nav.conflicts')}</Link> · {fmtDate(new Date().toISOString())}
      </p>
    </>
  );
}
