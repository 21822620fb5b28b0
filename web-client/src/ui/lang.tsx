import { lang, setLang } from '../i18n';

export function LangSwitch() {
  return (
    <div class="lang" role="group" aria-label="Lingua / Language">
      <button type="button" data-lang="it" aria-pressed={lang.value === 'it'} onClick={() => setLang('it')} lang="it">
        Italiano
      </button>
      <button type="button" data-lang="en" aria-pressed={lang.value === 'en'} onClick={() => setLang('en')} lang="en">
        English
      </button>
    </div>
  );
}
