import { z } from 'zod';
import { errorSchema, type Route } from './api.js';

/**
 * The OpenAPI 3.1 document of the admin API, generated from the route table and its zod schemas
 * (zod's own JSON Schema output, draft 2020-12, the dialect OpenAPI 3.1 uses).
 */

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
  return rest;
}

const ERRORS: Record<number, string> = {
  400: 'invalid input (`error.code` says which)',
  401: 'no or bad credentials',
  403: 'not allowed: another factory, a missing scope, or a console request without its CSRF token',
  404: 'no such factory, device, CA or token',
  409: 'the state does not allow it (duplicate, revoked, ...)',
  413: 'a request body over the size limit',
  415: 'a request body that is not application/json',
  429: 'too many requests',
  503: 'the store is busy or a provider is down; retry',
};

function parameters(route: Route): Json[] {
  const path = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (!route.query) return path;
  const query = jsonSchema(route.query, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return [
    ...path,
    ...Object.entries(query.properties ?? {}).map(([name, schema]) => {
      const { description, ...rest } = schema;
      return { name, in: 'query', required: (query.required ?? []).includes(name), schema: rest, ...(description ? { description } : {}) };
    }),
  ];
}

function operation(route: Route): Json {
  const responses: Json = {};
  for (const [status, answer] of Object.entries(route.answers)) {
    const content = answer.schema
      ? { 'application/json': { schema: jsonSchema(answer.schema, 'output') } }
      : answer.content
        ? Object.fromEntries(Object.entries(answer.content).map(([type, schema]) => [type, { schema: jsonSchema(schema, 'output') }]))
        : undefined;
    const headers = answer.headers ? Object.fromEntries(Object.entries(answer.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) : undefined;
    responses[status] = { description: answer.description, ...(content ? { content } : {}), ...(headers ? { headers } : {}) };
  }
  for (const [status, description] of Object.entries(ERRORS)) {
    responses[status] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  const scopes = route.scopes ? ` Scopes: ${route.scopes.join(' or ')}.` : '';
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(scopes ? { description: scopes.trim() } : {}),
    tags: [route.tag],
    parameters: parameters(route),
    ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
    responses,
    security: route.auth === 'none' ? [] : [{ bearer: [] }, { session: [] }],
  };
}

export function openApiDocument(routes: readonly Route[], version: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const path = `/v1${route.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
    paths[path] = { ...paths[path], [route.method]: operation(route) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate admin API',
      version,
      description:
        'Factory administration: devices, device CAs, API tokens, settings and the audit trail. Lists answer `{items, next}`; pass `next` back as `?cursor=` for the following page. Errors answer `{"error": {"code", "message"}}`; clients match on `code`.',
    },
    paths,
    components: {
      schemas: { Error: jsonSchema(errorSchema, 'output') },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an admin API token, tga_...' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'tollgate_session',
          description: 'a console session (__Host-tollgate_session over TLS); state changes also need the X-CSRF-Token header',
        },
      },
    },
  };
}
