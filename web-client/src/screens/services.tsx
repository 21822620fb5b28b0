import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { views } from '../lib/view';
import { ServiceCategories, label } from '../domain';

export function Services() {
  const [q, setQ] = useState('');
  const [cat, setCat] = useState('');
  const needle = q.trim().toLowerCase();
  const list = [...views.value.services.values()]
    .filter((s) => s.active !== false)
    .filter((s) => !cat || s.category === cat)
    .filter((s) => !needle || `${s.name} ${s.organisation} ${s.address}`.toLowerCase().includes(needle))
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
  return (
    <>
      <h1 tabIndex={-1}>{t('services.title')}</h1>
      <div class="field search">
        <label for="svc-search">{t('services.search')}</label>
        <input id="svc-search" type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="svc-cat">{t('services.category')}</label>
        <select id="svc-cat" value={cat} onChange={(e) => setCat((e.target as HTMLSelectElement).value)}>
          <option value="">{t('services.all')}</option>
          {ServiceCategories.map((c) => (
            <option key={c} value={c}>
              {t(label('category.', c))}
            </option>
          ))}
        </select>
      </div>
      <ul class="cards">
        {list.map((s) => (
          <li key={s.id} id={`s-${s.id}`} class="card">
            <h2>{s.name}</h2>
            {s.organisation && <p class="sub">{s.organisation}</p>}
            <p>
              <span class="tag">{t(label('category.', s.category))}</span>
            </p>
            {s.address && <p>{s.address}</p>}
            {s.hours && (
              <p>
                <strong>{t('services.hours')}:</strong> {s.hours}
              </p>
            )}
            <div class="quick">
              {s.phone && (
                <a class="button" href={`tel:${String(s.phone).split(/[,;/]/)[0].replace(/[^\d+]/g, '')}`}>
                  {t('services.call', { phone: String(s.phone).split(/[,;/]/)[0].trim() })}
                </a>
              )}
              {s.address && (
                <a class="button" href={`https://www.openstreetmap.org/search?query=${encodeURIComponent(s.address + ', Roma')}`} target="_blank" rel="noopener noreferrer">
                  {t('services.map')}
                </a>
              )}
            </div>
          </li>
        ))}
      </ul>
    </>
  );
}
