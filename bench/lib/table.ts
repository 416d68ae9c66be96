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
  /** CPU µs/req over the bare limit's, e.g. "**1.95×** (1.80×–2.10×)"; empty on baseline rows. */
  ratio?: string
  /** CPU µs/req over the afternoon anchor's, e.g. "0.85× (0.80×–0.90×)"; empty on baseline rows. */
  afternoon?: string
  target?: string
  met?: boolean
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

/**
 * The load table: CPU per request and its ratios first (the headline), then throughput and latency. Baseline
 * rows (↳ …) show their own numbers with the ratio cells empty. `ratioHeader` names the ratio column.
 */
export function loadTable(rows: Row[], ratioHeader = '× bare (per-cycle range)'): string {
  return markdownTable(
    [
      'scenario',
      'CPU µs/req',
      ratioHeader,
      '× afternoon',
      'target',
      '',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
    ],
    rows.map((r) => [
      r.scenario,
      fmt.int(r.summary.cpuUsPerRequest),
      r.ratio ?? '',
      r.afternoon ?? '',
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'met' : '**missed**',
      fmt.int(r.summary.rps),
      fmt.ms(r.summary.p50),
      fmt.ms(r.summary.p99),
      fmt.int(r.summary.errors),
    ]),
  )
}
