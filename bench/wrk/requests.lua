-- Replays the requests of a file, one per line: METHOD \t PATH \t HEADERS \t BODY,
-- HEADERS being "Name: value" pairs joined by " | ". With REPEAT=1 the lines are
-- replayed in a loop (a floor, a page); otherwise each line is sent once (a code,
-- a link) and running out is reported. Every answer whose status is not EXPECT
-- is counted: a benchmark of error pages measures nothing.

local lines = {}
for line in io.lines(os.getenv("REQUESTS")) do
  local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
  local parsed = {}
  for pair in headers:gmatch("[^|]+") do
    local name, value = pair:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then parsed[name] = value end
  end
  lines[#lines + 1] = wrk.format(method, path, parsed, body ~= "" and body or nil)
end

local repeat_lines = os.getenv("REPEAT") == "1"
local expect = tonumber(os.getenv("EXPECT") or "200")
-- A redirect's target, when a success and a refusal both redirect (a code page's 302).
local expect_location = os.getenv("EXPECT_LOCATION")
local threads = {}
-- Globals, not locals: done() reads them from each thread with thread:get().
next_line, unexpected, exhausted, sample = 1, 0, 0, ""

function setup(thread)
  threads[#threads + 1] = thread
end

function request()
  if next_line > #lines then
    if repeat_lines then
      next_line = 1
    else
      exhausted = exhausted + 1
      next_line = 1
    end
  end
  local req = lines[next_line]
  next_line = next_line + 1
  return req
end

function response(status, headers, body)
  if status ~= expect or (expect_location and headers["Location"] ~= expect_location) then
    unexpected = unexpected + 1
    if sample == "" then
      -- Kept to characters that need no escaping, so the RESULT line stays valid JSON.
      sample = (status .. " " .. (body or ""):sub(1, 200)):gsub("[^%w .,:;/_=-]", "?")
    end
  end
end

function done(summary, latency, requests)
  local bad, out_of_lines, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    out_of_lines = out_of_lines + thread:get("exhausted")
    if first == "" then first = thread:get("sample") end
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "unexpected": %d, "exhausted": %d, "sample": %q}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad, out_of_lines, first))
end
