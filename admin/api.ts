import { auditRoutes } from './routes/audit.js';
import { caRoutes } from './routes/cas.js';
import { deviceRoutes } from './routes/devices.js';
import { factoryRoutes } from './routes/factories.js';
import { operatorRoutes } from './routes/operator.js';
import type { ApiOptions, Route } from './routes/route.js';
import { sessionRoutes } from './routes/session.js';
import { tokenRoutes } from './routes/tokens.js';

export { errorSchema, type Answer, type ApiOptions, type Call, type Method, type Route } from './routes/route.js';

/**
 * The admin API as one table, assembled from one module per resource under routes/: each route's
 * method, path, request schemas, answers and handler. The HTTP app mounts it and the OpenAPI
 * document is generated from it.
 */
export function adminRoutes(options: ApiOptions): Route[] {
  return [
    ...sessionRoutes(options),
    ...factoryRoutes(options),
    ...caRoutes(options),
    ...deviceRoutes(options),
    ...tokenRoutes(options),
    ...auditRoutes(options),
    ...operatorRoutes(options),
  ];
}
