import type { z } from 'zod';
import type { CaState, DeviceState } from '../../shared/store/types.js';
import { stateChangeBody } from '../requests.js';
import { route, WRITE, type Call, type Route } from './route.js';

const STATE_ACTIONS: [verb: 'disable' | 'enable' | 'revoke', state: DeviceState & CaState][] = [
  ['disable', 'disabled'],
  ['enable', 'active'],
  ['revoke', 'revoked'],
];

type StateChange = Call<unknown, z.infer<typeof stateChangeBody>>;

/** POST …/<resource>/:<key>/disable|enable|revoke, one route each: a device's or a CA's state. */
export function stateRoutes(
  resource: 'cas' | 'devices',
  key: string,
  schema: z.ZodType,
  summaries: Record<(typeof STATE_ACTIONS)[number][0], string>,
  change: (call: StateChange, state: DeviceState & CaState) => Promise<unknown>,
): Route[] {
  const noun = resource === 'cas' ? 'Ca' : 'Device';
  return STATE_ACTIONS.map(([verb, state]) =>
    route({
      method: 'post',
      path: `/factories/:factory/${resource}/:${key}/${verb}`,
      operationId: `${verb}${noun}`,
      summary: summaries[verb],
      tag: resource,
      auth: 'required',
      scopes: WRITE,
      body: stateChangeBody,
      answers: { 200: { description: `the ${noun === 'Ca' ? 'CA' : 'device'}`, schema } },
      async handle(call) {
        call.res.json(await change(call, state));
      },
    }),
  );
}

