// The /dashboard route, part of the field app's start-up code: it stays
// tiny. A worker is told the dashboard is for supervisors and nothing is
// loaded; a supervisor gets the dashboard chunk, imported on demand.
import { useEffect, useState } from 'preact/hooks';
import type { FunctionComponent } from 'preact';
import { t } from '../i18n';
import { isSupervisor } from '../lib/session';

let loaded: FunctionComponent | null = null;

export function DashboardRoute() {
  const supervisor = isSupervisor();
  const [Comp, setComp] = useState<FunctionComponent | null>(() => loaded);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!supervisor || loaded) return;
    import('./index')
      .then((m) => {
        loaded = m.Dashboard;
        setComp(() => m.Dashboard);
      })
      .catch(() => setFailed(true));
  }, [supervisor]);
  if (!supervisor) {
    return (
      <>
        <h1 tabIndex={-1}>{t('dash.title')}</h1>
        <p class="card warn" role="alert" id="dash-only-supervisors">
          {t('dash.onlySupervisors')}
        </p>
      </>
    );
  }
  if (failed) return <p class="card warn" role="alert">{t('dash.error', { message: 'chunk' })}</p>;
  if (!Comp) return <p class="muted">{t('dash.loading')}</p>;
  return <Comp />;
}
