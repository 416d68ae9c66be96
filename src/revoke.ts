import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ConfigError, loadConfig } from './config.js'
import { EpccClient } from './epcc/client.js'
import { loggerOptions } from './logger.js'
import { LoginTransactions } from './login.js'
import { MemberSessions } from './member-sessions.js'
import { sessionRevoker } from './revocation.js'
import { MemberSessionIndex } from './session/member-index.js'
import { SessionRecords } from './session/records.js'
import { RedisKeyValueStore } from './session/redis.js'
import { deriveSealingKeys, SealedKeyValueStore } from './session/sealed.js'

const MEMBER_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/**
 * `npm run revoke -- --member <memberId>`: ends every session of a member in a Redis deployment, from the
 * same environment the server runs with, for operators who do not expose the administration routes. Prints
 * `{"revoked":N}`; exit code 2 for bad usage or configuration, 1 when Redis does not answer.
 */
async function main(): Promise<number> {
  let member: string | undefined
  try {
    member = parseArgs({ options: { member: { type: 'string' } } }).values.member
  } catch {}
  if (!member || !MEMBER_ID.test(member)) {
    process.stderr.write('usage: npm run revoke -- --member <memberId>   (an EPCC account member id)\n')
    return 2
  }
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const problem of err.problems) process.stderr.write(`config: ${problem}\n`)
    return 2
  }
  if (!config.redis) {
    process.stderr.write(
      'config: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES: one is required (sessions in process memory end with the process)\n',
    )
    return 2
  }
  // The audit line goes to stderr: stdout carries the result only.
  const log = pino(loggerOptions(config.logLevel), pino.destination(2))
  const redis = new RedisKeyValueStore(config.redis)
  const kv = new SealedKeyValueStore(redis, deriveSealingKeys(config.session.secrets))
  try {
    const policy = {
      idleMs: config.session.idleTimeoutS * 1000,
      absoluteMs: config.session.absoluteTimeoutS * 1000,
    }
    // Ending a session needs no EPCC call: the client is only the type the session model is built with.
    const sessions = new MemberSessions(new EpccClient({ ...config.epcc }), kv, policy)
    const index = new MemberSessionIndex(kv, new SessionRecords(kv, policy), policy)
    const revoked = await sessionRevoker(
      index,
      sessions,
      new LoginTransactions(kv, config.pendingLoginLimit),
    ).all(member)
    log.info({ memberId: member, revoked, by: 'operator' }, 'sessions revoked')
    process.stdout.write(`${JSON.stringify({ revoked })}\n`)
    return 0
  } catch (err) {
    process.stderr.write(`revoke: ${(err as Error).message}\n`)
    return 1
  } finally {
    await kv.close()
  }
}

process.exitCode = await main()
