import t from 'tap'
import { StoreOutage } from '../src/session/outage.js'

function outage() {
  let now = 0
  const lines: string[] = []
  const tracker = new StoreOutage(
    {
      started: (reason) => lines.push(`started: ${reason}`),
      ended: ({ refusedRequests, durationMs }) => lines.push(`ended: ${refusedRequests} in ${durationMs} ms`),
    },
    () => now,
  )
  return { tracker, lines, advance: (ms: number) => (now += ms) }
}

t.test(
  'an outage is two lines: the first failure starts it, a success a second after the last ends it',
  async (t) => {
    const { tracker, lines, advance } = outage()
    tracker.recovered()
    t.same(lines, [], 'no outage, nothing to end')
    tracker.failed('connect ECONNREFUSED')
    for (let i = 0; i < 300; i++) {
      advance(10)
      tracker.failed('connect ECONNREFUSED')
      tracker.refusedRequest('Stream isn’t writeable')
    }
    t.same(lines, ['started: connect ECONNREFUSED'], 'one line however many failures and refusals')
    t.ok(tracker.ongoing)
    advance(100)
    tracker.recovered()
    t.same(
      lines.length,
      1,
      'a success right after a failure does not end it (a cluster answers for other slots)',
    )
    advance(1000)
    tracker.recovered()
    t.same(lines, ['started: connect ECONNREFUSED', 'ended: 300 in 4100 ms'])
    t.notOk(tracker.ongoing)
    tracker.recovered()
    t.equal(lines.length, 2, 'ended once')
  },
)

t.test(
  'a refused request with no failure seen yet starts the outage itself; the next one counts anew',
  async (t) => {
    const { tracker, lines, advance } = outage()
    tracker.refusedRequest('Command timed out')
    advance(2000)
    tracker.recovered()
    tracker.failed('connect ECONNREFUSED')
    advance(1500)
    tracker.recovered()
    t.same(lines, [
      'started: Command timed out',
      'ended: 1 in 2000 ms',
      'started: connect ECONNREFUSED',
      'ended: 0 in 1500 ms',
    ])
  },
)
