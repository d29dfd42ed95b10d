-- wrk script for the rcc-pipeline benchmark (bench/run.sh).
--
-- POSTs a small OpenAI-style chat-completion body with keep-alive.
-- The body's "model" is taken from, in order:
--   1. the first wrk script argument:  wrk ... -s bench/post.lua URL -- MODEL
--   2. the BENCH_MODEL environment variable
--   3. "default"
-- (the mock upstream selects its behaviour by model, e.g. "fast"; the
-- pipelined daemon expects the virtual model name, e.g. "default").

local function body_for(model)
   return '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello bench"}]}'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = body_for(os.getenv("BENCH_MODEL") or "default")

-- Called once per thread before wrk.format() builds the (static) request.
function init(args)
   if args and args[1] and args[1] ~= "" then
      wrk.body = body_for(args[1])
   end
end
