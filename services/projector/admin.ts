import type { App } from '../api/context.ts';
import { startRebuild } from '../api/routes-admin.ts';
import { NoBody, ProjectionParams } from '../api/schemas.ts';
import { adminsOnly, type OpsAuth } from '../shared/ops-admin.ts';
import type { ProjectionRegistry } from '../shared/read-models.ts';

/**
 * The projections' admin routes of the HTTP API, served by the `projector` service on its own
 * port (the API services do not run the projections, so they cannot answer them): the status of
 * each read model as this process runs it (`running`, `retrying`, `failed`, …) and a rebuild,
 * which also brings a failed projector back to following live events. An admin's token from
 * broker-api or query-api (the same TRADECORE_JWT_SECRET) is what they take.
 */
export function projectionAdminRoutes(
  app: App,
  /** No `auth` without TRADECORE_JWT_SECRET: nothing this process could verify, so the routes are refused. */
  options: { projections: ProjectionRegistry; auth: OpsAuth | undefined },
): void {
  const { projections, auth } = options;
  const admins = adminsOnly(auth, {
    reason: 'PROJECTIONS_ADMIN_UNAVAILABLE',
    detail: 'set TRADECORE_JWT_SECRET (the one of broker-api and query-api) to use the admin routes here',
  });

  app.get('/v1/admin/projections', { onRequest: admins }, async () => ({
    projections: await projections.status(),
  }));

  app.post(
    '/v1/admin/projections/:name/rebuild',
    { onRequest: admins, schema: { params: ProjectionParams, body: NoBody } },
    async (request, reply) => {
      return reply.code(202).send(startRebuild(projections, request.params.name, request.log));
    },
  );
}
