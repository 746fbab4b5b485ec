-- wrk script: POST the alert in $BODY_FILE, report one JSON line when done. With
-- $ID_PREFIX, each request carries a new alertId (PREFIX-1, PREFIX-2, ...): each is a
-- new delivery, as Panther's alerts are (bench/team.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()

local prefix = os.getenv("ID_PREFIX")
if prefix then
  local counter = 0
  request = function()
    counter = counter + 1
    local body = wrk.body:gsub("b90c19e66e160e194a5b3b94ec27fb7c", prefix .. "-" .. counter, 1)
    return wrk.format(nil, nil, nil, body)
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
