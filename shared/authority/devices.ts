import { conflict, notFound } from '../errors.js';
import type { Device, DeviceState, Factory } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit, type DeviceStateEvent } from './events.js';
import { assertDeviceUuid, assertLabel } from './names.js';
import { deviceTokensOutlive } from './tokens.js';

/** A device's life after enrollment (enrollment/ brings it in): state changes and deletion. */

export async function requireDevice(deps: AuthorityDeps, factory: Factory, uuid: unknown): Promise<Device> {
  const id = assertDeviceUuid(uuid);
  const device = await deps.store.getDevice(id);
  // A device of another factory is reported exactly like a missing one.
  if (!device || device.factoryId !== factory.id) throw notFound('device_not_found', `factory "${factory.name}" has no device ${id}`);
  return device;
}

const DEVICE_TRANSITIONS: Record<DeviceState, DeviceState[]> = {
  pending: ['active', 'disabled', 'revoked'],
  active: ['disabled', 'revoked'],
  disabled: ['active', 'revoked'],
  revoked: [],
};

const EVENT_OF: Record<DeviceState, DeviceStateEvent> = {
  active: 'device.enabled',
  pending: 'device.pending',
  disabled: 'device.disabled',
  revoked: 'device.revoked',
};

export async function setDeviceState(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  uuid: unknown,
  state: DeviceState,
  reason: unknown,
): Promise<Device> {
  const device = await requireDevice(deps, factory, uuid);
  const why = assertLabel(reason, 'reason');
  if (!DEVICE_TRANSITIONS[device.state].includes(state)) {
    throw conflict('device_state_transition', `a ${device.state} device cannot become ${state}${device.state === 'revoked' ? ': revocation is final' : ''}`);
  }
  return commit(deps, { type: EVENT_OF[state], ...by(actor), factoryId: factory.id, target: device.uuid, reason: why }, (audit) =>
    deps.store.setDeviceState(device.uuid, state, why, audit, { revokeTokens: !deviceTokensOutlive(state) }),
  );
}

export async function deleteDevice(deps: AuthorityDeps, actor: Actor, factory: Factory, uuid: unknown): Promise<void> {
  const device = await requireDevice(deps, factory, uuid);
  await commit(
    deps,
    { type: 'device.deleted', ...by(actor), factoryId: factory.id, target: device.uuid, details: { fingerprint256: device.certificateFingerprint } },
    (audit) => deps.store.deleteDevice(device.uuid, audit),
  );
}
