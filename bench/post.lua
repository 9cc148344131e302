-- wrk script for bench/run.sh: POST a fixed form body with HTTP Basic client auth.
--
--   BENCH_BODY=... BENCH_AUTH='Basic ...' [BENCH_EXPECT=lua-pattern] \
--     wrk -t1 -c32 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/token
--
-- Every response whose status is not 200 is counted (and, if BENCH_EXPECT is set,
-- every 200 response whose body does not match that Lua pattern). done()
-- prints the counts plus one machine-readable BENCH_RESULT line that run.sh parses
-- (latencies in microseconds, as wrk records them).

local body = os.getenv("BENCH_BODY") or error("BENCH_BODY is not set")
local auth = os.getenv("BENCH_AUTH") or error("BENCH_AUTH is not set")
local expect = os.getenv("BENCH_EXPECT")
if expect == "" then expect = nil end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = auth
wrk.headers["Accept"] = "application/json"

-- per-thread state (each wrk thread has its own Lua state)
non200 = 0
badbody = 0
sample = ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, resp_body)
  if status ~= 200 then
    non200 = non200 + 1
    if sample == "" then
      sample = "status " .. status .. ": " .. string.sub(resp_body or "", 1, 300)
    end
  elseif expect and not string.find(resp_body or "", expect) then
    badbody = badbody + 1
    if sample == "" then
      sample = "unexpected body: " .. string.sub(resp_body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local n, b, s = 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + (t:get("non200") or 0)
    b = b + (t:get("badbody") or 0)
    local ts = t:get("sample") or ""
    if s == "" and ts ~= "" then s = ts end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("Responses with status != 200: %d\n", n))
  if expect then
    io.write(string.format("200 responses without expected body: %d\n", b))
  end
  if s ~= "" then
    io.write("First bad response: " .. s .. "\n")
  end
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
      .. "non200=%d badbody=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    n, b, e.connect, e.read, e.write, e.timeout))
end
