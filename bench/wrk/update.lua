-- wrk script for bench/http.sh: okerrupdate's exact form, POST /update, one indicator
-- among bench:0 .. bench:{N-1} per request.
--
--   wrk -t2 -c32 -d10s --latency -s bench/wrk/update.lua http://127.0.0.1:PORT/update \
--       -- MODE N TEXTID THREADS [ERRFILE]
--
-- MODE confirm: status OK to a random indicator (all are OK): one "confirmed" log line.
-- MODE flip: every update gives its indicator the opposite status of its last one. Thread
--   t owns the names i with i % THREADS == t and walks them in a random order, always the
--   same, so that a name comes back only after all the thread's other names: no two
--   requests for one name are in flight at once (as long as the thread owns more names
--   than it has connections). ERRFILE lists the names that are ERR now, one index a
--   line; the others are OK.
-- Details are unique per request (thread and counter), so that every update is visible.
--
-- done() prints one line: "BENCH sent=S acked=A bad=B", A the answers 200 "OK", B every
-- other answer (sent counts requests handed to wrk, answered or not).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function shuffle(t)
  for i = #t, 2, -1 do
    local j = math.random(i)
    t[i], t[j] = t[j], t[i]
  end
end

function init(args)
  mode = args[1]
  n = tonumber(args[2])
  textid = args[3]
  nthreads = tonumber(args[4])
  local errfile = args[5]
  sent, acked, bad = 0, 0, 0
  -- wrk calls request() once on the first thread before the run, to check it; that
  -- request is never sent, so it must not change the state.
  probe = (id == 0)
  prefix = "textid=" .. textid .. "&name=bench%3A"
  suffix = "&secret=&method=heartbeat&policy=Default&tags=&keypath=&origkeypath=&desc="
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  math.randomseed(os.time() * 1000 + id * 7919)
  if mode == "flip" then
    owned = {}
    for i = id, n - 1, nthreads do
      owned[#owned + 1] = i
    end
    shuffle(owned)
    pos = 0
    err = {}
    if errfile and errfile ~= "" then
      local f = io.open(errfile, "r")
      if f then
        for line in f:lines() do
          local i = tonumber(line)
          if i then err[i] = true end
        end
        f:close()
      end
    end
  elseif mode ~= "confirm" then
    error("mode must be confirm or flip, not " .. tostring(mode))
  end
end

local function form(i, status)
  return prefix .. i .. "&status=" .. status .. "&details=w" .. id .. "-" .. sent .. suffix
end

function request()
  if probe then
    probe = false
    return wrk.format("POST", nil, headers, form(0, "OK"))
  end
  sent = sent + 1
  local i, status
  if mode == "flip" then
    pos = pos % #owned + 1
    i = owned[pos]
    if err[i] then
      status = "OK"
      err[i] = nil
    else
      status = "ERR"
      err[i] = true
    end
  else
    i = math.random(0, n - 1)
    status = "OK"
  end
  return wrk.format("POST", nil, headers, form(i, status))
end

function response(status, headers, body)
  if status == 200 and body == "OK" then
    acked = acked + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local s, a, b = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("acked")
    b = b + t:get("bad")
  end
  io.write(string.format("BENCH sent=%d acked=%d bad=%d\n", s, a, b))
end
