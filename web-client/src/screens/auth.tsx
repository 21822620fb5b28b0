import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import {
  signIn,
  unlock,
  reauthenticate,
  wipedNotice,
  SignInError,
  UnlockError,
  wipe,
  revokedWhileLocked,
} from '../lib/session';
import { countUnsynced } from '../lib/store';
import { LangSwitch } from '../ui/lang';

export function Insecure() {
  return (
    <main class="auth">
      <h1 tabIndex={-1}>{t('insecure.title')}</h1>
      <p class="card warn" role="alert">
        {t('insecure.body')}
      </p>
      <LangSwitch />
    </main>
  );
}

export function SignIn() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    setBusy(true);
    setError('');
    try {
      await signIn(String(f.get('email')).trim(), String(f.get('password')));
    } catch (err) {
      const code = err instanceof SignInError ? err.code : 'network';
      setError(t(`signin.error.${code}`));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="auth">
      <div class="brand" aria-hidden="true">
        <img src="/icon.svg" alt="" width={56} height={56} />
      </div>
      <h1 tabIndex={-1}>{t('signin.title')}</h1>
      {wipedNotice.value !== null && (
        <p class="warn" role="alert" id="wiped-notice">
          {t('signin.wiped', { n: wipedNotice.value })}
        </p>
      )}
      <p>{t('signin.intro')}</p>
      <form onSubmit={submit} class="form">
        <div class="field">
          <label for="email">{t('signin.email')}</label>
          <input id="email" name="email" type="email" autoComplete="username" required />
        </div>
        <div class="field">
          <label for="password">{t('signin.password')}</label>
          <input id="password" name="password" type="password" autoComplete="current-password" required />
        </div>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary wide" disabled={busy}>
          {busy ? t('signin.busy') : t('signin.submit')}
        </button>
      </form>
      <LangSwitch />
    </main>
  );
}

/** While locked, asks every minute whether the device was revoked. */
function useRevocationProbe() {
  useEffect(() => {
    void revokedWhileLocked();
    const timer = setInterval(() => void revokedWhileLocked(), 60_000);
    const onVisible = () => document.visibilityState === 'visible' && void revokedWhileLocked();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);
}

export function Locked() {
  useRevocationProbe();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [confirmSignOut, setConfirm] = useState<number | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const pw = String(new FormData(form).get('password'));
    setBusy(true);
    setError('');
    try {
      await unlock(pw);
    } catch (err) {
      if (err instanceof UnlockError && err.code === 'wait') setError(t('lock.wait', { n: err.waitSeconds }));
      else setError(t('lock.wrong'));
      form.reset();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="auth">
      <div class="brand" aria-hidden="true">
        <img src="/icon.svg" alt="" width={56} height={56} />
      </div>
      <h1 tabIndex={-1}>{t('lock.title')}</h1>
      <p>{t('lock.intro')}</p>
      <form onSubmit={submit} class="form">
        <div class="field">
          <label for="password">{t('signin.password')}</label>
          <input id="password" name="password" type="password" autoComplete="current-password" required />
        </div>
        {error && (
          <p class="error" role="alert" id="unlock-error">
            {error}
          </p>
        )}
        <button type="submit" class="primary wide" disabled={busy}>
          {busy ? t('lock.busy') : t('lock.submit')}
        </button>
      </form>
      {confirmSignOut === null ? (
        <button type="button" class="link" onClick={async () => setConfirm(await countUnsynced())}>
          {t('lock.signout')}
        </button>
      ) : (
        <div class="card warn">
          {confirmSignOut > 0 && <p>{t('settings.signoutPending', { n: confirmSignOut })}</p>}
          <button type="button" class="danger" onClick={() => wipe(null)}>
            {t('settings.signoutConfirm')}
          </button>
        </div>
      )}
      <LangSwitch />
    </main>
  );
}

/** Shown above the screens when the server refused the token: the outbox is kept. */
export function PasswordPrompt() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  return (
    <form
      class="banner warn form"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        setBusy(true);
        setError('');
        try {
          await reauthenticate(String(new FormData(form).get('password')));
        } catch (err) {
          setError(t(`signin.error.${err instanceof SignInError ? err.code : 'network'}`));
        } finally {
          setBusy(false);
        }
      }}
    >
      <p>{t('session.expired')}</p>
      <div class="field">
        <label for="reauth-password">{t('signin.password')}</label>
        <input id="reauth-password" name="password" type="password" autoComplete="current-password" required />
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit" class="primary" disabled={busy}>
        {t('session.submit')}
      </button>
    </form>
  );
}
