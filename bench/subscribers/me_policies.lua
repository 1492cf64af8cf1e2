-- wrk script of bench/subscribers: each thread reads "path<TAB>bearer token" lines from the file named
-- by its first argument and sends GETs of random lines, pausing DELAY ms (second argument) after each
-- response, so C connections offer about C * 1000 / (DELAY + latency) requests a second.
local lines = {}
local pause = 0
local thread_no = 0

setup = function(thread)
  thread_no = thread_no + 1
  thread:set("seed", thread_no)
end

init = function(args)
  for line in io.lines(args[1]) do
    local path, token = line:match("^(%S+)\t(%S+)$")
    if path then lines[#lines + 1] = {path, token} end
  end
  pause = tonumber(args[2] or "0")
  math.randomseed(os.time() + (seed or 0) * 7919)
end

request = function()
  local pick = lines[math.random(#lines)]
  return wrk.format("GET", pick[1], {["Authorization"] = "Bearer " .. pick[2]})
end

delay = function()
  return pause
end
