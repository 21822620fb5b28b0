import { useState } from 'preact/hooks';
import { t, fmtDate } from '../i18n';
import { views, type ViewRec } from '../lib/view';
import { account } from '../lib/session';
import { personFields } from '../domain';
import { Link, navigate } from '../ui/router';
import { RecordForm } from '../ui/form';
import { personName, day } from '../ui/format';

export function conflictCount(recordId: string): number {
  let n = 0;
  for (const c of views.value.sync_conflicts.values()) if (c.record_id === recordId && !c.resolution) n++;
  return n;
}

export function Badges({ r }: { r: ViewRec }) {
  const c = conflictCount(r.id);
  return (
    <>
      {r._pending && <span class="tag pending">{t('form.pendingBadge')}</span>}
      {c > 0 && (
        <Link href={`/conflitti?record=${r.id}`} class="tag conflict">
          {t('form.conflictBadge')}
        </Link>
      )}
    </>
  );
}

/** Search by code and name, in memory: names are never in an index. */
export function People() {
  const [q, setQ] = useState('');
  const all = [...views.value.persons.values()];
  const needle = q.trim().toLowerCase();
  const found = all
    .filter((p) => !needle || personName(p).toLowerCase().includes(needle))
    .sort((a, b) => String(a.code).localeCompare(String(b.code)));
  return (
    <>
      <h1 tabIndex={-1}>{t('people.title')}</h1>
      <div class="field search">
        <label for="people-search">{t('people.search')}</label>
        <input id="people-search" type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} autoComplete="off" />
      </div>
      <p class="muted" aria-live="polite">
        {t('people.count', { n: found.length })}
      </p>
      <Link href="/persone/nuova" class="button">
        {t('home.newPerson')}
      </Link>
      {found.length === 0 ? (
        <p class="muted">{t('people.empty')}</p>
      ) : (
        <ul class="list">
          {found.slice(0, 100).map((p) => (
            <li key={p.id}>
              <Link href={`/persone/${p.id}`}>
                <strong>{personName(p)}</strong>
                <span class="sub">{views.value.sites.get(p.site)?.name ?? ''}</span>
                <Badges r={p} />
              </Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

export function PersonCard({ id }: { id: string }) {
  const v = views.value;
  const p = v.persons.get(id);
  if (!p) return <p class="card warn">{t('person.notFound')}</p>;
  const visits = [...v.camp_visits.values()].filter((r) => Array.isArray(r.persons_met) && r.persons_met.includes(id));
  const contacts = [...v.secretariat_contacts.values()].filter((r) => r.person === id);
  const referrals = [...v.referrals.values()].filter((r) => r.person === id);
  const byDate = (f: string) => (a: ViewRec, b: ViewRec) => String(b[f] ?? '').localeCompare(String(a[f] ?? ''));
  return (
    <>
      <h1 tabIndex={-1}>{personName(p)}</h1>
      <Badges r={p} />
      <dl class="facts">
        <dt>{t('field.code')}</dt>
        <dd>{p.code}</dd>
        {p.birth_year ? (
          <>
            <dt>{t('field.birth_year')}</dt>
            <dd>{p.birth_year}</dd>
          </>
        ) : null}
        {p.nationality && (
          <>
            <dt>{t('field.nationality')}</dt>
            <dd>{p.nationality}</dd>
          </>
        )}
        {p.languages && (
          <>
            <dt>{t('field.languages')}</dt>
            <dd>{p.languages}</dd>
          </>
        )}
        <dt>{t('person.consent')}</dt>
        <dd>
          {p.consent ? t(`consent.${p.consent}` as any) : ''}
          {p.consent_date ? ` · ${fmtDate(p.consent_date)}` : ''}
        </dd>
        {p.site && (
          <>
            <dt>{t('field.site')}</dt>
            <dd>{v.sites.get(p.site)?.name}</dd>
          </>
        )}
      </dl>
      {p.notes && <p class="notes">{p.notes}</p>}
      <div class="quick">
        <Link href={`/persone/${id}/modifica`} class="button">
          {t('form.edit')}
        </Link>
        <Link href={`/colloqui/nuovo?person=${id}`} class="button">
          {t('person.newContact')}
        </Link>
        <Link href={`/invii/nuovo?person=${id}`} class="button">
          {t('person.newReferral')}
        </Link>
      </div>
      <section aria-labelledby="h-ref">
        <h2 id="h-ref">{t('person.referrals')}</h2>
        {referrals.length === 0 ? (
          <p class="muted">{t('person.none')}</p>
        ) : (
          <ul class="list">
            {referrals.sort(byDate('created')).map((r) => (
              <li key={r.id}>
                <Link href={`/invii/${r.id}`}>
                  <strong>{v.services.get(r.service)?.name ?? ''}</strong>
                  <span class="sub">
                    <span class={`status s-${r.status}`}>{t(`status.${r.status}` as any)}</span>
                    {r.due_on ? ` · ${fmtDate(r.due_on)}` : ''}
                  </span>
                  <Badges r={r} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="h-contacts">
        <h2 id="h-contacts">{t('person.contacts')}</h2>
        {contacts.length === 0 ? (
          <p class="muted">{t('person.none')}</p>
        ) : (
          <ul class="list">
            {contacts.sort(byDate('contacted_at')).map((r) => (
              <li key={r.id}>
                <Link href={`/colloqui/${r.id}`}>
                  <strong>{fmtDate(r.contacted_at)}</strong>
                  <span class="sub">
                    {t(`setting.${r.setting}` as any)} · {v.sites.get(r.site)?.name ?? ''}
                  </span>
                  <Badges r={r} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="h-visits">
        <h2 id="h-visits">{t('person.visits')}</h2>
        {visits.length === 0 ? (
          <p class="muted">{t('person.none')}</p>
        ) : (
          <ul class="list">
            {visits.sort(byDate('visited_at')).map((r) => (
              <li key={r.id}>
                <Link href={`/visite/${r.id}`}>
                  <strong>{fmtDate(r.visited_at)}</strong>
                  <span class="sub">{v.sites.get(r.site)?.name ?? ''}</span>
                  <Badges r={r} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

export function PersonEdit({ id }: { id?: string }) {
  const v = views.value;
  const p = id ? v.persons.get(id) : undefined;
  if (id && !p) return <p class="card warn">{t('person.notFound')}</p>;
  const teams = account.value?.teams ?? [];
  return (
    <>
      <h1 tabIndex={-1}>{id ? t('person.edit') : t('person.new')}</h1>
      <RecordForm
        collection="persons"
        fields={teams.length > 1 && !id ? [{ name: 'team', kind: 'relation', required: true }, ...personFields] : personFields}
        id={id}
        initial={p ?? { consent: 'verbal', team: teams[0] ?? '', consent_date: day(new Date().toISOString()) }}
        options={(f) =>
          f === 'team'
            ? teams.map((tm) => ({ value: tm, label: String(v.teams.get(tm)?.name ?? tm) }))
            : []
        }
        fixed={(vals) => ({ team: vals.team || teams[0] })}
        onSaved={(nid) => navigate(`/persone/${nid}`, true)}
        onCancel={() => history.back()}
      />
    </>
  );
}
