import { t, fmtDate, fmtTime } from '../i18n';
import { views, colleagues, base, type ViewRec } from '../lib/view';
import { account, key } from '../lib/session';
import { enqueue, type Rec } from '../lib/store';
import { allowedMoves, contactFields, referralFields, visitFields } from '../domain';
import { Link, navigate, query } from '../ui/router';
import { RecordForm, type Option } from '../ui/form';
import { personName, today } from '../ui/format';
import { Badges } from './people';

function teamFor(kind: string, siteTeam?: string): string {
  const teams = account.value?.teams ?? [];
  if (siteTeam && teams.includes(siteTeam)) return siteTeam;
  const byKind = teams.find((tm) => views.value.teams.get(tm)?.kind === kind);
  return byKind ?? teams[0] ?? '';
}

function personOptions(team?: string): Option[] {
  return [...views.value.persons.values()]
    .filter((p) => !team || p.team === team)
    .sort((a, b) => String(a.code).localeCompare(String(b.code)))
    .map((p) => ({ value: p.id, label: personName(p) }));
}

function siteOptions(kind: string): Option[] {
  return [...views.value.sites.values()]
    .filter((s) => s.kind === kind)
    .sort((a, b) => String(a.name).localeCompare(String(b.name)))
    .map((s) => ({ value: s.id, label: String(s.name) }));
}

function NotFound() {
  return <p class="card warn">{t('person.notFound')}</p>;
}

export function VisitEdit({ id }: { id?: string }) {
  const v = views.value;
  const r = id ? v.camp_visits.get(id) : undefined;
  if (id && !r) return <NotFound />;
  const me = account.value?.userId ?? '';
  return (
    <>
      <h1 tabIndex={-1}>{id ? t('visit.edit') : t('visit.new')}</h1>
      {r && <Badges r={r} />}
      {id && (
        <div class="quick">
          <Link href={`/invii/nuovo?visit=${id}`} class="button">
            {t('person.newReferral')}
          </Link>
        </div>
      )}
      <RecordForm
        key={id ?? 'new'}
        collection="camp_visits"
        fields={visitFields}
        id={id}
        initial={r ?? { visited_at: today(), workers: me ? [me] : [], topics: [] }}
        options={(f, vals) => {
          if (f === 'site') return siteOptions('camp');
          if (f === 'workers') return colleagues.value.map((c) => ({ value: c.id, label: c.name }));
          if (f === 'persons_met') {
            const site = v.sites.get(vals.site);
            return personOptions(teamFor('camp_outreach', site?.team));
          }
          return [];
        }}
        fixed={(vals) => ({ team: teamFor('camp_outreach', v.sites.get(vals.site)?.team) })}
        onSaved={() => navigate('/', true)}
        onCancel={() => history.back()}
      />
    </>
  );
}

export function ContactEdit({ id }: { id?: string }) {
  const v = views.value;
  const r = id ? v.secretariat_contacts.get(id) : undefined;
  if (id && !r) return <NotFound />;
  const person = query('person');
  return (
    <>
      <h1 tabIndex={-1}>{id ? t('contact.edit') : t('contact.new')}</h1>
      {r && <Badges r={r} />}
      {id && (
        <div class="quick">
          <Link href={`/invii/nuovo?contact=${id}`} class="button">
            {t('person.newReferral')}
          </Link>
        </div>
      )}
      <RecordForm
        key={id ?? 'new'}
        collection="secretariat_contacts"
        fields={contactFields}
        id={id}
        initial={r ?? { person, setting: 'intra', contacted_at: today(), requests: [] }}
        options={(f, vals) => {
          if (f === 'person') return personOptions();
          if (f === 'site') return siteOptions(vals.setting === 'extra' ? 'office' : 'prison');
          return [];
        }}
        fixed={(vals) => ({ team: v.persons.get(vals.person)?.team ?? teamFor('prison_secretariat') })}
        person={(vals) => vals.person}
        onSaved={(nid) => navigate(r || person ? `/persone/${r?.person ?? person}` : `/colloqui/${nid}`, true)}
        onCancel={() => history.back()}
      />
    </>
  );
}

export function ReferralNew() {
  const v = views.value;
  const visit = query('visit');
  const contact = query('contact');
  const person = query('person') || v.secretariat_contacts.get(contact)?.person || '';
  const visitRec = visit ? v.camp_visits.get(visit) : undefined;
  return (
    <>
      <h1 tabIndex={-1}>{t('referral.new')}</h1>
      <RecordForm
        collection="referrals"
        fields={referralFields}
        initial={{ person, status: 'draft' }}
        options={(f) => {
          if (f === 'person') {
            const met = Array.isArray(visitRec?.persons_met) ? (visitRec!.persons_met as string[]) : null;
            const all = personOptions();
            return met && met.length > 0 ? all.filter((o) => met.includes(o.value)) : all;
          }
          if (f === 'service')
            return [...v.services.values()]
              .filter((s) => s.active !== false)
              .sort((a, b) => String(a.name).localeCompare(String(b.name)))
              .map((s) => ({ value: s.id, label: `${s.name} (${t(`category.${s.category}` as any)})` }));
          return [];
        }}
        fixed={(vals) => {
          const out: Rec = { team: v.persons.get(vals.person)?.team ?? teamFor('') };
          if (visit) out.source_visit = visit;
          if (contact) out.source_contact = contact;
          return out;
        }}
        person={(vals) => vals.person}
        onSaved={(nid) => navigate(`/invii/${nid}`, true)}
        onCancel={() => history.back()}
      />
    </>
  );
}

export function ReferralView({ id }: { id: string }) {
  const v = views.value;
  const r = v.referrals.get(id);
  if (!r) return <NotFound />;
  const role = account.value?.role ?? 'worker';
  const moves = allowedMoves(role, r.status);
  const history = [...v.referral_events.values()]
    .filter((e) => e.referral === id)
    .sort((a, b) => String(a.created).localeCompare(String(b.created)));
  const svc = v.services.get(r.service);
  const move = async (to: string) => {
    const k = key();
    if (!k) return;
    const baseVersion = Number(base.value.get('referrals')?.get(id)?.version ?? 0);
    await enqueue(k, { collection: 'referrals', recordId: id, op: 'upsert', baseVersion, fields: { status: to }, clientTime: new Date().toISOString() }, r.person);
  };
  const who = (uid: string) => colleagues.value.find((c) => c.id === uid)?.name ?? t('conflicts.someone');
  return (
    <>
      <h1 tabIndex={-1}>{t('referral.title')}</h1>
      <Badges r={r as ViewRec} />
      <dl class="facts">
        <dt>{t('field.person')}</dt>
        <dd>
          <Link href={`/persone/${r.person}`}>{personName(v.persons.get(r.person))}</Link>
        </dd>
        <dt>{t('field.service')}</dt>
        <dd>
          <Link href={`/servizi#s-${r.service}`}>{svc?.name ?? ''}</Link>
        </dd>
        <dt>{t('field.status')}</dt>
        <dd>
          <span class={`status s-${r.status}`} id="referral-status">
            {t(`status.${r.status}` as any)}
          </span>
        </dd>
        <dt>{t('field.reason')}</dt>
        <dd>{r.reason}</dd>
        {r.due_on && (
          <>
            <dt>{t('field.due_on')}</dt>
            <dd>{fmtDate(r.due_on)}</dd>
          </>
        )}
        {r.outcome && (
          <>
            <dt>{t('field.outcome')}</dt>
            <dd>{r.outcome}</dd>
          </>
        )}
      </dl>
      <section aria-labelledby="h-move">
        <h2 id="h-move">{t('referral.moveTo')}</h2>
        {moves.length === 0 ? (
          <p class="muted">{t('referral.noMoves')}</p>
        ) : (
          <div class="quick">
            {moves.map((to) => (
              <button type="button" key={to} class={to === 'cancelled' || to === 'declined' ? 'danger' : 'primary'} data-move={to} onClick={() => move(to)}>
                {t(`status.${to}` as any)}
              </button>
            ))}
          </div>
        )}
      </section>
      {history.length > 0 && (
        <section aria-labelledby="h-hist">
          <h2 id="h-hist">{t('referral.history')}</h2>
          <ol class="list plain">
            {history.map((e) => (
              <li key={e.id}>
                {e.from_status ? `${t(`status.${e.from_status}` as any)} → ` : ''}
                {t(`status.${e.to_status}` as any)} · {who(e.actor)} · {fmtTime(e.created)}
              </li>
            ))}
          </ol>
        </section>
      )}
    </>
  );
}
