import { z } from 'zod';
import { invalidInput } from '../errors.js';
import type { DeviceAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import { record } from './events.js';

/**
 * Events a device reports about itself (`POST /events`): fioconfig's certificate-rotation progress
 * and aktualizr-lite's update events share one shape, a list of
 * `{id, deviceTime, eventType: {id, version}, event: {correlationId, success, targetName, version, details}}`.
 * Each becomes one audit record in the device's history. They are the device's word, recorded as
 * such: nothing is decided on them. Bounded in count and size so a device cannot flood the trail.
 */

export const MAX_EVENTS_PER_REQUEST = 50;

const text = (max: number) => z.string().max(max).refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');

const eventSchema = z.object({
  id: text(64).min(1),
  deviceTime: text(40),
  eventType: z.object({
    // fioconfig names its rotation steps in words: "Generate new certificate".
    id: z.string().regex(/^[\u0020-\u007e]{1,128}$/, 'must be 1-128 printable ASCII characters'),
    version: z.number().int().min(0).max(1_000_000),
  }),
  // Known members are kept; anything else a newer client adds is dropped, not stored.
  event: z.object({
    correlationId: text(128).optional(),
    ecu: text(128).optional(),
    success: z.boolean().optional(),
    targetName: text(256).optional(),
    version: text(64).optional(),
    details: text(2048).optional(),
  }),
});

const eventsSchema = z.array(eventSchema).min(1).max(MAX_EVENTS_PER_REQUEST);

export type DeviceEvent = z.infer<typeof eventSchema>;

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'the events are invalid';
  const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `events${where}: ${issue.message}`;
}

/** Validates `body` and appends one audit record per event; returns how many were recorded. */
export async function recordDeviceEvents(deps: AuthorityDeps, device: DeviceAuthView, body: unknown, source: string | null): Promise<number> {
  const parsed = eventsSchema.safeParse(body);
  if (!parsed.success) {
    throw invalidInput('events_invalid', `${describeIssue(parsed.error)} (expected a list of 1 to ${MAX_EVENTS_PER_REQUEST} events)`);
  }
  await Promise.all(
    parsed.data.map((e) =>
      record(deps, {
        type: 'device.event',
        actor: `device:${device.uuid}`,
        factoryId: device.factoryId,
        target: device.uuid,
        source,
        details: { eventId: e.id, type: e.eventType.id, typeVersion: e.eventType.version, deviceTime: e.deviceTime, ...e.event },
      }),
    ),
  );
  return parsed.data.length;
}
