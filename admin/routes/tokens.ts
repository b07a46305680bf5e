import { z } from 'zod';
import { pageSchema, tokenSchema } from '../present.js';
import { createTokenBody, noQuery } from '../requests.js';
import { factoryParam, route, type ApiOptions, type Route } from './route.js';

const createdTokenSchema = tokenSchema.extend({ secret: z.string().describe('shown only in this answer') });

/** A factory's API tokens. */
export function tokenRoutes({ service }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/factories/:factory/tokens',
      operationId: 'listTokens',
      summary: "the factory's API tokens (never their secrets)",
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      query: noQuery,
      answers: { 200: { description: 'every API token of the factory (one page)', schema: pageSchema(tokenSchema, 'ApiTokenPage') } },
      async handle({ req, res, principal }) {
        res.json(await service.listTokens(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/tokens',
      operationId: 'createToken',
      summary: 'create an API token with scopes the caller holds; its secret is in this answer only',
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      body: createTokenBody,
      answers: { 201: { description: 'the token and its secret', schema: createdTokenSchema } },
      async handle({ req, res, principal, body }) {
        res.status(201).json(await service.createToken(principal, factoryParam(req), body));
      },
    }),
    route({
      method: 'delete',
      path: '/factories/:factory/tokens/:id',
      operationId: 'revokeToken',
      summary: 'revoke an API token',
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      answers: { 204: { description: 'revoked' } },
      async handle({ req, res, principal }) {
        await service.revokeToken(principal, factoryParam(req), req.params.id);
        res.status(204).end();
      },
    }),
  ];
}
