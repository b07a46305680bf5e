import { useEffect, useState } from 'preact/hooks';
import { api, f, type Settings } from '../api';
import type { PageProps } from '../main';
import { ErrorBox, useLoad, when } from '../ui';

export function SettingsPage({ factory, can }: PageProps) {
  const [settings, error, reload] = useLoad(() => api<Settings>('GET', `${f(factory)}/settings`), [factory]);
  const [jit, setJit] = useState('off');
  const [days, setDays] = useState('');
  const [hours, setHours] = useState('');
  const [keyTypes, setKeyTypes] = useState<string[]>([]);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const write = can('devices:write');
  useEffect(() => {
    if (!settings) return;
    setJit(settings.jitMode);
    setDays(String(settings.certMaxDays));
    setHours(String(settings.testCertMaxHours));
    setKeyTypes(settings.keyTypes);
  }, [settings]);
  if (!settings) return <ErrorBox error={error} />;
  const { limits } = settings;
  return (
    <>
      <h1>Factory settings</h1>
      <p class="hint">Last changed {when(settings.updatedAt)}. The operator's limits bound what this factory may allow.</p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setSaveError(null);
          setSaved(false);
          try {
            await api('PATCH', `${f(factory)}/settings`, { jit, certMaxDays: Number(days), testCertMaxHours: Number(hours), keyTypes });
            setSaved(true);
            reload();
          } catch (err) {
            setSaveError(err);
          }
        }}
      >
        <fieldset disabled={!write}>
          <legend>Just-in-time registration</legend>
          <p>
            <label for="jit">Unknown devices whose certificate chains to a factory CA</label>
            <select id="jit" value={jit} onChange={(e) => setJit(e.currentTarget.value)}>
              <option value="off">off: refused</option>
              <option value="pending">pending: registered, waiting to be enabled</option>
              <option value="active">active: registered and working at once</option>
            </select>
          </p>
        </fieldset>
        <fieldset disabled={!write}>
          <legend>Certificate policy</legend>
          <p>
            <label for="cert-days">Longest device certificate, days (operator's limit {limits.certMaxDays})</label>
            <input id="cert-days" type="number" min={1} max={limits.certMaxDays} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
          </p>
          <p>
            <label for="test-hours">Longest test certificate, hours (operator's limit {limits.testCertMaxHours})</label>
            <input id="test-hours" type="number" min={1} max={limits.testCertMaxHours} value={hours} onInput={(e) => setHours(e.currentTarget.value)} />
          </p>
          <fieldset>
            <legend>Device key types (the operator allows {limits.keyTypes.join(', ')})</legend>
            {limits.keyTypes.map((k) => (
              <label key={k} class="check">
                <input type="checkbox" checked={keyTypes.includes(k)} onChange={(e) => setKeyTypes(e.currentTarget.checked ? [...keyTypes, k] : keyTypes.filter((x) => x !== k))} /> {k}
              </label>
            ))}
          </fieldset>
        </fieldset>
        {write && (
          <button type="submit" disabled={keyTypes.length === 0}>
            Save settings
          </button>
        )}
      </form>
      <ErrorBox error={saveError} />
      {saved && (
        <p role="status" class="ok">
          Saved.
        </p>
      )}
    </>
  );
}
