import { z } from 'zod';
import { auditAllSchema, factorySchema, operatorTokenSchema, pageSchema, signingKeySchema } from '../present.js';
import { addKeyBody, auditQuery, createFactoryBody, noQuery, operatorTokenBody } from '../requests.js';
import { route, type ApiOptions, type Route } from './route.js';

const registrySettingsSchema = z
  .object({ gateway: z.string(), tokenKeyHint: z.string(), keys: z.array(signingKeySchema) })
  .catchall(z.unknown())
  .describe("the realm's published token settings (realm, service, issuer), the gateway URL and every signing key")
  .meta({ title: 'RegistrySettings' });
const createdOperatorTokenSchema = operatorTokenSchema.extend({ secret: z.string().describe('shown only in this answer') });

/** The operator's own commands (an operator token, the local CLI or its console session). */
export function operatorRoutes({ service }: ApiOptions): Route[] {
  return [
    route({
      method: 'post',
      path: '/factories',
      operationId: 'createFactory',
      summary: 'create a factory (operator only)',
      tag: 'operator',
      auth: 'required',
      body: createFactoryBody,
      answers: { 201: { description: 'the factory', schema: factorySchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.createFactory(principal, body.name));
      },
    }),
    route({
      method: 'get',
      path: '/keys',
      operationId: 'listSigningKeys',
      summary: 'the token-signing keys (operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'every signing key', schema: z.array(signingKeySchema) } },
      async handle({ res, principal }) {
        res.json(await service.listSigningKeys(principal));
      },
    }),
    route({
      method: 'post',
      path: '/keys',
      operationId: 'addSigningKey',
      summary: 'generate a token-signing key (operator only)',
      tag: 'operator',
      auth: 'required',
      body: addKeyBody,
      answers: { 201: { description: 'the new key', schema: signingKeySchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.addSigningKey(principal, body));
      },
    }),
    ...(['activate', 'retire'] as const).map((verb) =>
      route({
        method: 'post',
        path: `/keys/:kid/${verb}`,
        operationId: `${verb}SigningKey`,
        summary: verb === 'activate' ? 'sign new tokens with this key; the previous one stays trusted (operator only)' : 'take a key out of the registry bundle (operator only)',
        tag: 'operator',
        auth: 'required',
        answers: { 200: { description: 'done', schema: z.record(z.string(), z.string()) } },
        async handle({ req, res, principal }) {
          res.json(verb === 'activate' ? await service.activateSigningKey(principal, req.params.kid) : await service.retireSigningKey(principal, req.params.kid));
        },
      }),
    ),
    route({
      method: 'get',
      path: '/audit',
      operationId: 'listAuditAll',
      summary: "every factory's audit trail and the accounts', with the factory audit's filters (operator only)",
      tag: 'operator',
      auth: 'required',
      query: auditQuery,
      answers: { 200: { description: 'a page of audit records', schema: pageSchema(auditAllSchema, 'AuditAllPage') } },
      async handle({ res, principal, query }) {
        res.json(await service.auditAll(principal, query));
      },
    }),
    route({
      method: 'get',
      path: '/registry',
      operationId: 'registrySettings',
      summary: 'what registries and doctor compare against (operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the published settings', schema: registrySettingsSchema } },
      async handle({ res, principal }) {
        res.json(await service.registrySettings(principal));
      },
    }),
    route({
      method: 'get',
      path: '/operator-tokens',
      operationId: 'listOperatorTokens',
      summary: 'the operator tokens (never their secrets; operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'every operator token', schema: z.array(operatorTokenSchema) } },
      async handle({ res, principal }) {
        res.json(await service.listOperatorTokens(principal));
      },
    }),
    route({
      method: 'post',
      path: '/operator-tokens',
      operationId: 'createOperatorToken',
      summary: 'create an operator token (tgo_); its secret is in this answer only (operator only)',
      tag: 'operator',
      auth: 'required',
      body: operatorTokenBody,
      answers: { 201: { description: 'the token and its secret', schema: createdOperatorTokenSchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.createOperatorToken(principal, body));
      },
    }),
    route({
      method: 'delete',
      path: '/operator-tokens/:id',
      operationId: 'revokeOperatorToken',
      summary: 'revoke an operator token (operator only)',
      tag: 'operator',
      auth: 'required',
      answers: { 204: { description: 'revoked' } },
      async handle({ req, res, principal }) {
        await service.revokeOperatorToken(principal, req.params.id);
        res.status(204).end();
      },
    }),
  ];
}
