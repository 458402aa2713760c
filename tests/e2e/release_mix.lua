-- wrk: what a feed's users send, over wrk's keep-alive connections (tests/e2e/release_load.py).
-- Nine requests in ten are reads: /health, the topic list and feed pages 1-3 as one of the
-- seeded users; the tenth is a write of that user on a random seeded situation, reactions
-- and comments in turn. Users' tokens and situation ids come from the environment.
local function split(text)
  local out = {}
  for part in string.gmatch(text or "", "[^,]+") do
    out[#out + 1] = part
  end
  return out
end

local tokens = split(os.getenv("EQ_LOAD_TOKENS"))
local situations = split(os.getenv("EQ_LOAD_SITUATIONS"))
assert(#tokens > 0 and #situations > 0, "EQ_LOAD_TOKENS and EQ_LOAD_SITUATIONS must be set")
local reads = { "/health", "/api/v1/topics/", "/api/v1/situations/feed?page=1",
  "/api/v1/situations/feed?page=2", "/api/v1/situations/feed?page=3" }
local json = { ["Content-Type"] = "application/json" }
local i = 0

function setup(thread)
  thread:set("offset", math.random(1000))
end

request = function()
  i = i + 1
  local n = i + (offset or 0)
  local auth = { Authorization = "Bearer " .. tokens[(n % #tokens) + 1] }
  if n % 10 ~= 0 then
    return wrk.format("GET", reads[(n % #reads) + 1], auth)
  end
  local situation = situations[math.random(#situations)]
  for k, v in pairs(json) do auth[k] = v end
  if n % 20 == 0 then
    local kind = (n % 40 == 0) and "upvote" or "downvote"
    return wrk.format("POST", "/api/v1/situations/" .. situation .. "/reactions", auth,
      '{"reaction_type":"' .. kind .. '"}')
  end
  return wrk.format("POST", "/api/v1/situations/" .. situation .. "/comments", auth,
    '{"content":"under load ' .. n .. '"}')
end
