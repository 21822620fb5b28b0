// One form for every record the worker writes: it lists the fields of a
// collection, sends only the fields that changed, and saves the mutation
// (sealed) in one IndexedDB transaction.
import { signal } from '@preact/signals';
import { useState } from 'preact/hooks';
import { t, type Key } from '../i18n';
import { label, PERSON_CODE, type FieldSpec } from '../domain';
import { enqueue, type Rec } from '../lib/store';
import { key } from '../lib/session';
import { base } from '../lib/view';
import { uuidv7 } from '../lib/ids';
import { day, list } from './format';

/** Forms with unsaved input: an update of the app waits for them. */
export const dirtyForms = signal(0);

export interface Option {
  value: string;
  label: string;
}

export interface FormProps {
  collection: string;
  fields: FieldSpec[];
  id?: string;
  initial: Rec;
  /** Options of relation fields, by field name; may depend on the values being edited. */
  options: (field: string, values: Rec) => Option[];
  /** Fields always sent for a new record (team). */
  fixed: (values: Rec) => Rec;
  person?: (values: Rec) => string;
  onSaved: (id: string) => void;
  onCancel: () => void;
}

function normalise(spec: FieldSpec, v: unknown): unknown {
  switch (spec.kind) {
    case 'number':
      return v === '' || v === null || v === undefined ? null : Number(v);
    case 'date':
      return day(v);
    case 'multi':
    case 'relations':
      return list(v).slice().sort();
    default:
      return v ?? '';
  }
}

export function RecordForm(p: FormProps) {
  const [values, setValues] = useState<Rec>(() => ({ ...p.initial }));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [dirty, setDirty] = useState(false);
  const [saving, setSaving] = useState(false);

  const markDirty = () => {
    if (!dirty) {
      setDirty(true);
      dirtyForms.value++;
    }
  };
  const clean = () => {
    if (dirty) dirtyForms.value--;
    setDirty(false);
  };
  const set = (name: string, v: unknown) => {
    setValues((old) => ({ ...old, [name]: v }));
    markDirty();
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    for (const f of p.fields) {
      const v = values[f.name];
      const empty = v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
      if (f.required && empty) errs[f.name] = t('form.required');
    }
    if (p.collection === 'persons' && values.code && !PERSON_CODE.test(String(values.code))) {
      errs.code = t('form.invalidCode');
    }
    setErrors(errs);
    if (Object.keys(errs).length > 0) {
      document.getElementById('f-' + Object.keys(errs)[0])?.focus();
      return;
    }
    const k = key();
    if (!k) return;
    const isNew = !p.id;
    const id = p.id ?? uuidv7();
    const fields: Rec = isNew ? { ...p.fixed(values) } : {};
    for (const f of p.fields) {
      const now = normalise(f, values[f.name]);
      const was = normalise(f, p.initial[f.name]);
      if (isNew ? now !== '' && now !== null && !(Array.isArray(now) && now.length === 0) : JSON.stringify(now) !== JSON.stringify(was)) {
        fields[f.name] = now;
      }
    }
    if (Object.keys(fields).length === 0) {
      clean();
      p.onSaved(id);
      return;
    }
    setSaving(true);
    try {
      const baseVersion = Number(base.value.get(p.collection)?.get(id)?.version ?? 0);
      await enqueue(
        k,
        { collection: p.collection, recordId: id, op: 'upsert', baseVersion, fields, clientTime: new Date().toISOString() },
        p.person?.(values) ?? '',
      );
      clean();
      p.onSaved(id);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form onSubmit={submit} noValidate class="form">
      {p.fields.map((f) => (
        <Field key={f.name} spec={f} value={values[f.name]} error={errors[f.name]} options={p.options(f.name, values)} set={set} />
      ))}
      <div class="actions">
        <button type="submit" class="primary" disabled={saving}>
          {t('form.save')}
        </button>
        <button
          type="button"
          onClick={() => {
            clean();
            p.onCancel();
          }}
        >
          {t('form.cancel')}
        </button>
      </div>
    </form>
  );
}

function Field(props: { spec: FieldSpec; value: unknown; error?: string; options: Option[]; set: (n: string, v: unknown) => void }) {
  const { spec, value, error, set } = props;
  const id = 'f-' + spec.name;
  const lbl = t(('field.' + spec.name) as Key);
  const err = error ? <p class="error" id={id + '-err'}>{error}</p> : null;
  const aria = { 'aria-invalid': error ? true : undefined, 'aria-describedby': error ? id + '-err' : undefined };
  const req = spec.required ? <span aria-hidden="true"> *</span> : null;
  if (spec.kind === 'multi' || spec.kind === 'relations') {
    const opts: Option[] =
      spec.kind === 'multi' ? (spec.values ?? []).map((v) => ({ value: v, label: t(label(spec.prefix!, v)) })) : props.options;
    const sel = list(value);
    return (
      <fieldset class="field checks" id={id} tabIndex={-1}>
        <legend>
          {lbl}
          {req}
        </legend>
        {opts.map((o) => (
          <label key={o.value} class="check">
            <input
              type="checkbox"
              name={spec.name}
              value={o.value}
              checked={sel.includes(o.value)}
              onChange={(e) => {
                const on = (e.target as HTMLInputElement).checked;
                set(spec.name, on ? [...sel, o.value] : sel.filter((x) => x !== o.value));
              }}
            />
            <span>{o.label}</span>
          </label>
        ))}
        {err}
      </fieldset>
    );
  }
  let input;
  const onInput = (e: Event) => set(spec.name, (e.target as HTMLInputElement).value);
  switch (spec.kind) {
    case 'textarea':
      input = <textarea id={id} name={spec.name} rows={3} value={String(value ?? '')} onInput={onInput} {...aria} />;
      break;
    case 'select':
    case 'relation': {
      const opts: Option[] =
        spec.kind === 'select' ? (spec.values ?? []).map((v) => ({ value: v, label: t(label(spec.prefix!, v)) })) : props.options;
      input = (
        <select id={id} name={spec.name} value={String(value ?? '')} onChange={onInput} {...aria}>
          <option value="">{t('form.choose')}</option>
          {opts.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      );
      break;
    }
    case 'number':
      input = <input id={id} name={spec.name} type="number" inputMode="numeric" value={value === null || value === undefined ? '' : String(value)} onInput={onInput} {...aria} />;
      break;
    case 'date':
      input = <input id={id} name={spec.name} type="date" value={day(value)} onInput={onInput} {...aria} />;
      break;
    default:
      input = <input id={id} name={spec.name} type="text" value={String(value ?? '')} onInput={onInput} autoComplete="off" {...aria} />;
  }
  return (
    <div class="field">
      <label for={id}>
        {lbl}
        {req}
      </label>
      {input}
      {err}
    </div>
  );
}
