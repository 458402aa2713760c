-- wrk: GETs of /health, the topic list and the first two feed pages, in turn, over wrk's
-- keep-alive connections (tests/e2e/test_deploy.py: steady_load).
local paths = {
  "/health",
  "/api/v1/topics/",
  "/api/v1/situations/feed?page=1",
  "/api/v1/situations/feed?page=2",
}
local i = 0

request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
