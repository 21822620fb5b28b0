import { t, fmtDate } from '../i18n';
import { account, profile } from '../lib/session';
import { views, pendingCount, type ViewRec } from '../lib/view';
import { OpenStatuses } from '../domain';
import { Link } from '../ui/router';
import { personName, today, day } from '../ui/format';

function FollowUp({ date }: { date: string }) {
  const overdue = date < today();
  return <span class={overdue ? 'tag overdue' : 'tag'}>{overdue ? t('followup.overdue', { date: fmtDate(date) }) : t('followup.by', { date: fmtDate(date) })}</span>;
}

export function Home() {
  const v = views.value;
  const me = account.value?.userId ?? '';
  const d = today();
  const persons = v.persons;
  const sites = v.sites;
  const visits = [...v.camp_visits.values()];
  const contacts = [...v.secretariat_contacts.values()];
  const todayItems: { href: string; title: string; sub: string; pending?: boolean }[] = [
    ...visits.filter((r) => day(r.visited_at) === d).map((r) => ({
      href: `/visite/${r.id}`,
      title: t('visit.title'),
      sub: sites.get(r.site)?.name ?? '',
      pending: r._pending,
    })),
    ...contacts.filter((r) => day(r.contacted_at) === d).map((r) => ({
      href: `/colloqui/${r.id}`,
      title: personName(persons.get(r.person)),
      sub: `${t('contact.title')} · ${sites.get(r.site)?.name ?? ''}`,
      pending: r._pending,
    })),
  ];
  const horizon = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  const due = [
    ...visits.map((r) => ({ r, href: `/visite/${r.id}`, title: `${t('visit.title')} · ${sites.get(r.site)?.name ?? ''}` })),
    ...contacts.map((r) => ({ r, href: `/colloqui/${r.id}`, title: personName(persons.get(r.person)) })),
  ]
    .filter((x) => day(x.r.follow_up_on) && day(x.r.follow_up_on) <= horizon)
    .sort((a, b) => day(a.r.follow_up_on).localeCompare(day(b.r.follow_up_on)))
    .slice(0, 20);
  const myReferrals = [...v.referrals.values()]
    .filter((r) => OpenStatuses.includes(r.status) && (r.created_by === me || !r.created_by))
    .sort((a, b) => String(a.due_on ?? '9').localeCompare(String(b.due_on ?? '9')));
  const mine = (account.value?.teams ?? []).map((id) => v.teams.get(id)).filter((tm): tm is ViewRec => !!tm);
  const camp = mine.some((tm) => tm.kind === 'camp_outreach');
  const prison = mine.some((tm) => tm.kind !== 'camp_outreach');
  return (
    <>
      <h1 tabIndex={-1}>{t('home.greeting', { name: profile.value?.name ?? '' })}</h1>
      <div class="quick">
        {camp && (
          <Link href="/visite/nuova" class="button primary">
            {t('home.newVisit')}
          </Link>
        )}
        {prison && (
          <Link href="/colloqui/nuovo" class="button primary">
            {t('home.newContact')}
          </Link>
        )}
        <Link href="/persone/nuova" class="button">
          {t('home.newPerson')}
        </Link>
      </div>
      {pendingCount.value > 0 && (
        <p class="card info">
          <Link href="/sync">{t('sync.pendingShort', { n: pendingCount.value })}</Link>
        </p>
      )}
      <section aria-labelledby="h-today">
        <h2 id="h-today">{t('home.today')}</h2>
        {todayItems.length === 0 ? (
          <p class="muted">{t('home.todayEmpty')}</p>
        ) : (
          <ul class="list">
            {todayItems.map((x) => (
              <li key={x.href}>
                <Link href={x.href}>
                  <strong>{x.title}</strong>
                  <span class="sub">{x.sub}</span>
                  {x.pending && <span class="tag pending">{t('form.pendingBadge')}</span>}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="h-due">
        <h2 id="h-due">{t('home.followUps')}</h2>
        {due.length === 0 ? (
          <p class="muted">{t('home.followUpsEmpty')}</p>
        ) : (
          <ul class="list">
            {due.map((x) => (
              <li key={x.href}>
                <Link href={x.href}>
                  <strong>{x.title}</strong>
                  <FollowUp date={day(x.r.follow_up_on)} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="h-ref">
        <h2 id="h-ref">{t('home.referrals')}</h2>
        {myReferrals.length === 0 ? (
          <p class="muted">{t('home.referralsEmpty')}</p>
        ) : (
          <ul class="list">
            {myReferrals.slice(0, 20).map((r) => (
              <li key={r.id}>
                <Link href={`/invii/${r.id}`}>
                  <strong>{personName(persons.get(r.person))}</strong>
                  <span class="sub">
                    {v.services.get(r.service)?.name ?? ''} · <span class={`status s-${r.status}`}>{t(`status.${r.status}` as any)}</span>
                  </span>
                  {r.due_on && <FollowUp date={day(r.due_on)} />}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
