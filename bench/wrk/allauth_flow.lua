-- django-allauth's login by code, whole: request a code for an address (POST the email),
-- then confirm it with the session that request started (POST the code). A confirm is
-- sent as soon as a request's answer has come back; a flow counts when its confirm
-- redirects to DONE_PATH (signed in). Each address asks from a client address of its
-- own (X-Forwarded-For), as bench/peers/settings.py explains.

local code = os.getenv("CODE")
local prefix = os.getenv("PREFIX")
local users = tonumber(os.getenv("USERS"))
local csrf_cookie = os.getenv("CSRF_COOKIE")
local csrf_token = os.getenv("CSRF_TOKEN")
local session_cookie = os.getenv("SESSION_COOKIE")
local request_path = os.getenv("REQUEST_PATH")
local confirm_path = os.getenv("CONFIRM_PATH")
local done_path = os.getenv("DONE_PATH")
local session_pattern = "^" .. session_cookie:gsub("%p", "%%%0") .. "=([^;]+)"
local threads = {}
local waiting, head, tail = {}, 1, 0
-- Globals, not locals: done() reads them from each thread with thread:get().
sent, flows, unexpected, sample = 0, 0, 0, ""

function setup(thread)
  threads[#threads + 1] = thread
end

local function form(cookie)
  return {["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = cookie}
end

function request()
  if tail >= head then
    local session = waiting[head]
    waiting[head] = nil
    head = head + 1
    local headers = form(csrf_cookie .. "; " .. session)
    return wrk.format("POST", confirm_path, headers,
      "code=" .. code .. "&csrfmiddlewaretoken=" .. csrf_token)
  end
  local i = sent % users
  sent = sent + 1
  local headers = form(csrf_cookie)
  headers["X-Forwarded-For"] = string.format(  -- as bench.load's client_address(i)
    "10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("POST", request_path, headers,
    "email=" .. prefix .. i .. "%40bench.test&csrfmiddlewaretoken=" .. csrf_token)
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if status == 302 and location == confirm_path then
    -- The session's cookie is the last Set-Cookie (after the messages one), the one wrk keeps.
    local cookie = headers["Set-Cookie"] or headers["set-cookie"] or ""
    local session = cookie:match(session_pattern)
    if session then
      tail = tail + 1
      waiting[tail] = session_cookie .. "=" .. session
      return
    end
  elseif status == 302 and location == done_path then
    flows = flows + 1
    return
  end
  unexpected = unexpected + 1
  if sample == "" then  -- only characters JSON needs no escape for (see requests.lua)
    sample = (status .. " " .. (location or "") .. " " .. (body or ""):sub(1, 200))
      :gsub("[^%w .,:;/_=-]", "?")
  end
end

function done(summary, latency, requests)
  local total_flows, bad, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_flows = total_flows + thread:get("flows")
    bad = bad + thread:get("unexpected")
    if first == "" then first = thread:get("sample") end
  end
  io.write(string.format(
    'RESULT {"requests": %d, "flows": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "unexpected": %d, "exhausted": 0, "sample": %q}\n',
    summary.requests, total_flows, summary.duration, latency:percentile(50),
    latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad, first))
end
