import { z } from 'zod';
import { tokenSchema } from '../present.js';
import { noQuery, oidcCallbackQuery, signInBody } from '../requests.js';
import { route, type ApiOptions, type Route } from './route.js';

const whoamiSchema = z.union([
  z.object({ kind: z.literal('operator'), tokenId: z.string().optional().describe('the operator token used, if any') }),
  z.object({ kind: z.literal('token'), token: tokenSchema, factory: z.string().nullable() }),
  z.object({ kind: z.literal('person'), identity: z.string(), factory: z.string().nullable(), scopes: z.array(z.string()) }),
]);
const sessionSchema = z.object({
  kind: z.enum(['operator', 'token', 'person']),
  identity: z.string().describe('how the audit trail names the person: token:<id>, oidc:<account> or operator'),
  factory: z.string().nullable(),
  scopes: z.array(z.string()),
  csrfToken: z.string().describe('send as X-CSRF-Token with every state-changing request of this session'),
  expiresAt: z.string(),
  idleSeconds: z.number().int(),
});
const sessionOptionsSchema = z.object({ token: z.literal(true), oidc: z.boolean() });

/** The description, console sign-in and sessions, and who the caller is. */
export function sessionRoutes({ service, consoleAuth, openapi }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'this description (OpenAPI 3.1)',
      tag: 'meta',
      auth: 'none',
      query: noQuery,
      answers: { 200: { description: 'the OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
      async handle({ res }) {
        res.json(openapi());
      },
    }),
    route({
      method: 'get',
      path: '/session/options',
      operationId: 'getSignInOptions',
      summary: 'how the console can sign in here',
      tag: 'session',
      auth: 'none',
      query: noQuery,
      answers: { 200: { description: 'sign-in methods', schema: sessionOptionsSchema } },
      async handle({ res }) {
        res.json({ token: true, oidc: consoleAuth.oidcEnabled });
      },
    }),
    route({
      method: 'post',
      path: '/session',
      operationId: 'signIn',
      summary: 'open a console session with an admin API token or a one-time code; sets the session cookie',
      tag: 'session',
      auth: 'none',
      body: signInBody,
      answers: { 201: { description: 'signed in', schema: sessionSchema } },
      async handle({ res, body, source }) {
        res.status(201).json(await consoleAuth.signIn(res, body, source));
      },
    }),
    route({
      method: 'get',
      path: '/session/oidc',
      operationId: 'startOidcSignIn',
      summary: "start a console sign-in with the realm's OpenID Connect provider",
      tag: 'session',
      auth: 'none',
      query: noQuery,
      answers: { 302: { description: 'to the provider', headers: { Location: 'the authorization URL' } } },
      async handle({ res }) {
        res.redirect(302, await consoleAuth.startOidc(res));
      },
    }),
    route({
      method: 'get',
      path: '/session/oidc/callback',
      operationId: 'finishOidcSignIn',
      summary: 'where the provider sends the browser back; opens the session',
      tag: 'session',
      auth: 'none',
      query: oidcCallbackQuery,
      answers: { 303: { description: 'to the console (signed in, or with ?error=<code>)', headers: { Location: '/ or /signin?error=...' } } },
      async handle({ req, res, source }) {
        try {
          await consoleAuth.finishOidc(req, res, source);
          res.redirect(303, '/');
        } catch (e) {
          const code = (e as { code?: unknown }).code;
          res.redirect(303, `/signin?error=${encodeURIComponent(typeof code === 'string' ? code : 'oidc_sign_in_failed')}`);
        }
      },
    }),
    route({
      method: 'get',
      path: '/session',
      operationId: 'getSession',
      summary: "the console session: who, which factory and scopes, and its CSRF token",
      tag: 'session',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the session', schema: sessionSchema } },
      async handle({ res, principal }) {
        res.json(await consoleAuth.view(res, principal));
      },
    }),
    route({
      method: 'delete',
      path: '/session',
      operationId: 'signOut',
      summary: 'end the console session',
      tag: 'session',
      auth: 'required',
      answers: { 204: { description: 'signed out' } },
      async handle({ res, principal }) {
        await consoleAuth.signOut(res, principal);
        res.status(204).end();
      },
    }),
    route({
      method: 'get',
      path: '/whoami',
      operationId: 'whoami',
      summary: 'who the credentials stand for',
      tag: 'session',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the caller', schema: whoamiSchema } },
      async handle({ res, principal }) {
        res.json(await service.whoami(principal));
      },
    }),
  ];
}
