-- wrk script for `make bench-gateway`: POST /v1/completions, JSON or SSE, closed loop or at a
-- constant rate. Settings come from the environment (set by benchmarks/bench_gateway.py):
--   BENCH_MODEL       model name in the body (the stand-in's served name)
--   BENCH_STREAM      "1" for "stream": true (the whole SSE stream counts as one response)
--   BENCH_MAX_TOKENS  completion tokens asked for (default 16)
--   BENCH_AUTH        bearer token (a gateway key, LiteLLM's master key; ignored by the stand-in)
--   BENCH_CLIENT_ID   X-Client-ID header (the gateway checks it against the key)
--   BENCH_RATE        requests/s for the whole run (0 = closed loop, as fast as answers come)
--   BENCH_CLOSE       "1": "Connection: close", so every request opens a new connection (and,
--                     over https, does a full TLS handshake)
-- Constant rate (wrk 4 has no -R; wrk2 is not packaged): delay() hands out send slots on a fixed
-- global schedule of one slot per 1/RATE s, so requests start on time as long as a connection is
-- free. wrk timers are whole milliseconds, so a send may start up to 1 ms early; the schedule is
-- absolute, so the average rate holds. When all connections are busy past their slot the run
-- cannot keep the rate: such slots are counted as "late" and the schedule restarts from now
-- (no catch-up burst), so a high late count means the target did not sustain the rate.
-- done() prints one line "BENCH_RESULT {json}" with counts, errors and latency percentiles (µs).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread has its own Lua state)
local rate = tonumber(env("BENCH_RATE", "0"))
local interval = 0
local next_at = nil
late = 0
scheduled = 0

function init(args)
  local nthreads = tonumber(env("BENCH_THREADS", "1"))
  if rate > 0 then interval = 1000.0 * nthreads / rate end
  local stream = env("BENCH_STREAM", "0") == "1"
  local body = string.format(
    '{"model":"%s","prompt":"the quick brown fox jumps over the lazy dog",'
      .. '"max_tokens":%d,"temperature":0,"stream":%s}',
    env("BENCH_MODEL", "bench-model"),
    tonumber(env("BENCH_MAX_TOKENS", "16")),
    stream and "true" or "false"
  )
  local headers = { ["Content-Type"] = "application/json" }
  local auth = env("BENCH_AUTH", nil)
  if auth then headers["Authorization"] = "Bearer " .. auth end
  local client = env("BENCH_CLIENT_ID", nil)
  if client then headers["X-Client-ID"] = client end
  if env("BENCH_CLOSE", "0") == "1" then headers["Connection"] = "close" end
  req = wrk.format("POST", "/v1/completions", headers, body)
end

function request()
  return req
end

function delay()
  if interval <= 0 then return 0 end
  local t = now_ms()
  if next_at == nil then next_at = t end
  next_at = next_at + interval
  scheduled = scheduled + 1
  if next_at < t - interval then
    late = late + 1
    next_at = t
  end
  local d = next_at - t
  if d <= 0 then return 0 end
  return math.floor(d)
end

function done(summary, latency, requests)
  local late_total, scheduled_total = 0, 0
  for _, thread in ipairs(threads) do
    late_total = late_total + (thread:get("late") or 0)
    scheduled_total = scheduled_total + (thread:get("scheduled") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,'
      .. '"late":%d,"scheduled":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    late_total, scheduled_total,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean
  ))
end
