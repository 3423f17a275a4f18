-- Whole sign-ins over the JSON API: send an email address, then, once a worker has
-- had time to deliver (FLOW_DEPTH later sends), verify that request's code.
-- A flow counts when its verify answers 200 with tokens.

local code = os.getenv("CODE")
local depth = tonumber(os.getenv("FLOW_DEPTH") or "100")
local first_user = tonumber(os.getenv("FIRST_USER") or "0")
local users = tonumber(os.getenv("USERS") or "1000")
local threads = {}
local waiting, head, tail = {}, 1, 0
-- Globals, not locals: done() reads them from each thread with thread:get().
sent, flows, failed, unexpected, sample = 0, 0, 0, 0, ""
local json_headers = {["Content-Type"] = "application/json"}

function setup(thread)
  threads[#threads + 1] = thread
end

function request()
  if tail - head + 1 > depth then
    local id = waiting[head]
    waiting[head] = nil
    head = head + 1
    local body = string.format('{"request_id": "%s", "code": "%s", "mode": "jwt"}', id, code)
    return wrk.format("POST", "/api/auth/verify/code", json_headers, body)
  end
  local email = string.format("flow%d@bench.test", first_user + sent % users)
  sent = sent + 1
  return wrk.format("POST", "/api/auth/send", json_headers, '{"email": "' .. email .. '"}')
end

function response(status, headers, body)
  if status == 202 then
    local id = body:match('"request_id":%s*"([^"]+)"')
    if id then
      tail = tail + 1
      waiting[tail] = id
      return
    end
  elseif status == 200 and body:find('"access"', 1, true) then
    flows = flows + 1
    return
  end
  if body:find('"code"', 1, true) and status ~= 202 then failed = failed + 1 end
  unexpected = unexpected + 1
  if sample == "" then  -- only characters JSON needs no escape for (see requests.lua)
    sample = (status .. " " .. body:sub(1, 200)):gsub("[^%w .,:;/_=-]", "?")
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
