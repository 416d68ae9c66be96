import fp from 'fastify-plugin'
import { EpccClient } from '../src/epcc/client.js'
import { Realm } from '../src/realm.js'

declare module 'fastify' {
  interface FastifyInstance {
    epcc: EpccClient
    realm: Realm
  }
}

/**
 * The EPCC client and the realm (settings + OIDC profiles), loaded in the background at start so that the
 * server listens even while EPCC is down; `/readyz` reports whether it was reached.
 * @see ../src/epcc/client.ts
 */
export default fp(
  async (app) => {
    const { epcc: cfg } = app.config
    const epcc = new EpccClient({
      baseUrl: cfg.baseUrl,
      clientId: cfg.clientId,
      clientSecret: cfg.clientSecret,
      timeoutMs: cfg.timeoutMs,
      observe: (operation, status, seconds) => app.metrics.epccCalls.observe({ operation, status }, seconds),
    })
    const realm = new Realm(epcc, { realmId: cfg.realmId, clientId: cfg.accountClientId })
    app.decorate('epcc', epcc)
    app.metrics.watchCircuit(() => epcc.circuitOpen)
    app.decorate('realm', realm)
    app.addHook('onReady', async () => {
      realm.refresh().catch((err: Error) => app.log.warn({ err: err.message }, 'EPCC realm not loaded yet'))
    })
  },
  { name: 'epcc', dependencies: ['config', 'metrics'] },
)
