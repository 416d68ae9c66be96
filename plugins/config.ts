import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** The typed configuration, decorated once; plugins read their options from it, never from process.env. */
export default fp(
  async (app, opts: { config: Config }) => {
    app.decorate('config', opts.config)
  },
  { name: 'config' },
)
