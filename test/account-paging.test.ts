import t from 'tap'
import type { TokenPaging } from '../dev/epcc-sim/index.js'
import { api, signedIn, switchAccount } from './support/flows.js'
import { startStack } from './support/stack.js'

interface AccountsPage {
  data: Array<{ id: string; name: string }>
  meta: { page: { offset: number; limit: number }; results: { total: number } }
}

const ACCOUNTS = 230

// Whether EPCC's token list honours page[limit]/page[offset] is not documented: every account must stay
// reachable exactly once whichever it does.
for (const paging of ['honoured', 'fixed-pages', 'everything'] as TokenPaging[]) {
  t.test(
    `token lists with paging ${paging}: every account is listed once and can be switched to`,
    async (t) => {
      const stack = await startStack(t, { sim: { tokenPaging: paging } })
      const { browser, member } = await signedIn(stack, ACCOUNTS)
      const expected = member.accounts.map((a) => a.id)

      for (const limit of [100, 30]) {
        const listed: string[] = []
        for (let offset = 0; offset < ACCOUNTS; offset += limit) {
          const response = await api(
            stack,
            browser,
            `/session/accounts?page[offset]=${offset}&page[limit]=${limit}`,
          )
          t.equal(response.status, 200)
          const page = (await response.json()) as AccountsPage
          t.equal(page.meta.results.total, ACCOUNTS)
          t.equal(page.data.length, Math.min(limit, ACCOUNTS - offset), `limit ${limit}, offset ${offset}`)
          listed.push(...page.data.map((a) => a.id))
        }
        t.same(listed, expected, `limit ${limit}: every account once, in EPCC's order`)
      }

      for (const account of [member.accounts[120], member.accounts[ACCOUNTS - 1], member.accounts[0]]) {
        const switched = await switchAccount(stack, browser, account?.id)
        t.equal(switched.status, 200)
        t.equal(((await switched.json()) as { activeAccount: { id: string } }).activeAccount.id, account?.id)
        const read = await api(stack, browser, `/api/epcc/v2/accounts/${account?.id}`)
        t.equal(read.status, 200, "the proxy reads the account with that account's token")
      }
    },
  )
}
