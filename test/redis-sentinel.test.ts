import t from 'tap'
import { haSuite } from './support/redis-ha-suite.js'
import { startSentinelTopology } from './support/redis-topologies.js'

// A master, a replica and three Sentinels of this test's own, from the machine's redis-server; never skipped.
const ha = await startSentinelTopology()
t.teardown(() => ha.close())
haSuite(t, ha)
