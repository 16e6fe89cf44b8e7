// Sends one call of each type through Segment's Node.js library to an Event API and
// prints one JSON line: the HTTP requests the library made, the statuses it got, the
// delivery errors it reported, and how long it took to settle.
//
// usage: node deliver.cjs HOST WRITE_KEY [batch]   (NODE_PATH: the installed node_modules)
'use strict'

const { Analytics } = require('@segment/analytics-node')

async function main() {
  const [host, writeKey, mode] = process.argv.slice(2)
  const analytics = new Analytics({
    writeKey,
    host,
    // One event per request, or all six in one batch.
    flushAt: mode === 'batch' ? 6 : 1,
    flushInterval: 100,
    httpRequestTimeout: 10000,
  })
  const statuses = []
  const errors = []
  let requests = 0
  analytics.on('http_request', () => { requests += 1 })
  analytics.on('http_response', (response) => statuses.push(response.status))
  analytics.on('error', (error) => errors.push({
    code: error.code,
    reason: String((error.reason && error.reason.message) || error.reason),
  }))

  const userId = `node-user-${mode || 'single'}`
  analytics.identify({ userId, traits: { email: 'node@example.com', plan: 'pro' } })
  analytics.track({ userId, event: 'Signed Up', properties: { plan: 'pro', seats: 3 } })
  analytics.page({ userId, category: 'Docs', name: 'Install', properties: { path: '/install' } })
  analytics.screen({ userId, name: 'Home' })
  analytics.group({ userId, groupId: 'org-1', traits: { name: 'Org' } })
  analytics.alias({ userId, previousId: 'anon-node' })

  const started = Date.now()
  await analytics.closeAndFlush({ timeout: 120000 })
  process.stdout.write(JSON.stringify({
    requests, statuses, errors, seconds: (Date.now() - started) / 1000,
  }) + '\n')
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`)
  process.exit(1)
})
