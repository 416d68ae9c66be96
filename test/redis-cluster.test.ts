import t from 'tap'
import { haSuite } from './support/redis-ha-suite.js'
import { startClusterTopology } from './support/redis-topologies.js'

// Three masters with a replica each, of this test's own, from the machine's redis-server; never skipped.
const ha = await startClusterTopology()
t.teardown(() => ha.close())
haSuite(t, ha)
