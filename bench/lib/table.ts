import type { Summary } from './load.js'

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const two = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })

export const fmt = {
  int: (n: number) => int.format(n),
  ms: (n: number) => (n < 10 ? two.format(n) : int.format(n)),
  ratio: (n: number) => `${two.format(n)}×`,
  bytes: (n: number) => (n >= 10_240 ? `${two.format(n / 1024)} KiB` : `${int.format(n)} B`),
}

export interface Row {
  scenario: string
  summary: Summary
  /** e.g. "**0.72×** (0.68–0.75)"; empty on baseline rows. */
  ratio?: string
  target?: string
  met?: boolean
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

export function loadTable(rows: Row[]): string {
  return markdownTable(
    [
      'scenario',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'CPU µs/req',
      'ratio (per-cycle range)',
      'target',
      '',
    ],
    rows.map((r) => [
      r.scenario,
      fmt.int(r.summary.rps),
      fmt.ms(r.summary.p50),
      fmt.ms(r.summary.p99),
      fmt.int(r.summary.errors),
      fmt.int(r.summary.cpuUsPerRequest),
      r.ratio ?? '',
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'met' : '**missed**',
    ]),
  )
}
