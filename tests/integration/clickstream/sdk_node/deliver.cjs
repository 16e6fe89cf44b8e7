// Sends calls through Segment's Node.js library to an Event API and prints one JSON
// line: the HTTP requests the library made, the statuses it got (with each answer's
// Retry-After and each request's X-Retry-Count), the delivery errors it reported, and
// how long it took to settle.
//
// usage: node deliver.cjs HOST WRITE_KEY [single|batch|invalid]
//   (NODE_PATH: the installed node_modules)
// single:  one call of each type, one request each
// batch:   the same six calls in one batch
// invalid: a track whose event name is blank (the Event API refuses it as invalid,
//          400) and a valid one, in one batch
// With DELIVER_ON_SIGNAL=1 it prints {"ready":true} once the library is loaded and
// makes its calls only when a line arrives on stdin, so that the caller can prepare
// the server (e.g. use up a rate limit) just before the first request.
'use strict'

const readline = require('node:readline')
const { Analytics } = require('@segment/analytics-node')

function waitForSignal() {
  process.stdout.write(JSON.stringify({ ready: true }) + '\n')
  return new Promise((resolve) => {
    const lines = readline.createInterface({ input: process.stdin })
    lines.once('line', () => { lines.close(); resolve() })
  })
}

async function main() {
  const [host, writeKey, mode = 'single'] = process.argv.slice(2)
  const analytics = new Analytics({
    writeKey,
    host,
    // One event per request, or all calls in one batch.
    flushAt: { batch: 6, invalid: 2 }[mode] || 1,
    flushInterval: 100,
    httpRequestTimeout: 10000,
  })
  const statuses = []
  const attempts = []
  const errors = []
  let requests = 0
  analytics.on('http_request', (request) => {
    requests += 1
    attempts.push({ retryCount: request.headers['X-Retry-Count'] || null, at: Date.now() })
  })
  analytics.on('http_response', (response) => {
    statuses.push(response.status)
    const attempt = attempts[statuses.length - 1]
    if (attempt) {
      attempt.status = response.status
      attempt.retryAfter = response.headers['retry-after'] || null
    }
  })
  analytics.on('error', (error) => errors.push({
    code: error.code,
    reason: String((error.reason && error.reason.message) || error.reason),
  }))

  if (process.env.DELIVER_ON_SIGNAL === '1') await waitForSignal()
  const started = Date.now()
  const userId = `node-user-${mode}`
  if (mode === 'invalid') {
    analytics.track({ userId, event: '  ', properties: { blank: true } })
    analytics.track({ userId, event: 'Signed Up' })
  } else {
    analytics.identify({ userId, traits: { email: 'node@example.com', plan: 'pro' } })
    analytics.track({ userId, event: 'Signed Up', properties: { plan: 'pro', seats: 3 } })
    analytics.page({ userId, category: 'Docs', name: 'Install', properties: { path: '/install' } })
    analytics.screen({ userId, name: 'Home' })
    analytics.group({ userId, groupId: 'org-1', traits: { name: 'Org' } })
    analytics.alias({ userId, previousId: 'anon-node' })
  }

  await analytics.closeAndFlush({ timeout: 120000 })
  for (const attempt of attempts) attempt.at = (attempt.at - started) / 1000
  process.stdout.write(JSON.stringify({
    requests, statuses, attempts, errors, seconds: (Date.now() - started) / 1000,
  }) + '\n')
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`)
  process.exit(1)
})
