-- wrk script for figure (c): POST one message to each held connection in turn.
--
--   wrk -t1 -c64 -d10s -s bench/clients/wrk_post_ids.lua http://127.0.0.1:PORT -- IDS_FILE PATH_PREFIX BODY
--
-- IDS_FILE has one connection id per line (Portway's ids, or the raw server's integers);
-- each request is POST PATH_PREFIX..id with BODY, cycling through the ids. The requests are built
-- once in init(), so the per-request cost in wrk is a table lookup.

local requests = {}
local n = 0
local i = 0

function init(args)
  local prefix = args[2]
  local body = args[3]
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", prefix .. line, headers, body)
    end
  end
  if n == 0 then
    error("no connection ids in " .. args[1])
  end
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return requests[i]
end
