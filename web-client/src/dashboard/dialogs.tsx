// The dashboard's modal dialogs, on the native <dialog> element (focus kept
// inside, Escape closes): the records behind a number, and the confirmation
// of a device revocation, which names the worker and the device.
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from '../i18n';
import { Link } from '../ui/router';
import { account } from '../lib/session';
import type { Drill } from './blocks';
import { duration, num, stamp } from './format';
import { label, recordHref, type Names } from './names';
import type { Device, Records } from './types';

function useModal(onClose: () => void) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (!d.open) d.showModal();
    const close = () => onClose();
    d.addEventListener('close', close);
    return () => d.removeEventListener('close', close);
  }, []);
  return ref;
}

export function DrillDown(props: {
  drill: Drill;
  data: Records | null;
  error: string;
  names: Names | null;
  onMore: () => void;
  onClose: () => void;
}) {
  const ref = useModal(props.onClose);
  const d = props.data;
  const n = props.names;
  return (
    <dialog ref={ref} class="dash-dialog drill" aria-labelledby="drill-h" id="drill">
      <header class="dialog-head">
        <h2 id="drill-h">{t('dash.drill', { title: props.drill.title })}</h2>
        <button type="button" class="close" onClick={() => ref.current?.close()}>
          {t('dash.close')}
        </button>
      </header>
      {props.error && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      {!d ? (
        <p class="muted">{t('dash.loading')}</p>
      ) : d.items.length === 0 ? (
        <p class="muted">{t('dash.drillEmpty')}</p>
      ) : (
        <>
          <p class="muted" id="drill-total" data-total={d.total}>
            {t('dash.drillCount', { n: num(d.total) })}
          </p>
          <div class="scroll">
            <table class="dtable compact">
              <thead>
                <tr>
                  <th scope="col">{t('dash.date')}</th>
                  <th scope="col">{t('dash.what')}</th>
                  <th scope="col">{t('dash.codes')}</th>
                  <th scope="col">{t('dash.where')}</th>
                  <th scope="col">{t('dash.who')}</th>
                  <th scope="col">
                    <span class="sr">{t('dash.openRecord')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.items.map((it) => {
                  const href = recordHref(it.collection, it.id);
                  return (
                    <tr key={it.collection + it.id} data-record={it.id}>
                      <td>{stamp(it.date)}</td>
                      <td>
                        {label('dash.coll', it.collection)}
                        {it.status && <span class="sub">{label('status', it.status)}</span>}
                        {it.kind && <span class="sub">{label('dash.kind', it.kind)}</span>}
                        {it.lagSeconds !== undefined && <span class="sub">{duration(it.lagSeconds)}</span>}
                      </td>
                      <td>
                        {it.personCodes.length ? it.personCodes.map((c) => <code class="pcode" key={c}>{c}</code>) : '—'}
                      </td>
                      <td>{n && it.site ? n.site(it.site) : ''}</td>
                      <td>{n && it.worker ? n.worker(it.worker) : ''}</td>
                      <td>
                        {href && (
                          <Link href={href} class="button small">
                            {t('dash.openRecord')}
                          </Link>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {d.items.length < d.total && (
            <button type="button" onClick={props.onMore}>
              {t('dash.drillMore')}
            </button>
          )}
        </>
      )}
    </dialog>
  );
}

export function RevokeDialog(props: { device: Device; worker: string; onCancel: () => void; onConfirm: () => Promise<void> }) {
  const ref = useModal(props.onCancel);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const dev = props.device;
  return (
    <dialog ref={ref} class="dash-dialog confirm" aria-labelledby="revoke-h" aria-describedby="revoke-body" id="revoke-dialog">
      <h2 id="revoke-h">{t('dash.revokeTitle')}</h2>
      <p id="revoke-body">{t('dash.revokeBody', { device: dev.name, worker: props.worker, n: num(dev.pending) })}</p>
      {account.value?.deviceId === dev.id && (
        <p class="warn card" id="revoke-own">
          {t('dash.revokeOwn')}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="dialog-actions">
        <button type="button" onClick={() => ref.current?.close()} disabled={busy}>
          {t('dash.cancel')}
        </button>
        <button
          type="button"
          class="danger-fill"
          id="revoke-confirm"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setError('');
            try {
              await props.onConfirm();
            } catch (e) {
              setError(t('dash.revokeError', { message: (e as Error).message }));
              setBusy(false);
            }
          }}
        >
          {t('dash.revokeConfirm', { device: dev.name })}
        </button>
      </div>
    </dialog>
  );
}
