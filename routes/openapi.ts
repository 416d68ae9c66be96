import type { FastifyPluginAsync } from 'fastify'

/** `GET /openapi.json`: the OpenAPI 3.1 description of every route. */
const openapi: FastifyPluginAsync = async (app) => {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default openapi
