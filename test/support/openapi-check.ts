import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import request from 'supertest';

/**
 * Every admin API answer a suite saw, checked against the served OpenAPI document by
 * express-openapi-validator: the answers are replayed through an express app that the validator
 * guards (responses validated, the document itself validated too), so an answer the document does
 * not describe, or describes otherwise, is reported with the validator's own words.
 */

export interface RecordedAnswer {
  method: string;
  /** Path and query, as requested (beginning /v1/). */
  url: string;
  status: number;
  contentType: string;
  body: string;
}

export class AnswerRecorder {
  readonly answers: RecordedAnswer[] = [];

  add(answer: RecordedAnswer): void {
    if (answer.url.startsWith('/v1/')) this.answers.push(answer);
  }

  /** Wraps an express app so that every /v1 answer it gives is recorded. */
  wrap(app: Express): Express {
    const outer = express();
    const record: RequestHandler = (req, res, next) => {
      const chunks: Buffer[] = [];
      const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
      const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => typeof res;
      const keep = (chunk: unknown) => {
        if (typeof chunk === 'string') chunks.push(Buffer.from(chunk));
        else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
      };
      res.write = ((chunk: unknown, ...rest: unknown[]) => (keep(chunk), write(chunk, ...rest))) as typeof res.write;
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        keep(chunk);
        return end(chunk, ...rest);
      }) as typeof res.end;
      res.on('finish', () =>
        this.add({ method: req.method, url: req.originalUrl, status: res.statusCode, contentType: String(res.get('content-type') ?? ''), body: Buffer.concat(chunks).toString('utf8') }),
      );
      next();
    };
    outer.use(record, app);
    return outer;
  }
}

/** The validator's complaints about the recorded answers, one line each (none: all conform). */
export async function nonConforming(document: object, answers: readonly RecordedAnswer[]): Promise<string[]> {
  const replay = express();
  replay.use(
    OpenApiValidator.middleware({
      apiSpec: structuredClone(document) as never,
      validateApiSpec: true,
      validateRequests: false,
      // Credentials were checked by the server that gave the answer; the replay has none.
      validateSecurity: false,
      validateResponses: true,
      ignoreUndocumented: false,
    }),
  );
  replay.use((req, res) => {
    const answer = answers[Number(req.get('x-replay'))]!;
    res.status(answer.status);
    if (answer.contentType) res.type(answer.contentType.split(';')[0]!);
    if (answer.contentType.startsWith('application/json') && answer.body) res.json(JSON.parse(answer.body));
    else res.send(answer.body);
  });
  const complaints: string[] = [];
  const onError: ErrorRequestHandler = (err: { status?: number; message?: string }, req, res, _next) => {
    complaints.push(`${req.method} ${req.originalUrl} -> ${answers[Number(req.get('x-replay'))]?.status}: ${err.message ?? String(err)}`);
    res.status(599).end();
  };
  replay.use(onError);
  for (const [i, a] of answers.entries()) {
    const method = a.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete';
    await request(replay)[method](a.url).set('x-replay', String(i)).redirects(0);
  }
  return complaints;
}
