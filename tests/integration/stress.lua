-- stress.lua - wrk script for test_stress.sh: POSTs a chat request and
-- counts answers by status; done() prints "statuses: 200=N other=M".
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"default","messages":[{"role":"user","content":"stress"}]}'

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    ok = 0
    other = 0
end

function response(status, headers, body)
    if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
    local o, x = 0, 0
    for _, t in ipairs(threads) do
        o = o + t:get("ok")
        x = x + t:get("other")
    end
    io.write(string.format("statuses: 200=%d other=%d\n", o, x))
end
