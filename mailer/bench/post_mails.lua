-- wrk script: POST /mails with a new request id each time, so that none is a duplicate.
-- The id is a version-4 UUID built from the thread's number, the start time and a counter,
-- so that two threads (each with its own Lua state) never give the same one.
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  token = args[1]
  started = os.time() % 0xFFFFFFFF
end

function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4%03x-8%03x-%012x",
    started, thread_id % 0x10000, math.floor(counter / 0x1000000000000) % 0x1000, 0, counter)
  local body = string.format(
    '{"id":"%s","template":"welcome","locale":"en","to":{"email":"ada@example.com","name":"Ada Lovelace"},"vars":{"login":"ada"},"requested_at":"%s"}',
    id, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("POST", "/mails", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

-- Counts answers other than 202, which the bench reports.
local others = 0
function response(status)
  if status ~= 202 then others = others + 1 end
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("wrk_errors: %d (non-2xx answers and socket errors)\n", errors))
end
