import { invalidInput } from '../errors.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../pki/index.js';
import type { Factory, FactorySettings, JitMode } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { certificatePolicy, operatorLimits } from './enrollment/policy.js';
import { commit } from './events.js';

/**
 * Per-factory lifecycle settings: just-in-time registration, and the certificate policy applied
 * whenever a device certificate is issued (enrollment, renewal) or accepted (enrollment from a
 * certificate, JIT). Every field a factory leaves unset falls back to the configuration's pki
 * section, and no field can go beyond it: a factory admin narrows the operator's policy, never widens it.
 */

export const JIT_MODES: readonly JitMode[] = ['off', 'pending', 'active'];

export interface FactorySettingsPatch {
  jit?: unknown;
  certMaxDays?: unknown;
  testCertMaxHours?: unknown;
  keyTypes?: unknown;
}

function limit(value: unknown, field: string, max: number): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalidInput(`${field}_invalid`, `${field} must be a whole number between 1 and ${max}, the operator's limit (or null for the default)`);
  }
  return value;
}

function keyTypes(value: unknown, allowed: readonly KeyAlgorithm[]): KeyAlgorithm[] | null {
  if (value === null) return null;
  if (!Array.isArray(value) || value.length === 0 || value.length > KEY_ALGORITHMS.length) {
    throw invalidInput('key_types_invalid', `key_types must be a non-empty list drawn from ${allowed.join(', ')}`);
  }
  for (const k of value) {
    if (!allowed.includes(k as KeyAlgorithm)) {
      throw invalidInput('key_types_invalid', `key type "${String(k).slice(0, 32)}" is not allowed here; the operator allows ${allowed.join(', ')}`);
    }
  }
  return [...new Set(value as KeyAlgorithm[])];
}

export async function getFactorySettings(deps: AuthorityDeps, factory: Factory) {
  const stored = await deps.store.getFactorySettings(factory.id);
  const effective = await certificatePolicy(deps, factory.id);
  return { factory: factory.name, ...effective, updatedAt: stored ? new Date(stored.updatedAt).toISOString() : null, limits: operatorLimits(deps) };
}

/** Applies the fields present in `patch`; absent fields keep their value, null restores the default. */
export async function updateFactorySettings(deps: AuthorityDeps, actor: Actor, factory: Factory, patch: FactorySettingsPatch) {
  const current: FactorySettings = (await deps.store.getFactorySettings(factory.id)) ?? {
    factoryId: factory.id,
    jitMode: 'off',
    certMaxDays: null,
    testCertMaxHours: null,
    keyTypes: null,
    updatedAt: 0,
  };
  const next: FactorySettings = { ...current, updatedAt: deps.now() };
  if (patch.jit !== undefined) {
    if (!JIT_MODES.includes(patch.jit as JitMode)) throw invalidInput('jit_invalid', `jit must be one of ${JIT_MODES.join(', ')}`);
    next.jitMode = patch.jit as JitMode;
  }
  const limits = operatorLimits(deps);
  if (patch.certMaxDays !== undefined) next.certMaxDays = limit(patch.certMaxDays, 'cert_max_days', limits.certMaxDays);
  if (patch.testCertMaxHours !== undefined) next.testCertMaxHours = limit(patch.testCertMaxHours, 'test_cert_max_hours', limits.testCertMaxHours);
  if (patch.keyTypes !== undefined) next.keyTypes = keyTypes(patch.keyTypes, limits.keyTypes);
  const details = { jitMode: next.jitMode, certMaxDays: next.certMaxDays, testCertMaxHours: next.testCertMaxHours, keyTypes: next.keyTypes };
  await commit(deps, { type: 'factory.settings_changed', ...by(actor), factoryId: factory.id, target: factory.name, details }, (audit) =>
    deps.store.putFactorySettings(next, audit),
  );
  return getFactorySettings(deps, factory);
}
