-- wrk script for bench/run.sh's DPoP row: post.lua's POST with HTTP Basic client auth, each
-- request with the next DPoP proof (RFC 9449) of BENCH_DPOP_FILE, from line BENCH_DPOP_OFFSET
-- on (every proof is accepted once; run.sh moves the offset on after each run).

dofile(os.getenv("BENCH_DIR") .. "/post.lua")

local proofs = {}
for line in io.lines(os.getenv("BENCH_DPOP_FILE") or error("BENCH_DPOP_FILE is not set")) do
  proofs[#proofs + 1] = line
end
local next_proof = tonumber(os.getenv("BENCH_DPOP_OFFSET") or "0") + 1

function request()
  local proof = proofs[next_proof]
  if proof == nil then
    error("out of DPoP proofs: raise BENCH_DPOP_PROOFS")
  end
  next_proof = next_proof + 1
  wrk.headers["DPoP"] = proof
  return wrk.format()
end
