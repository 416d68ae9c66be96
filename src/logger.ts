import { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import { type DestinationStream, type LoggerOptions, pino } from 'pino'

interface LoggedRequest {
  id?: unknown
  method?: string
  url?: string
  routeOptions?: { url?: string }
  ip?: string
}

/**
 * pino options for the server. What a log line may hold is decided by allow-lists, not by redaction: the
 * request is its id, method, path (never the query: the callback's carries `code` and `state`, security.md
 * §2.7) and client address, never its headers; the response its status; an error its type, message and
 * stack, never its enumerable properties or `cause` chain, where a library may put request data
 * (oauth4webapi puts the callback parameters there). Every other field the BFF logs is a named scalar (an
 * id, a reason, a count); secrets are never put in a field or interpolated into a message.
 *
 * No `redact` paths: with nothing that could match them left to log, they only cost. Wildcard paths
 * (`*.token`) walked every key of every line, at two thirds of the CPU of the per-request log line
 * (BENCHMARKS.md). The tests grep every captured log line for the secrets they handled.
 */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    serializers: {
      req(req: LoggedRequest) {
        return { id: req.id, method: req.method, path: req.url?.split('?', 1)[0], ip: req.ip }
      },
      res(res: { statusCode?: number }) {
        return { statusCode: res.statusCode }
      },
      err(err: unknown) {
        if (typeof err === 'string') return err // already reduced to a name or message by the caller
        if (!(err instanceof Error)) return { type: typeof err }
        return { type: err.name, message: err.message, stack: err.stack }
      },
    },
  }
}

/**
 * Fastify's per-request log lines, one per request instead of two: `request completed` at `info` as the
 * answer goes (with the request, its status and the time taken; `request errored` at `error` when the
 * response failed), and `incoming request` at `debug` only. The arrival line told nothing the completion
 * line does not, at a third of the CPU of a `GET /session` (BENCHMARKS.md).
 */
export class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime }
    if (error) reply.log.error({ ...line, err: error }, 'request errored')
    else reply.log.info(line, 'request completed')
  }
}

/**
 * Standard output, written asynchronously: lines logged while a write is under way go out together in the next
 * one (one system call for many lines under load; at rest each line goes at once), and what is left is written
 * synchronously as the process exits. Only a process killed outright (SIGKILL) can lose its last lines.
 * @see https://getpino.io/#/docs/asynchronous
 */
export function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false })
}
