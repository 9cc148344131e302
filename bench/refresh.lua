-- wrk script for bench/scale.py: refresh-token grants, each connection's next request using the
-- refresh token the previous answer rotated to (RFC 6749 §6; Tessera rotates on every use).
--
--   BENCH_TOKENS=file-of-refresh-tokens BENCH_AUTH='Basic ...' \
--     wrk -t1 -c32 -d10s --latency -s bench/refresh.lua http://127.0.0.1:PORT/token
--
-- The tokens form a queue: a request takes one, its 200 answer puts the new one back. A token
-- is never sent twice, so no answer comes from the rotation grace window. done() prints a
-- BENCH_RESULT line like post.lua's, and writes the tokens left to BENCH_TOKENS_OUT if set.

local path = os.getenv("BENCH_TOKENS") or error("BENCH_TOKENS is not set")
local auth = os.getenv("BENCH_AUTH") or error("BENCH_AUTH is not set")

queue = {}
head, tail = 1, 0
non200 = 0
starved = 0
sample = ""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(path) do
    if line ~= "" then
      tail = tail + 1
      queue[tail] = line
    end
  end
end

function request()
  if head > tail then
    starved = starved + 1
    return wrk.format("GET", "/healthz")
  end
  local t = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=refresh_token&refresh_token=" .. t)
end

function response(status, headers, body)
  local t = string.match(body or "", '"refresh_token":"([^"]+)"')
  if status == 200 and t then
    tail = tail + 1
    queue[tail] = t
  elseif status ~= 200 then
    non200 = non200 + 1
    if sample == "" then
      sample = "status " .. status .. ": " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local n, s, st = 0, "", 0
  for _, t in ipairs(threads) do
    n = n + (t:get("non200") or 0)
    st = st + (t:get("starved") or 0)
    local ts = t:get("sample") or ""
    if s == "" and ts ~= "" then s = ts end
  end
  local out = os.getenv("BENCH_TOKENS_OUT")
  if out and out ~= "" then
    local f = io.open(out, "w")
    for _, t in ipairs(threads) do
      local q, h, tl = t:get("queue"), t:get("head"), t:get("tail")
      for i = h, tl do
        f:write(q[i], "\n")
      end
    end
    f:close()
  end
  if s ~= "" then
    io.write("First bad response: " .. s .. "\n")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
      .. "non200=%d starved=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    n, st, e.connect, e.read, e.write, e.timeout))
end
