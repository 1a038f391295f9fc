-- wrk script for bench/run.py: POST one small, constant chat completion over keep-alive connections,
-- then print a one-line JSON summary (prefixed "BENCH_JSON ") that run.py parses.
--
--   wrk -t1 -c16 -d10s --latency -s bench/chat.lua http://127.0.0.1:PORT/v1/chat/completions -- MODEL [KEY]
--
-- KEY, when given, is sent as "Authorization: Bearer KEY" (the gateway with policies, LiteLLM).
--
-- No response() callback on purpose: defining one makes wrk parse every body in Lua, which costs
-- client CPU. wrk itself counts statuses >= 400 in summary.errors.status; run.py checks one answer
-- per target for a 200 with a "choices" list before any load.

local model = "echo"

function init(args)
   if args[1] then
      model = args[1]
   end
   if args[2] then
      wrk.headers["Authorization"] = "Bearer " .. args[2]
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Accept"] = "application/json"
   wrk.body = '{"model":"' .. model .. '","max_tokens":16,'
      .. '"messages":[{"role":"user","content":"Say hello to the benchmark."}]}'
end

function done(summary, latency, requests)
   local e = summary.errors
   local function p(q)
      return latency:percentile(q)
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,'
         .. '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},'
         .. '"latency_us":{"min":%.0f,"mean":%.1f,"stdev":%.1f,"max":%.0f,'
         .. '"p50":%.0f,"p90":%.0f,"p99":%.0f,"p99.9":%.0f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      p(50), p(90), p(99), p(99.9)
   ))
end
