import { z } from 'zod';
import { factorySchema, pageSchema } from '../present.js';
import { noQuery, settingsBody } from '../requests.js';
import { factoryParam, READ, route, WRITE, type ApiOptions, type Route } from './route.js';

const settingsSchema = z.object({
  factory: z.string(),
  jitMode: z.enum(['off', 'pending', 'active']),
  certMaxDays: z.number().int(),
  testCertMaxHours: z.number().int(),
  keyTypes: z.array(z.string()),
  updatedAt: z.string().nullable(),
  limits: z.object({ certMaxDays: z.number().int(), testCertMaxHours: z.number().int(), keyTypes: z.array(z.string()) }).describe("the operator's limits (pki.*): a factory may narrow them, never widen them"),
});

/** The factories the caller may act on, and each factory's settings. */
export function factoryRoutes({ service }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/factories',
      operationId: 'listFactories',
      summary: "the factories the caller may act on (the operator's: all)",
      tag: 'factories',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'factories', schema: pageSchema(factorySchema, 'FactoryPage') } },
      async handle({ res, principal }) {
        res.json(await service.listFactories(principal));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory',
      operationId: 'getFactory',
      summary: 'a factory',
      tag: 'factories',
      auth: 'required',
      scopes: ['devices:read', 'devices:write', 'devices:test', 'containers:read', 'containers:write', 'tokens:write'],
      query: noQuery,
      answers: { 200: { description: 'the factory', schema: factorySchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getFactory(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/settings',
      operationId: 'getFactorySettings',
      summary: "the factory's JIT mode and certificate policy, with the operator's limits",
      tag: 'factories',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'settings in force', schema: settingsSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getFactorySettings(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'patch',
      path: '/factories/:factory/settings',
      operationId: 'updateFactorySettings',
      summary: 'change settings (absent fields keep their value; null restores the default)',
      tag: 'factories',
      auth: 'required',
      scopes: WRITE,
      body: settingsBody,
      answers: { 200: { description: 'settings in force', schema: settingsSchema } },
      async handle({ req, res, principal, body }) {
        res.json(await service.updateFactorySettings(principal, factoryParam(req), body));
      },
    }),
  ];
}
