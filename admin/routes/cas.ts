import { z } from 'zod';
import { caSchema, pageSchema } from '../present.js';
import { caBody, noQuery } from '../requests.js';
import { factoryParam, READ, route, WRITE, type ApiOptions, type Route } from './route.js';
import { stateRoutes } from './state.js';

const deviceCountsNote = 'with how many devices each CA issued, by state';
const codeSchema = z.object({ code: z.string(), expiresAt: z.string() });


/** A factory's device CAs: online and external, and their state. */
export function caRoutes({ service }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/factories/:factory/cas',
      operationId: 'listCas',
      summary: `the factory's device CAs, ${deviceCountsNote}`,
      tag: 'cas',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'every CA of the factory (one page)', schema: pageSchema(caSchema, 'DeviceCaPage') } },
      async handle({ req, res, principal }) {
        res.json(await service.listCas(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/cas',
      operationId: 'addCa',
      summary: 'create an online CA, or register an external one (with proof of possession of its key)',
      tag: 'cas',
      auth: 'required',
      scopes: WRITE,
      body: caBody,
      answers: { 201: { description: 'the new CA', schema: caSchema } },
      async handle({ req, res, principal, body }) {
        const ca =
          body.kind === 'online'
            ? await service.createOnlineCa(principal, factoryParam(req), { commonName: body.commonName, days: body.days })
            : await service.addExternalCa(principal, factoryParam(req), body.certificate, body.verificationCertificate);
        res.status(201).json(ca);
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/cas/registration-code',
      operationId: 'createCaRegistrationCode',
      summary: 'a single-use code (valid one hour) for proving possession of an external CA key',
      tag: 'cas',
      auth: 'required',
      scopes: WRITE,
      answers: { 201: { description: 'the code: sign a certificate whose CN is this code with the CA key', schema: codeSchema } },
      async handle({ req, res, principal }) {
        res.status(201).json(await service.createCaRegistrationCode(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/cas/:id',
      operationId: 'getCa',
      summary: `a device CA, ${deviceCountsNote}`,
      tag: 'cas',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'the CA', schema: caSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getCa(principal, factoryParam(req), req.params.id));
      },
    }),
    ...stateRoutes('cas', 'id', caSchema, {
      disable: 'stop a CA from enrolling new devices (devices it issued keep working)',
      enable: 'enable a disabled CA',
      revoke: 'revoke a CA for good: every device it issued is cut off',
    }, (call, state) => service.setCaState(call.principal, call.req.params.factory, call.req.params.id, state, call.body.reason)),
  ];
}
