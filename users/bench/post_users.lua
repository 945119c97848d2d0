-- wrk script: POST /users with a fresh login and email on every request.
-- Each wrk thread has its own Lua state, so logins carry the thread's number.
local counter = 0
local threads = 0

-- Runs in the main Lua state; `thread_id` becomes a global of each thread's own state.
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function request()
  counter = counter + 1
  local login = string.format("b%d-%d-%d", thread_id, os.time() % 100000, counter)
  local body = string.format(
    '{"login":"%s","email":"%s@bench.example","password":"bench-password-1","first_name":"Bench","last_name":"User"}',
    login, login)
  return wrk.format("POST", "/users", { ["Content-Type"] = "application/json" }, body)
end
