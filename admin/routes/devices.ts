import { z } from 'zod';
import { deviceDetailSchema, deviceSchema, pageSchema } from '../present.js';
import { bulkEnrollBody, enrollBody, listDevicesQuery, noQuery } from '../requests.js';
import { factoryParam, READ, route, WRITE, type ApiOptions, type Route } from './route.js';
import { stateRoutes } from './state.js';

const enrollmentSchema = z.object({
  device: deviceSchema,
  certificate: z.string().describe('PEM device certificate'),
  caCertificate: z.string().describe('PEM of the CA that issued it'),
  gatewayCa: z.string().describe('PEM bundle the device verifies the gateway with'),
  gateway: z.string().describe('the gateway URL'),
});
const bulkRowSchema = z.union([
  z.object({ row: z.number().int(), uuid: z.string(), ok: z.literal(true) }),
  z.object({ row: z.number().int(), uuid: z.string().nullable(), ok: z.literal(false), code: z.string(), message: z.string() }),
]);
const bulkSchema = z.object({ enrolled: z.number().int(), results: z.array(bulkRowSchema), devices: z.array(deviceSchema) });

/** A factory's devices: listing, enrollment (one or many), state and deletion. */
export function deviceRoutes({ service, enrollment }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/factories/:factory/devices',
      operationId: 'listDevices',
      summary: 'devices by UUID, filtered by state, test or not, and a search text',
      tag: 'devices',
      auth: 'required',
      scopes: READ,
      query: listDevicesQuery,
      answers: { 200: { description: 'a page of devices', schema: pageSchema(deviceSchema, 'DevicePage') } },
      async handle({ req, res, principal, query }) {
        res.json(await service.listDevices(principal, factoryParam(req), query));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/devices',
      operationId: 'enrollDevice',
      summary: 'enroll a device from its CSR or a certificate a factory CA issued (test devices: devices:test)',
      tag: 'devices',
      auth: 'required',
      scopes: ['devices:write', 'devices:test'],
      body: enrollBody,
      answers: { 201: { description: 'the enrolled device and what it needs', schema: enrollmentSchema } },
      async handle({ req, res, principal, body }) {
        const result = await service.enroll(principal, factoryParam(req), body);
        res.status(201).json({ ...result, ...enrollment });
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/devices/bulk',
      operationId: 'enrollDevices',
      summary: 'enroll many devices at once: all rows or none (400 bulk_rows_refused lists each row)',
      tag: 'devices',
      auth: 'required',
      scopes: WRITE,
      body: bulkEnrollBody,
      // 500 rows of a few KiB each.
      maxBodyBytes: 4 * 1024 * 1024,
      answers: { 201: { description: 'every row enrolled', schema: bulkSchema } },
      async handle({ req, res, principal, body }) {
        res.status(201).json(await service.enrollBulk(principal, factoryParam(req), body.rows));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/devices/:uuid',
      operationId: 'getDevice',
      summary: 'a device, its certificate and its history',
      tag: 'devices',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'the device', schema: deviceDetailSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getDevice(principal, factoryParam(req), req.params.uuid));
      },
    }),
    route({
      method: 'delete',
      path: '/factories/:factory/devices/:uuid',
      operationId: 'deleteDevice',
      summary: 'delete a device record (its history stays in the audit trail)',
      tag: 'devices',
      auth: 'required',
      scopes: WRITE,
      answers: { 204: { description: 'deleted' } },
      async handle({ req, res, principal }) {
        await service.deleteDevice(principal, factoryParam(req), req.params.uuid);
        res.status(204).end();
      },
    }),
    ...stateRoutes('devices', 'uuid', deviceSchema, {
      disable: 'disable a device: it gets no tokens until enabled',
      enable: 'enable a disabled or pending device',
      revoke: 'revoke a device for good: its tokens die at once',
    }, (call, state) => service.setDeviceState(call.principal, call.req.params.factory, call.req.params.uuid, state, call.body.reason)),
  ];
}
