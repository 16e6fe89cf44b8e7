-- One track event per request, a different user each time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_AUTH")
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"userId":"user-%d","event":"Bench","properties":{"n":%d,"plan":"pro","price":9.99},' ..
    '"context":{"library":{"name":"wrk"}}}', n % 5000, n)
  return wrk.format(nil, "/v1/track", nil, body)
end
