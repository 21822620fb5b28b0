import { render } from 'preact';
import { registerSW } from 'virtual:pwa-register';
import './styles.css';
import { App, updateReady } from './app';
import { lang } from './i18n';
import { start } from './lib/session';

document.documentElement.lang = lang.value;

// A new version is offered, never forced: it activates when the worker
// taps "Aggiorna" (not while a form has unsaved input or a push runs).
if ('serviceWorker' in navigator) {
  const update = registerSW({
    immediate: true,
    onNeedRefresh() {
      updateReady.value = () => void update(true);
    },
  });
}

render(<App />, document.getElementById('app')!);
void start();
