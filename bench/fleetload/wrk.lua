-- wrk script of bench/fleetload: each thread sends its own pool of complete, pre-signed
-- requests (pool.py writes them) in order, and stops when the pool runs out (the run is then
-- marked exhausted: its rate would be wrong). done() prints one JSON line for the generator.
-- Usage: wrk -t T -c C -d Ds -s wrk.lua URL -- POOL_DIR HARMLESS_GET_PATH

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
local fallback = nil

function init(args)
  local id = wrk.thread:get("id")
  local f = assert(io.open(args[1] .. "/pool-" .. id .. ".bin", "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  local size = #data
  while pos <= size do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + len + 1
  end
  -- Sent (at most once per connection) after the pool ran dry, instead of a replay.
  fallback = wrk.format("GET", args[2])
  wrk.thread:set("prepared", n)
  wrk.thread:set("exhausted", 0)
end

function request()
  i = i + 1
  if i > n then
    wrk.thread:set("exhausted", 1)
    wrk.thread:stop()
    return fallback
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local prepared, exhausted = 0, 0
  for _, t in ipairs(threads) do
    prepared = prepared + (t:get("prepared") or 0)
    exhausted = exhausted + (t:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,' ..
    '"p99":%d,"max":%d},"prepared":%d,"exhausted_threads":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, prepared, exhausted))
end
