#!/usr/bin/env bash
# mkcorpus.sh - regenerates the committed seed corpora in
# tests/fuzz/corpus/<target>/: small, meaningful inputs for each fuzz
# target (valid and just-invalid requests, SSE streams with CRLF, comments
# and multi-line data, frames encoded with the real codec, real configs,
# JSON documents, error messages). run.sh never writes here; rerun this
# after changing a seed.
set -eu
cd "$(dirname "$0")/../.." || exit 1

CORPUS=tests/fuzz/corpus
NEST_OK=64                 # JS_MAX_DEPTH: the deepest a body may nest
NEST_BAD=65

# seed TARGET NAME FORMAT [ARGS...]: writes printf FORMAT ARGS to a file.
seed() {
    local target=$1 name=$2 fmt=$3
    shift 3
    # shellcheck disable=SC2059  # the format is the seed's text
    printf "$fmt" "$@" >"$CORPUS/$target/$name"
}

# repeat N STRING: STRING N times.
repeat() {
    local i out=""
    for ((i = 0; i < $1; i++)); do out+=$2; done
    printf '%s' "$out"
}

for t in request sse frame config jsonscan apierror httpparse httpresp \
         oauth anthropic_req anthropic_sse; do
    rm -rf "${CORPUS:?}/$t"
    mkdir -p "$CORPUS/$t"
done

# --- request bodies -------------------------------------------------------
msg='{"role":"user","content":"Hello"}'
seed request minimal '{"model":"default","messages":[%s]}' "$msg"
f='{"model":"default","stream":true,"messages":['
f+='{"role":"system","content":"Be brief."},%s,'
f+='{"role":"assistant","content":null}]}\r\n'
seed request stream_true "$f" "$msg"
f='{"model":"local/mock-small","messages":[{"role":"user","content":'
f+='[{"type":"text","text":"hi"}]}],"temperature":0.2,"max_tokens":64}'
seed request content_parts "$f"
f='{"model":"default",/* lenient */"messages":[%s,],} // json-c only'
seed request comment_lenient "$f" "$msg"
seed request escaped_model '{"model":"d\\u0065fault","messages":[%s]}' "$msg"
seed request duplicate_model \
    '{"model":"a","model":"default","messages":[%s]}' "$msg"
seed request model_255 '{"model":"%s","messages":[%s]}' \
    "$(repeat 255 m)" "$msg"
seed request model_256 '{"model":"%s","messages":[%s]}' \
    "$(repeat 256 m)" "$msg"
seed request no_messages '{"model":"default"}'
seed request empty_messages '{"model":"default","messages":[]}'
seed request stream_string \
    '{"model":"default","stream":"yes","messages":[%s]}' "$msg"
seed request role_missing '{"model":"default","messages":[{"content":"x"}]}'
seed request not_object '[{"model":"default"}]'
seed request trailing_nul '{"model":"default","messages":[%s]}\0' "$msg"
seed request nested_deep '{"model":"m","messages":[%s],"x":%s1%s}' \
    "$msg" "$(repeat 62 '[')" "$(repeat 62 ']')"

# --- SSE streams ----------------------------------------------------------
# First byte: bits 0-3 how many piece lengths follow, bits 4-7 the event
# on which the callback stops (see fuzz_sse.c).
chunk='{"id":"c1","object":"chat.completion.chunk",'
chunk+='"choices":[{"index":0,"delta":{"content":"Hi"}}]}'
seed sse openai_stream '\000data: %s\n\ndata: %s\n\ndata: [DONE]\n\n' \
    "$chunk" "$chunk"
seed sse crlf_multiline \
    '\000event: message\r\ndata: line one\r\ndata: line two\r\nid: 7\r\n\r\n'
seed sse cr_only '\000data: a\rdata: b\r\rdata: c\r\r'
seed sse comments_keepalive \
    '\000: keep-alive\n\n:comment\ndata:no-space\n\ndata\n\nretry: 1000\n\n'
seed sse split_pieces \
    '\003\001\007\002event: e\r\ndata: split\r\n\r\ndata: 2\n\n'
seed sse split_cr_lf '\001\011data: cut\r\n\r\ndata: again\r\n\r\n'
seed sse stop_second '\040data: 1\n\ndata: 2\n\ndata: 3\n\n'
seed sse long_event_name '\000event: %s\ndata: x\n\n' "$(repeat 70 e)"
seed sse unfinished '\000data: complete\n\ndata: partial'
seed sse bom_first '\000\357\273\277data: bom\n\n'
seed sse empty_pieces '\002\000\003data: z\n\n'
seed sse big_data '\000data: %s\n\n' "$(repeat 4100 d)"

# --- frames (encoded with the codec) -------------------------------------
cc -std=gnu11 -D_GNU_SOURCE -Iinclude -o build/mkcorpus_frame \
    tests/fuzz/mkcorpus_frame.c common/formats/frame.c
build/mkcorpus_frame "$CORPUS/frame"
rm -f build/mkcorpus_frame

# --- configuration files --------------------------------------------------
cp etc/pipelined.conf "$CORPUS/config/pipelined.conf"
cat >"$CORPUS/config/providers_all" <<'EOF'
listen = "[::1]:8443";
workers = 4;
log_level = "debug";
log_file = "/tmp/pipelined.log";
clients = { api_keys = ( "sk-local-123",
  "sha256:0123456789abcdef0123456789abcdef"
  "0123456789abcdef0123456789abcdef" ); };
retry = { max_retries = 2; base_delay_ms = 100; max_delay_ms = 100;
          multiplier = 1.5; jitter = "decorrelated"; };
circuit_breaker = { enabled = false; failure_threshold = 3;
                    recovery_timeout_ms = 1000; half_open_max_requests = 2;
                    failure_rate_threshold = 0.5; window_size = 10;
                    minimum_calls = 5; };
providers = (
  { name = "local"; type = "mock"; latency_ms = 10; },
  { name = "openai"; type = "openai"; base_url = "https://api.openai.com/v1/";
    api_key = "sk-test"; },
  { name = "qwen"; type = "qwen"; auth = "oauth"; },
  { name = "dash"; type = "qwen"; api_key_env = "RCC_FUZZ_UNSET_KEY"; },
  { name = "iflow"; type = "iflow"; auth = "oauth";
    token_file = "/tmp/iflow.json"; client_id = "abc"; }
);
virtual_models = (
  { name = "default"; strategy = "weighted";
    targets = ( { provider = "local"; model = "a"; weight = 3; },
                { provider = "openai"; model = "gpt-4o-mini"; weight = 1;
                  max_concurrent = 8; } ); },
  { name = "fast"; strategy = "least-connections";
    targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); },
  { name = "any"; strategy = "random";
    targets = ( { provider = "iflow"; model = "m"; },
                { provider = "dash"; model = "qwen-max"; } ); }
);
EOF
cat >"$CORPUS/config/minimal" <<'EOF'
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_unknown_key" <<'EOF'
workers = 2;
wrokers = 3;
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_duplicate_provider" <<'EOF'
listen = "127.0.0.1:1";
providers = ( { name = "p"; type = "mock"; }, { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v/x";
                     targets = ( { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_duplicate_target" <<'EOF'
listen = "localhost:65535";
providers = ( { name = "p"; type = "mock"; }, { name = "q"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; },
                                 { provider = "q"; model = "m"; },
                                 { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_types" <<'EOF'
workers = "two";
max_body_bytes = 1L;
retry = { multiplier = 0.5; jitter = "some"; };
circuit_breaker = ( 1, 2 );
providers = [ 1, 2 ];
virtual_models = ();
EOF
cat >"$CORPUS/config/capture" <<'EOF'
capture = { dir = "/tmp/rcc-capture"; max_body_bytes = 262144;
            max_files = 10000; enabled = true; };
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_capture" <<'EOF'
capture = { dir = "relative"; max_body_bytes = -1; max_files = 0;
            enabled = "yes"; directory = 1; };
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_syntax" <<'EOF'
providers = ( { name = "p"; type = "mock" } ;
EOF
cat >"$CORPUS/config/err_openai_no_key" <<'EOF'
providers = ( { name = "o"; type = "openai"; base_url = "ftp://x"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "o"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/budgets" <<'EOF'
clients = { api_keys = ( "sk-plain",
  { key = "sk-a"; name = "team-a"; rpm = 600; tpm = 100000; },
  { key = "sk-b"; name = "team-a"; rpm = 600; tpm = 100000; },
  { key = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; name = "b"; } ); };
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; rpm = 60; tpm = 2000000000; } ); } );
EOF
cat >"$CORPUS/config/err_budgets" <<'EOF'
clients = { api_keys = ( { key = "k1"; name = "a"; rpm = 1; },
  { key = "k2"; name = "a"; rpm = 2; }, { name = "-"; }, 7 ); };
providers = ( { name = "p"; type = "mock"; } );
virtual_models = ( { name = "v";
                     targets = ( { provider = "p"; model = "m"; rpm = 0; tpm = 1.5; } ); } );
EOF
cat >"$CORPUS/config/health_check" <<'EOF'
providers = (
  { name = "o"; type = "openai"; base_url = "http://127.0.0.1:9/v1";
    api_key = "k";
    health_check = { interval_ms = 200; timeout_ms = 150;
                     unhealthy_after = 2; healthy_after = 3; }; },
  { name = "m"; type = "mock"; health_check = { interval_ms = 10000; }; },
  { name = "q"; type = "qwen"; auth = "oauth"; health_check = { }; }
);
virtual_models = ( { name = "v";
                     targets = ( { provider = "o"; model = "m"; },
                                 { provider = "m"; model = "m"; } ); } );
EOF
cat >"$CORPUS/config/err_health_check" <<'EOF'
providers = (
  { name = "o"; type = "openai"; base_url = "http://127.0.0.1:9/v1";
    api_key = "k";
    health_check = { interval_ms = 100; timeout_ms = 900;
                     unhealthy_after = 0; every = 1; }; },
  { name = "m"; type = "mock"; health_check = ( 1, 2 ); }
);
virtual_models = ( { name = "v";
                     targets = ( { provider = "o"; model = "m"; } ); } );
EOF

# --- JSON documents -------------------------------------------------------
seed jsonscan request '{"model":"default","messages":[%s],"stream":false}' \
    "$msg"
f=' {"id":"x","choices":[{"index":0,"message":{"role":"assistant",'
f+='"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,'
f+='"completion_tokens":34,"total_tokens":46}}\n'
seed jsonscan response "$f"
f='[0,-0,1,-1,0.5,-12.5e3,1E-5,1e+2,123456789012345,12345678901234567,'
f+='123456789012345678,1e999]'
seed jsonscan numbers "$f"
f='["","\\"\\\\\\/\\b\\f\\n\\r\\t","\\u00e9\\u00E9",'
f+='"\\ud83d\\ude00","\\ud800","caf\303\251"]'
seed jsonscan strings "$f"
seed jsonscan literals ' \t\r\n{"a":true,"b":false,"c":null,"a":{}}\n'
seed jsonscan top_number '42'
seed jsonscan top_string '"model"'
seed jsonscan escaped_key '{"mod\\u0065l":"x","model":"y"}'
seed jsonscan depth_64 '%s%s' "$(repeat $NEST_OK '[')" "$(repeat $NEST_OK ']')"
seed jsonscan depth_65 '%s%s' "$(repeat $NEST_BAD '[')" \
    "$(repeat $NEST_BAD ']')"
seed jsonscan depth_obj '{"a":%s1%s}' "$(repeat 62 '{"a":')" "$(repeat 62 '}')"
seed jsonscan lenient_json_c "{'a':1,/*c*/\"b\":[1,2,],\"c\":NaN}"
seed jsonscan usage_int \
    '{"prompt_tokens":9007199254740993,"completion_tokens":-7}'

# --- error messages -------------------------------------------------------
# Header: status (2 bytes, little-endian), code index, capacity byte.
seed apierror plain '\220\001\004\377the request body is not valid JSON'
seed apierror escapes \
    '\367\001\000\040quote " backslash \\ newline\n tab\t del\177'
seed apierror utf8_cut \
    '\144\000\001\030caf\303\251 \342\202\254 \360\237\230\200 end'
seed apierror long_message '\364\001\013\377%b' "$(repeat 300 "\303\251")"
seed apierror bad_utf8 '\255\001\002\100\377\376 \300\200 \355\240\200'
seed apierror tiny_cap '\231\001\001\000x'

# --- HTTP request heads and chunked bodies --------------------------------
# Byte 0: limits (bits 0-1: front end's, small, tiny, many headers) and
# mode (bits 2-3: 0 request, 2 chunked body alone, 3 encode and decode);
# byte 1: piece length (see fuzz_httpparse.c).
post='POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8080\r\n'
# seed_http NAME HEADER-BYTES REST: a request seed (printf escapes).
seed_http() {
    seed httpparse "$1" "$2$3"
}
seed_http post_length '\000\000' \
    "${post}Content-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
te="${post}Transfer-Encoding: chunked\\r\\n\\r\\n"
seed_http post_chunked '\000\003' "${te}5;x=y\\r\\nhello\\r\\n0\\r\\n\\r\\n"
seed_http get_http10 '\000\000' \
    'GET /v1/models HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
seed_http expect_continue '\000\000' \
    "${post}Expect: 100-continue\\r\\nContent-Length: 10\\r\\n\\r\\n"
seed_http empty_lines_lf '\000\000' \
    '\r\n\nGET /health HTTP/1.1\nhost: a\nConnection: close, x\n\n'
seed_http conflicting_length '\000\000' \
    "${post}Content-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\n"
seed_http length_and_chunked '\000\000' \
    "${post}Content-Length: 1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
seed_http obs_fold '\000\000' "${post}X-A: 1\\r\\n  folded\\r\\n\\r\\n"
seed_http space_before_colon '\000\000' "${post}Host : b\\r\\n\\r\\n"
seed_http http2 '\000\000' 'GET / HTTP/2.0\r\n\r\n'
seed_http small_limits '\001\000' \
    'GET /a/long/path/close/to/the/small/limit/abcdefghij HTTP/1.1\r\n\r\n'
seed_http tiny_limits '\002\000' 'GET /abcd HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n'
f='4;ext\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n'
seed_http chunked_only '\010\002' "${f}0\\r\\nT: x\\r\\n\\r\\n"
seed_http chunked_lf '\010\001' 'a\nabcdefghij\n0\n\n'
seed_http encode '\014\005' '{"model":"default","messages":[]}'

# --- HTTP response heads (an upstream's) and chunked bodies ---------------
# Byte 0: limits (bits 0-1: an upstream client's, small, tiny, many
# headers); byte 1: piece length and a prefix (see fuzz_httpresp.c).
ok='HTTP/1.1 200 OK\r\n'
# seed_resp NAME HEADER-BYTES REST: a response seed (printf escapes).
seed_resp() {
    seed httpresp "$1" "$2$3"
}
seed_resp length '\000\000' \
    "${ok}Content-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
seed_resp chunked '\000\003' "${ok}Transfer-Encoding: chunked\\r\\n\\r\\n"\
'5;x=y\r\nhello\r\n0\r\nT: x\r\n\r\n'
seed_resp chunked_sse '\000\007' "${ok}Content-Type: text/event-stream\\r\\n"\
'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n'\
'f\r\ndata: {"a":1}\n\n\r\n0\r\n\r\n'
seed_resp chunked_and_length '\000\000' \
    "${ok}Content-Length: 3\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
seed_resp to_close_http10 '\000\000' \
    'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody'
seed_resp keep_alive_http10 '\000\000' \
    'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n'
seed_resp close '\000\000' \
    "${ok}Connection: foo, close\\r\\nContent-Length: 0\\r\\n\\r\\n"
seed_resp no_reason '\000\000' 'HTTP/1.1 204\r\n\r\n'
seed_resp empty_reason '\000\000' 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n'
seed_resp continue_then_200 '\000\000' \
    "HTTP/1.1 100 Continue\\r\\n\\r\\n${ok}Content-Length: 0\\r\\n\\r\\n"
seed_resp not_modified_length '\000\000' \
    'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n'
seed_resp too_many_requests '\000\000' 'HTTP/1.1 429 Too Many Requests\r\n'\
'Retry-After: 3\r\nContent-Length: 0\r\n\r\n'
seed_resp bare_lf '\000\000' 'HTTP/1.0 404 Not Found\nContent-Length: 3\n\nabc'
seed_resp conflicting_length '\000\000' \
    "${ok}Content-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\n"
seed_resp gzip_chunked '\000\000' \
    "${ok}Transfer-Encoding: gzip, chunked\\r\\n\\r\\n"
seed_resp chunked_http10 '\000\000' \
    'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
seed_resp http2 '\000\000' 'HTTP/2 200\r\n\r\n'
seed_resp status_600 '\000\000' 'HTTP/1.1 600 Nope\r\n\r\n'
seed_resp small_limits '\001\000' \
    'HTTP/1.1 503 Service Unavailable, close to the small limit\r\n\r\n'
seed_resp tiny_limits '\002\000' 'HTTP/1.1 200\r\nA: b\r\n\r\n'
seed_resp many_headers '\003\000' "${ok}$(repeat 101 'X: y\r\n')\\r\\n"

# --- OAuth token files and authorization server answers -------------------
# byte 0: bits 0-3 the answers' status, bits 4-7 the refresh answer's, as
# indices into fuzz_oauth.c's table (0: 200, 4: 400, 5: 401, 8: 429,
# 9: 500).
seed oauth qwen_file '\000{\n  "access_token": "qa",\n  "token_type": '\
'"Bearer",\n  "refresh_token": "qr",\n  "resource_url": "portal.qwen.ai",'\
'\n  "expiry_date": 1760000000000\n}\n'
seed oauth iflow_file '\000{"access_token":"ia","refresh_token":"ir",'\
'"expiry_date":1760000000000.5,"token_type":"bearer","scope":"read",'\
'"apiKey":"sk-1","userId":"u","extra":{"a":[1,null,true]}}'
seed oauth poll_pending '\104{"error":"authorization_pending",'\
'"error_description":"The authorization request is still pending"}'
seed oauth poll_slow_down '\010{"error":"slow_down"}'
seed oauth poll_ok '\000{"access_token":"a","refresh_token":"r",'\
'"token_type":"Bearer","expires_in":21600,"resource_url":"portal.qwen.ai",'\
'"scope":"openid"}'
seed oauth refresh_partial '\000{"access_token":"a","expires_in":"3600"}'
seed oauth refresh_revoked '\124{"error":"invalid_grant",'\
'"error_description":"bad \\u001b[0m token\\n"}'
seed oauth device '\000{"device_code":"dc","user_code":"ABCD-1234",'\
'"verification_uri":"https://chat.qwen.ai/authorize","verification_uri_'\
'complete":"https://chat.qwen.ai/authorize?user_code=ABCD-1234",'\
'"expires_in":900,"interval":0}'
seed oauth userinfo '\000{"success":true,"message":"ok",'\
'"data":{"apiKey":"sk-abc","userName":"n"}}'
seed oauth userinfo_refused '\000{"success":false,"message":"expired"}'
seed oauth not_json '\231<html>502 Bad Gateway</html>'
seed oauth resource_url '\000  https://dashscope.aliyuncs.com/compatible-mode/ '

# --- Anthropic translation: bodies (every whole-body translator reads
# each), and streams (byte 0: bit 0 provider direction, bit 1 end, bits
# 2-7 piece length) ---------------------------------------------------------
a='{"model":"claude-x","max_tokens":1024,"system":[{"type":"text","text":'
a+='"Be brief."}],"stream":true,"stop_sequences":["END"],"messages":[{"role"'
a+=':"user","content":"Weather?"},{"role":"assistant","content":[{"type":'
a+='"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":'
a+='"get_weather","input":{"location":"Paris"}}]},{"role":"user","content":'
a+='[{"type":"tool_result","tool_use_id":"toolu_1","is_error":true,'
a+='"content":[{"type":"text","text":"15C"},{"type":"image","source":{'
a+='"type":"url","url":"http://i/x.png"}}]},{"type":"image","source":{'
a+='"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}],'
a+='"tools":[{"name":"get_weather","description":"d","input_schema":{'
a+='"type":"object"}}],"tool_choice":{"type":"tool","name":"get_weather"},'
a+='"metadata":{"user_id":"u"},"temperature":0.5,"top_p":1}'
seed anthropic_req messages_tools '%s' "$a"
seed anthropic_req messages_min \
    '{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}'
seed anthropic_req messages_bad_block '{"model":"m","max_tokens":1,'\
'"messages":[{"role":"user","content":[{"type":"document"}]}]}'
c='{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,'
c+='"message":{"role":"assistant","content":"Hi","tool_calls":[{"id":"c1",'
c+='"type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}}]},'
c+='"finish_reason":"tool_calls","stop_reason":"END"}],"usage":{'
c+='"prompt_tokens":9,"completion_tokens":12}}'
seed anthropic_req completion '%s' "$c"
o='{"model":"gpt","messages":[{"role":"system","content":"s"},{"role":'
o+='"user","content":[{"type":"text","text":"q"},{"type":"image_url",'
o+='"image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant",'
o+='"content":null,"tool_calls":[{"id":"c1","type":"function","function":{'
o+='"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1",'
o+='"content":"r"}],"tools":[{"type":"function","function":{"name":"f",'
o+='"parameters":{"type":"object"}}}],"tool_choice":"required",'
o+='"parallel_tool_calls":false,"stop":"x","max_tokens":5,"stream":true}'
seed anthropic_req chat_request '%s' "$o"
m='{"id":"msg_1","type":"message","role":"assistant","model":"c","content":'
m+='[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"f",'
m+='"input":{"a":1}}],"stop_reason":"tool_use","stop_sequence":null,'
m+='"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":1}}'
seed anthropic_req message '%s' "$m"

# Streams are built in $d: each helper appends one whole event ($(...)
# would drop the blank line that ends it).
ch() { # ch DELTA FINISH: one OpenAI chunk
    d+="data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\","
    d+="\"choices\":[{\"index\":0,\"delta\":$1,\"finish_reason\":$2}]}"
    d+=$'\n\n'
}
ev() { # ev NAME DATA: one Anthropic event
    d+="event: $1"$'\n'"data: $2"$'\n\n'
}
d=''
ch '{"role":"assistant","content":""}' null
ch '{"content":"Hel"}' null
ch '{"content":"lo"}' null
ch '{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":'\
'"{\"x\""}},{"index":1,"id":"b","function":{"name":"g","arguments":""}}]}' null
ch '{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}' null
ch '{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}' \
    '"tool_calls"'
d+='data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}'
d+=$'\n\n''data: [DONE]'$'\n\n'
seed anthropic_sse door_tools '\000%s' "$d"
seed anthropic_sse door_pieces '\036%s' "$d"
d=''
ch '{"content":"Hel"}' null
seed anthropic_sse door_cut '\002%s' "$d"
seed anthropic_sse door_error '\000data: {"error":{"message":"boom"}}\n\n'
d=''
ev message_start '{"type":"message_start","message":{"id":"msg_1","type":'\
'"message","role":"assistant","content":[],"model":"c","usage":{'\
'"input_tokens":25,"output_tokens":1}}}'
ev content_block_start '{"type":"content_block_start","index":0,'\
'"content_block":{"type":"text","text":""}}'
ev ping '{"type":"ping"}'
ev content_block_delta '{"type":"content_block_delta","index":0,"delta":{'\
'"type":"text_delta","text":"Hi"}}'
ev content_block_stop '{"type":"content_block_stop","index":0}'
ev content_block_start '{"type":"content_block_start","index":1,'\
'"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}'
ev content_block_delta '{"type":"content_block_delta","index":1,"delta":{'\
'"type":"input_json_delta","partial_json":"{\"a\":"}}'
ev content_block_delta '{"type":"content_block_delta","index":1,"delta":{'\
'"type":"input_json_delta","partial_json":"1}"}}'
ev content_block_stop '{"type":"content_block_stop","index":1}'
ev message_delta '{"type":"message_delta","delta":{"stop_reason":'\
'"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}'
ev message_stop '{"type":"message_stop"}'
seed anthropic_sse up_tools '\001%s' "$d"
seed anthropic_sse up_pieces '\047%s' "$d"
d=''
ev message_start '{"type":"message_start","message":{"id":"m","usage":{}}}'
ev error '{"type":"error","error":{"type":"overloaded_error","message":'\
'"Overloaded"}}'
seed anthropic_sse up_error '\003%s' "$d"

# --- cluster mode: breaker messages and heartbeat records -----------------
# Read both ways (see fuzz_clusterwire.c).
seed clusterwire open 'O|600000|gw-a|up/status-500'
seed clusterwire reset 'R|0|gw-b|openai/gpt-4o'
seed clusterwire leading_zeros 'O|0012|gw|n'
seed clusterwire bad_origin 'O|12|g w|n'
seed clusterwire record '{"instance":"gw-a","pid":4242,"host":"box",'\
'"listen":"127.0.0.1:8080","last_seen_ms":1765000000123,"requests":17}'
seed clusterwire bad_record '{"instance":"gw","pid":"1"}'

# --- cluster mode: health results (fuzz_cwhealth.c) -------------------------
rm -rf "${CORPUS:?}/cwhealth"
mkdir -p "$CORPUS/cwhealth"
seed cwhealth unhealthy 'H|2|2|0|gw-a|up'
seed cwhealth healthy 'H|1|0|4294967295|gw-b|openai|x'
seed cwhealth leading_zeros 'H|1|0|01|gw|p'
seed cwhealth both_counts 'H|1|1|1|gw|p'
# --- cluster mode: OAuth token records and change notices ----------------
# Read both ways (see fuzz_oauthwire.c). 0442... is the fingerprint of
# the tokens at-9/rt-0, 7922... that of a/rt-0.
mkdir -p "$CORPUS/oauthwire"
seed oauthwire record 'gw-a|0442a1e98cd8d5e79e56784b6cf7ad3a|-|1796625229059\n'\
'{"access_token":"at-9","refresh_token":"rt-0","token_type":"Bearer",'\
'"resource_url":"portal.qwen.ai","expiry_date":1796628808973}\n'
seed oauthwire record_prev 'gw-b|7922c3854ba067e968641bd154a60ee0|'\
'0442a1e98cd8d5e79e56784b6cf7ad3a|1\n{"access_token":"a","refresh_token":"rt-0"}'
seed oauthwire record_wrong_fp 'gw-a|6dabaa8b97000200e8ab9768511c565b|-|1\n'\
'{"access_token":"a","refresh_token":"rt-0"}'
seed oauthwire notice 'gw-c|0442a1e98cd8d5e79e56784b6cf7ad3a|qwen'
seed oauthwire bad_notice 'gw c|0442|qwen'

# --- upstream URLs the worker's own HTTP client serves (fuzz_httpaddr.c) --
rm -rf "${CORPUS:?}/httpaddr"
mkdir -p "$CORPUS/httpaddr"
seed httpaddr ipv4 'http://127.0.0.1:8080/v1/chat/completions'
seed httpaddr ipv6 'http://[::1]:9000/v1?x=1'
seed httpaddr ipv6_mapped 'HTTP://[::ffff:10.0.0.1]'
seed httpaddr default_port 'http://10.1.2.3/v1'
seed httpaddr query_only 'http://10.1.2.3?q=1'
seed httpaddr port_max 'http://10.1.2.3:65535/'
seed httpaddr port_over 'http://10.1.2.3:65536/'
seed httpaddr port_sign 'http://10.1.2.3:+80/'
seed httpaddr host_name 'http://localhost:8080/v1'
seed httpaddr https 'https://10.1.2.3/'
seed httpaddr user_info 'http://u:p@10.1.2.3/'
seed httpaddr fragment 'http://10.1.2.3/a#f'
seed httpaddr dot_segment 'http://10.1.2.3/a/../b'
seed httpaddr space 'http://10.1.2.3/a b'
seed httpaddr nul_inside 'http://10.1.2.3/a\000/../b'
