import type { Request, Response } from 'express';
import { z } from 'zod';
import type { ConsoleAuth } from '../console-auth.js';
import type { AdminService, Principal } from '../service.js';

/**
 * What an entry of the admin API's route table (admin/api.ts) is: a method, a path, request
 * schemas, answers and a handler. The HTTP app mounts the table (validating every request against
 * its schemas) and the OpenAPI document is generated from it, so the description cannot drift
 * from what is served.
 */

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface Answer {
  description: string;
  /** JSON body; absent: none (204) or what `content` names. */
  schema?: z.ZodType;
  /** Other media types (downloads). */
  content?: Record<string, z.ZodType>;
  /** A redirect's target, for the description. */
  headers?: Record<string, string>;
}

export interface Call<Q, B> {
  req: Request;
  res: Response;
  principal: Principal;
  query: Q;
  body: B;
  source: string | null;
}

export interface Route<Q = unknown, B = unknown> {
  method: Method;
  /** Express syntax: /factories/:factory/devices */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** `none`: no credentials (sign-in, the description); else a bearer token or a console session. */
  auth: 'none' | 'required';
  /** Scopes that allow the call (any of them), for the description; AdminService enforces them. */
  scopes?: readonly string[];
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Request bodies larger than this are refused with 413 (default MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Success answers by status. Every route may also answer the error shape with 4xx. */
  answers: Record<number, Answer>;
  handle(call: Call<Q, B>): Promise<void>;
}

/** A typed route as an entry of the table. */
export function route<Q, B>(r: Route<Q, B>): Route {
  return r as unknown as Route;
}

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) })
  .meta({ title: 'Error' });

export interface ApiOptions {
  service: AdminService;
  consoleAuth: ConsoleAuth;
  enrollment: { gatewayCa: string; gateway: string };
  /** The served OpenAPI document (built from this table). */
  openapi: () => unknown;
}

/** Scopes that read a factory's devices, CAs and audit trail, and that change them. */
export const READ = ['devices:read', 'devices:write'] as const;
export const WRITE = ['devices:write'] as const;

export const factoryParam = (req: Request) => req.params.factory;
