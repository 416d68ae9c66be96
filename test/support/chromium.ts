/** Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it), driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium'
// This network is closed: without these flags Chromium's background connections fail noisily.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]
