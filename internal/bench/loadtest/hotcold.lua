-- wrk script of run_cache.sh: each request presents one of the tokens of a
-- secrets file written by loadtest -secrets ("account secret" lines, the hot
-- tokens first), a hot one with probability SHARE (0.9 unless given) and a
-- cold one otherwise, each chosen uniformly at random.
--
--   wrk -s hotcold.lua http://127.0.0.1:18090/ -- SECRETS_FILE HOT [SHARE]
--
-- The requests are formatted once, in init, so that wrk spends its CPU on
-- sending them, not on building them.

local requests = {}
local hot, share = 0, 0.9
local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_id", threads)
end

function init(args)
   local path = args[1]
   hot = tonumber(args[2])
   share = tonumber(args[3] or "0.9")
   assert(path and hot and hot >= 1, "usage: -- SECRETS_FILE HOT [SHARE]")
   for line in io.lines(path) do
      local account, secret = line:match("^(%S+) (%S+)$")
      assert(account, "malformed line in " .. path)
      -- wrk.headers holds Host; a table given to wrk.format replaces it.
      local headers = {}
      for k, v in pairs(wrk.headers) do headers[k] = v end
      headers["Authorization"] = "Bearer " .. secret
      headers["X-Account-ID"] = account
      requests[#requests + 1] = wrk.format("GET", wrk.path, headers)
   end
   assert(#requests >= hot, "fewer tokens than HOT in " .. path)
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function request()
   local n = #requests
   if hot == n or math.random() < share then
      return requests[math.random(hot)]
   end
   return requests[hot + math.random(n - hot)]
end
