-- wrk script for bench/run: the request comes from the environment and the
-- summary goes to a file of key=value lines that bench/run reads.
--   WRK_METHOD  GET (default) or POST
--   WRK_BODY    JSON body (sent with Content-Type: application/json)
--   WRK_TOKEN   access token (sent as Authorization: Bearer ...)
--   WRK_OUT     file for the summary (nothing is written without it)
wrk.method = os.getenv("WRK_METHOD") or "GET"

local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local out = os.getenv("WRK_OUT")
  if not out or out == "" then
    return
  end
  local e = summary.errors
  local f = assert(io.open(out, "w"))
  f:write(string.format("requests=%d\n", summary.requests))
  f:write(string.format("duration_us=%d\n", summary.duration))
  -- responses with a status above 399
  f:write(string.format("status_errors=%d\n", e.status))
  f:write(string.format("socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
  f:write(string.format("p50_us=%d\n", latency:percentile(50)))
  f:write(string.format("p99_us=%d\n", latency:percentile(99)))
  f:write(string.format("max_us=%d\n", latency.max))
  f:close()
end
