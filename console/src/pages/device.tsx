import { useState } from 'preact/hooks';
import { api, f, type Device, type DeviceDetail } from '../api';
import type { PageProps } from '../main';
import { Confirm, ErrorBox, Link, StateBadge, navigate, useLoad, when, type ConfirmRequest } from '../ui';

const TRANSITIONS: Record<string, ('disable' | 'enable' | 'revoke')[]> = {
  pending: ['enable', 'disable', 'revoke'],
  active: ['disable', 'revoke'],
  disabled: ['enable', 'revoke'],
  revoked: [],
};

const CONSEQUENCE = {
  disable: 'It gets no tokens until it is enabled again; the tokens it holds stop working now.',
  enable: 'It can get tokens and pull images again.',
  revoke: 'Revocation is final: the device and the tokens it holds are refused from now on.',
};

export function DevicePage({ factory, can, uuid }: PageProps & { uuid: string }) {
  const [device, error, reload] = useLoad(() => api<DeviceDetail>('GET', `${f(factory)}/devices/${uuid}`), [factory, uuid]);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const path = `${f(factory)}/devices/${uuid}`;

  const act = (verb: 'disable' | 'enable' | 'revoke') =>
    setConfirm({
      title: `${verb[0]!.toUpperCase()}${verb.slice(1)} device ${uuid}?`,
      consequence: CONSEQUENCE[verb],
      action: `${verb[0]!.toUpperCase()}${verb.slice(1)} device`,
      danger: verb !== 'enable',
      reason: true,
      run: async (reason) => {
        await api<Device>('POST', `${path}/${verb}`, { reason: reason || null });
        reload();
      },
    });
  const remove = () =>
    setConfirm({
      title: `Delete device ${uuid}?`,
      consequence: 'The device record goes; its history stays in the audit trail. The device can be enrolled again from a new CSR.',
      action: 'Delete device',
      danger: true,
      run: async () => {
        await api('DELETE', path);
        navigate('/devices');
      },
    });

  return (
    <>
      <p>
        <Link href="/devices">← Devices</Link>
      </p>
      <ErrorBox error={error} />
      {device && (
        <>
          <div class="title-row">
            <h1>
              {device.name ?? 'Device'} <StateBadge state={device.state} />
            </h1>
            {can('devices:write') && (
              <div class="buttons" role="group" aria-label="Device actions">
                {TRANSITIONS[device.state]!.map((verb) => (
                  <button key={verb} type="button" class={verb === 'enable' ? '' : 'danger'} onClick={() => act(verb)}>
                    {verb[0]!.toUpperCase() + verb.slice(1)}
                  </button>
                ))}
                <button type="button" class="danger" onClick={remove}>
                  Delete
                </button>
              </div>
            )}
          </div>
          <dl class="facts">
            <dt>UUID</dt>
            <dd class="mono">{device.uuid}</dd>
            <dt>State</dt>
            <dd>
              {device.state}
              {device.stateReason ? ` (${device.stateReason})` : ''}
            </dd>
            <dt>Kind</dt>
            <dd>{device.test ? 'test device' : 'enrolled device'}</dd>
            <dt>Subject</dt>
            <dd class="mono">{device.certificate.subject}</dd>
            <dt>Issuer</dt>
            <dd class="mono">{device.certificate.issuer}</dd>
            <dt>Key type</dt>
            <dd>{device.certificate.keyType}</dd>
            <dt>Valid</dt>
            <dd>
              {when(device.certificate.notBefore)} to {when(device.certificate.notAfter)}
            </dd>
            <dt>Fingerprint (SHA-256)</dt>
            <dd class="mono wrap">{device.certificate.fingerprint256}</dd>
            <dt>Serial number</dt>
            <dd class="mono wrap">{device.certificate.serialNumber}</dd>
          </dl>
          <h2>History</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">Outcome</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {[...device.history].reverse().map((h) => (
                <tr key={h.id}>
                  <td>{when(h.at)}</td>
                  <td class="mono">{h.actor}</td>
                  <td>{h.action}</td>
                  <td>
                    <StateBadge state={h.outcome} />
                  </td>
                  <td>{h.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <Confirm request={confirm} onClose={() => setConfirm(null)} />
    </>
  );
}
