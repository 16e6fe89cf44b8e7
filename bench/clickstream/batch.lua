-- BENCH_BATCH track events per request, for as many users.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_AUTH")
local size = tonumber(os.getenv("BENCH_BATCH"))
local events = {}
for i = 1, size do
  events[i] = string.format(
    '{"type":"track","userId":"user-%d","event":"Bench","properties":{"n":%d,"plan":"pro",' ..
    '"price":9.99},"context":{"library":{"name":"wrk"}}}', i, i)
end
wrk.body = '{"batch":[' .. table.concat(events, ",") .. ']}'
wrk.path = "/v1/batch"
