/* test_anthropic_up.c - the `type = "anthropic"` provider behind the
 * OpenAI door, on recorded pairs written from OpenAI's chat-completions
 * reference and Anthropic's Messages and streaming references: the
 * request (system gathering, default max_tokens, tools and tool results
 * over two turns, images, stop), the answer (text, tool use, every stop
 * reason, cache usage), the stream (text, tool use, ping, an error
 * event, a cut) and the classification of Anthropic error answers. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <json-c/json.h>

#include "anthropic_check.h"
#include "anthropic_err.h"
#include "anthropic_up.h"
#include "anthropic_upsse.h"
#include "unit.h"

#define TU_CREATED 1694268190

static void tu_req(const char *body, const char *model, const char *want,
                   bool want_stream)
{
    char *out = NULL, err[ANTHROPIC_UP_ERR_MAX];
    size_t len = 0;
    bool stream = !want_stream;
    int rc = anthropic_up_request(body, strlen(body), model, &out, &len,
                                  &stream, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "\nrefused: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(stream, want_stream);
    CU_ASSERT_TRUE(ac_json_eq(out, len, want));
    free(out);
}

static void tu_refused(const char *body, const char *want)
{
    char *out = (char *)1, err[ANTHROPIC_UP_ERR_MAX];
    size_t len;
    bool stream;

    CU_ASSERT_EQUAL(anthropic_up_request(body, strlen(body), "t", &out,
                                         &len, &stream, err, sizeof(err)),
                    -1);
    CU_ASSERT_PTR_NULL(out);
    if (strstr(err, want) == NULL)
        fprintf(stderr, "\n\"%s\" lacks \"%s\"\n", err, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
}

static void test_up_request_basic(void)
{
    /* OpenAI's first example: the system message is gathered; no
     * max_tokens → the default; the model is the target's. */
    tu_req("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\","
           "\"content\":\"You are a helpful assistant.\"},{\"role\":"
           "\"user\",\"content\":\"Hello!\"}]}", "claude-sonnet-4",
           "{\"model\":\"claude-sonnet-4\",\"system\":\"You are a helpful "
           "assistant.\",\"max_tokens\":4096,\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}]}"
           "]}", false);
    /* Two system/developer messages anywhere; parameters; stream. */
    tu_req("{\"model\":\"x\",\"messages\":[{\"role\":\"developer\","
           "\"content\":[{\"type\":\"text\",\"text\":\"A\"}]},{\"role\":"
           "\"user\",\"content\":\"q\"},{\"role\":\"system\",\"content\":"
           "\"B\"}],\"max_completion_tokens\":50,\"temperature\":1.7,"
           "\"top_p\":0.9,\"stop\":\"END\",\"user\":\"u1\",\"stream\":true,"
           "\"stream_options\":{\"include_usage\":true},\"n\":1,"
           "\"frequency_penalty\":0.5}", NULL,
           "{\"model\":\"x\",\"system\":\"A\\nB\",\"max_tokens\":50,"
           "\"temperature\":1.0,\"top_p\":0.9,\"stop_sequences\":[\"END\"],"
           "\"metadata\":{\"user_id\":\"u1\"},\"stream\":true,\"messages\":"
           "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
           "\"q\"}]}]}", true);
    /* Images: data: URLs as base64, others as url sources. */
    tu_req("{\"model\":\"x\",\"max_tokens\":5,\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What's in "
           "this image?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
           "\"https://upload.wikimedia.org/a.jpg\"}},{\"type\":\"image_url\","
           "\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]"
           "}],\"stop\":[\"a\",\"b\"]}", NULL,
           "{\"model\":\"x\",\"max_tokens\":5,\"stop_sequences\":[\"a\","
           "\"b\"],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
           "\"text\",\"text\":\"What's in this image?\"},{\"type\":\"image\","
           "\"source\":{\"type\":\"url\",\"url\":\"https://upload.wikimedia"
           ".org/a.jpg\"}},{\"type\":\"image\",\"source\":{\"type\":"
           "\"base64\",\"media_type\":\"image/png\",\"data\":"
           "\"iVBORw0KGgo=\"}}]}]}", false);
}

static void test_up_request_tools(void)
{
    /* OpenAI's function-calling exchange, second turn: two parallel
     * calls and their two tool messages (one user turn of results). */
    tu_req("{\"model\":\"gpt-4o\",\"tools\":[{\"type\":\"function\","
           "\"function\":{\"name\":\"get_weather\",\"description\":\"Get "
           "weather\",\"parameters\":{\"type\":\"object\",\"properties\":{"
           "\"location\":{\"type\":\"string\"}},\"required\":[\"location\"]"
           "}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}],"
           "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
           "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris "
           "and the time?\"},{\"role\":\"assistant\",\"content\":null,"
           "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
           "\"function\":{\"name\":\"get_weather\",\"arguments\":"
           "\"{\\\"location\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_2\","
           "\"type\":\"function\",\"function\":{\"name\":\"now\","
           "\"arguments\":\"\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
           "\"call_1\",\"content\":\"15C\"},{\"role\":\"tool\","
           "\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
           "\"text\":\"noon\"}]},{\"role\":\"user\",\"content\":\"thanks\"}"
           "]}", "claude",
           "{\"model\":\"claude\",\"max_tokens\":4096,\"tools\":[{\"name\":"
           "\"get_weather\",\"description\":\"Get weather\",\"input_schema\":"
           "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":"
           "\"string\"}},\"required\":[\"location\"]}},{\"name\":\"now\","
           "\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{"
           "\"type\":\"any\",\"disable_parallel_tool_use\":true},"
           "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
           "\"text\":\"Weather in Paris and the time?\"}]},{\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
           "\"call_1\",\"name\":\"get_weather\",\"input\":{\"location\":"
           "\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":"
           "\"now\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{"
           "\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":"
           "\"15C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\","
           "\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]}]},{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"thanks\"}]}]}",
           false);
    tu_req("{\"model\":\"x\",\"tool_choice\":{\"type\":\"function\","
           "\"function\":{\"name\":\"f\"}},\"messages\":[]}", NULL,
           "{\"model\":\"x\",\"max_tokens\":4096,\"tool_choice\":{\"type\":"
           "\"tool\",\"name\":\"f\"},\"messages\":[]}", false);
    tu_req("{\"model\":\"x\",\"tool_choice\":\"none\",\"messages\":[]}",
           NULL, "{\"model\":\"x\",\"max_tokens\":4096,\"tool_choice\":{"
           "\"type\":\"none\"},\"messages\":[]}", false);
}

static void test_up_request_refusals(void)
{
    tu_refused("nope", "JSON object");
    tu_refused("{\"model\":\"x\"}", "messages");
    tu_refused("{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
               "messages.0.role");
    tu_refused("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
               "tool_call_id");
    tu_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"input_audio\"}]}]}", "messages.0.0");
    tu_refused("{\"messages\":[],\"max_tokens\":0}", "max_tokens");
    tu_refused("{\"messages\":[],\"stop\":5}", "stop");
    tu_refused("{\"messages\":[],\"tool_choice\":\"sometimes\"}",
               "tool_choice");
}

#define TU_MESSAGE(content, reason, usage) \
    "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\"," \
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\"," \
    "\"content\":" content ",\"stop_reason\":" reason ",\"stop_sequence\":" \
    "null,\"usage\":" usage "}"
#define TU_COMPLETION(message, finish, in, out, total) \
    "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"object\":" \
    "\"chat.completion\",\"created\":1694268190,\"model\":\"my-model\"," \
    "\"choices\":[{\"index\":0,\"message\":" message ",\"finish_reason\":" \
    "\"" finish "\"}],\"usage\":{\"prompt_tokens\":" #in \
    ",\"completion_tokens\":" #out ",\"total_tokens\":" #total "}}"
#define TU_HI "[{\"type\":\"text\",\"text\":\"Hi! My name is Claude.\"}]"
#define TU_HI_MSG \
    "{\"role\":\"assistant\",\"content\":\"Hi! My name is Claude.\"}"

static void tu_answer(const char *body, const char *want)
{
    char *out = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(anthropic_up_answer(body, strlen(body),
                          "my-model", TU_CREATED, &out, &len), 0);
    CU_ASSERT_TRUE(ac_json_eq(out, len, want));
    free(out);
}

static void test_up_answer(void)
{
    static const char *const reasons[][2] = {
        { "end_turn", "stop" }, { "stop_sequence", "stop" },
        { "max_tokens", "length" }, { "refusal", "content_filter" },
        { "pause_turn", "stop" }, { "tool_use", "tool_calls" },
    };
    char body[1024], want[1024], *out = (char *)1;
    size_t len;

    tu_answer(TU_MESSAGE(TU_HI, "\"end_turn\"", "{\"input_tokens\":2095,"
                         "\"output_tokens\":503}"),
              TU_COMPLETION(TU_HI_MSG, "stop", 2095, 503, 2598));
    /* Cache reads and writes count as prompt tokens. */
    tu_answer(TU_MESSAGE(TU_HI, "\"end_turn\"", "{\"input_tokens\":5,"
                         "\"cache_read_input_tokens\":100,"
                         "\"cache_creation_input_tokens\":20,"
                         "\"output_tokens\":1}"),
              TU_COMPLETION(TU_HI_MSG, "stop", 125, 1, 126));
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        snprintf(body, sizeof(body), TU_MESSAGE(TU_HI, "\"%s\"",
                 "{\"input_tokens\":1,\"output_tokens\":2}"),
                 reasons[i][0]);
        snprintf(want, sizeof(want), TU_COMPLETION(TU_HI_MSG, "%s", 1, 2,
                 3), reasons[i][1]);
        tu_answer(body, want);
    }
    /* Anthropic's tool use answer: text, then tool_use → tool_calls;
     * thinking dropped. */
    tu_answer(TU_MESSAGE("[{\"type\":\"thinking\",\"thinking\":\"hm\","
                         "\"signature\":\"s\"},{\"type\":\"text\",\"text\":"
                         "\"I'll check.\"},{\"type\":\"tool_use\",\"id\":"
                         "\"toolu_01A09q90qw90lq917835lq9\",\"name\":"
                         "\"get_weather\",\"input\":{\"location\":\"San "
                         "Francisco, CA\"}}]", "\"tool_use\"",
                         "{\"input_tokens\":10,\"output_tokens\":20}"),
              TU_COMPLETION("{\"role\":\"assistant\",\"content\":\"I'll "
                            "check.\",\"tool_calls\":[{\"id\":\"toolu_01A09"
                            "q90qw90lq917835lq9\",\"type\":\"function\","
                            "\"function\":{\"name\":\"get_weather\","
                            "\"arguments\":\"{\\\"location\\\":\\\"San "
                            "Francisco, CA\\\"}\"}}]}", "tool_calls", 10, 20,
                            30));
    CU_ASSERT_EQUAL(anthropic_up_answer("{\"type\":\"error\"}", 16, "m", 0,
                                        &out, &len), -1);
    CU_ASSERT_PTR_NULL(out);
}

/* Feeds [event, data] pairs given as one JSON array text. */
static enum anthropic_upsse_status tu_feed(struct anthropic_upsse *s,
                                           const char *pairs,
                                           struct evbuffer *out)
{
    json_object *arr = json_tokener_parse(pairs);
    enum anthropic_upsse_status st = ANTHROPIC_UPSSE_MORE;

    CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        const char *data = json_object_to_json_string_ext(
            json_object_array_get_idx(p, 1), JSON_C_TO_STRING_PLAIN);

        st = anthropic_upsse_feed(s, json_object_get_string(
                                  json_object_array_get_idx(p, 0)),
                                  data, strlen(data), out);
    }
    json_object_put(arr);
    return st;
}

#define TU_A_START \
    "[\"message_start\",{\"type\":\"message_start\",\"message\":{\"id\":" \
    "\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\"," \
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-1\"," \
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{" \
    "\"input_tokens\":25,\"output_tokens\":1}}}]"
#define TU_A_PING "[\"ping\",{\"type\":\"ping\"}]"
#define TU_A_BLOCK_START(i, block) \
    "[\"content_block_start\",{\"type\":\"content_block_start\",\"index\":" \
    #i ",\"content_block\":" block "}]"
#define TU_A_DELTA(i, delta) \
    "[\"content_block_delta\",{\"type\":\"content_block_delta\",\"index\":" \
    #i ",\"delta\":" delta "}]"
#define TU_A_BLOCK_STOP(i) \
    "[\"content_block_stop\",{\"type\":\"content_block_stop\",\"index\":" \
    #i "}]"
#define TU_A_END(reason, out) \
    "[\"message_delta\",{\"type\":\"message_delta\",\"delta\":{" \
    "\"stop_reason\":\"" reason "\",\"stop_sequence\":null},\"usage\":{" \
    "\"output_tokens\":" #out "}}],[\"message_stop\",{\"type\":" \
    "\"message_stop\"}]"
#define TU_O_CHUNK(delta, finish) \
    "[\"\",{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"object\":" \
    "\"chat.completion.chunk\",\"created\":1694268190,\"model\":" \
    "\"my-model\",\"choices\":[{\"index\":0,\"delta\":" delta \
    ",\"finish_reason\":" finish "}]}]"
#define TU_O_END(finish, in, out, total) \
    "[\"\",{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"object\":" \
    "\"chat.completion.chunk\",\"created\":1694268190,\"model\":" \
    "\"my-model\",\"choices\":[{\"index\":0,\"delta\":{}," \
    "\"finish_reason\":\"" finish "\"}],\"usage\":{\"prompt_tokens\":" #in \
    ",\"completion_tokens\":" #out ",\"total_tokens\":" #total "}}]," \
    "[\"\",\"[DONE]\"]"
#define TU_O_FIRST \
    TU_O_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")

static void test_upsse_text(void)
{
    struct evbuffer *out = evbuffer_new();
    struct anthropic_upsse s;

    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_START ","
                    TU_A_BLOCK_START(0, "{\"type\":\"text\",\"text\":\"\"}")
                    "," TU_A_PING ","
                    TU_A_DELTA(0, "{\"type\":\"text_delta\",\"text\":"
                               "\"Hello\"}") ","
                    TU_A_DELTA(0, "{\"type\":\"text_delta\",\"text\":\"!\"}")
                    "," TU_A_BLOCK_STOP(0) "," TU_A_END("end_turn", 15) "]",
                    out), ANTHROPIC_UPSSE_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TU_O_FIRST ","
                   TU_O_CHUNK("{\"content\":\"Hello\"}", "null") ","
                   TU_O_CHUNK("{\"content\":\"!\"}", "null") ","
                   TU_O_END("stop", 25, 15, 40) "]"));
    CU_ASSERT_EQUAL(anthropic_upsse_end(&s), ANTHROPIC_UPSSE_DONE);
    evbuffer_free(out);
}

static void test_upsse_tool_use(void)
{
    struct evbuffer *out = evbuffer_new();
    struct anthropic_upsse s;

    /* Anthropic's streamed tool use: text block 0, tool_use block 1
     * with its input in pieces; thinking skipped. */
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_START ","
                    TU_A_BLOCK_START(0, "{\"type\":\"thinking\","
                                     "\"thinking\":\"\"}") ","
                    TU_A_DELTA(0, "{\"type\":\"thinking_delta\","
                               "\"thinking\":\"hm\"}") ","
                    TU_A_BLOCK_STOP(0) ","
                    TU_A_BLOCK_START(1, "{\"type\":\"text\",\"text\":\"\"}")
                    "," TU_A_DELTA(1, "{\"type\":\"text_delta\",\"text\":"
                                   "\"Okay\"}") ","
                    TU_A_BLOCK_STOP(1) ","
                    TU_A_BLOCK_START(2, "{\"type\":\"tool_use\",\"id\":"
                                     "\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\","
                                     "\"name\":\"get_weather\",\"input\":{}}")
                    "," TU_A_DELTA(2, "{\"type\":\"input_json_delta\","
                                   "\"partial_json\":\"\"}") ","
                    TU_A_DELTA(2, "{\"type\":\"input_json_delta\","
                               "\"partial_json\":\"{\\\"location\\\": "
                               "\\\"San Fra\"}") ","
                    TU_A_DELTA(2, "{\"type\":\"input_json_delta\","
                               "\"partial_json\":\"ncisco, CA\\\"}\"}") ","
                    TU_A_BLOCK_STOP(2) "," TU_A_END("tool_use", 89) "]",
                    out), ANTHROPIC_UPSSE_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TU_O_FIRST ","
                   TU_O_CHUNK("{\"content\":\"Okay\"}", "null") ","
                   TU_O_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":"
                              "\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"type\":"
                              "\"function\",\"function\":{\"name\":"
                              "\"get_weather\",\"arguments\":\"\"}}]}",
                              "null") ","
                   TU_O_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{"
                              "\"arguments\":\"{\\\"location\\\": \\\"San "
                              "Fra\"}}]}", "null") ","
                   TU_O_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{"
                              "\"arguments\":\"ncisco, CA\\\"}\"}}]}",
                              "null") ","
                   TU_O_END("tool_calls", 25, 89, 114) "]"));
    evbuffer_free(out);
}

static void test_upsse_failures(void)
{
    struct evbuffer *out = evbuffer_new();
    struct anthropic_upsse s;

    /* An error event mid-stream: nothing written for it, the caller
     * reports type and message. */
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_START ",[\"error\",{\"type\":"
                    "\"error\",\"error\":{\"type\":\"overloaded_error\","
                    "\"message\":\"Overloaded\"}}]]", out),
                    ANTHROPIC_UPSSE_FAILED);
    CU_ASSERT_STRING_EQUAL(s.error_type, "overloaded_error");
    CU_ASSERT_STRING_EQUAL(s.error_message, "Overloaded");
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TU_O_FIRST "]"));
    /* Cut before message_stop. */
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_START ","
                    TU_A_BLOCK_START(0, "{\"type\":\"text\",\"text\":\"\"}")
                    "]", out), ANTHROPIC_UPSSE_MORE);
    CU_ASSERT_EQUAL(anthropic_upsse_end(&s), ANTHROPIC_UPSSE_FAILED);
    CU_ASSERT_STRING_EQUAL(s.error_type, "api_error");
    /* Out of order, not JSON, an index past the bound. */
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_DELTA(0, "{\"type\":"
                    "\"text_delta\",\"text\":\"x\"}") "]", out),
                    ANTHROPIC_UPSSE_FAILED);
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(anthropic_upsse_feed(&s, "", "{oops", 5, out),
                    ANTHROPIC_UPSSE_FAILED);
    anthropic_upsse_init(&s, "my-model", TU_CREATED);
    CU_ASSERT_EQUAL(tu_feed(&s, "[" TU_A_START ","
                    TU_A_BLOCK_START(4096, "{\"type\":\"text\"}") "]", out),
                    ANTHROPIC_UPSSE_FAILED);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_free(out);
}

static void test_err_classify(void)
{
    struct anthropic_err_info e;
    static const char overloaded[] = "{\"type\":\"error\",\"error\":{"
        "\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    static const char limited[] = "{\"type\":\"error\",\"error\":{\"type\":"
        "\"rate_limit_error\",\"message\":\"Number of request tokens has "
        "exceeded your per-minute rate limit\"}}";
    static const char bad[] = "{\"type\":\"error\",\"error\":{\"type\":"
        "\"invalid_request_error\",\"message\":\"max_tokens: Field "
        "required\"},\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}";

    anthropic_err_classify(529, overloaded, strlen(overloaded), NULL, &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_OVERLOADED);
    CU_ASSERT_STRING_EQUAL(e.type, "overloaded_error");
    CU_ASSERT_STRING_EQUAL(e.message, "Overloaded");
    CU_ASSERT_EQUAL(e.retry_after_ms, -1);
    CU_ASSERT_EQUAL(anthropic_err_openai_status(&e), 503);
    anthropic_err_classify(429, limited, strlen(limited), " 30 ", &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_RATE_LIMIT);
    CU_ASSERT_EQUAL(e.retry_after_ms, 30000);
    CU_ASSERT_EQUAL(anthropic_err_openai_status(&e), 429);
    anthropic_err_classify(400, bad, strlen(bad), "soon", &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_CLIENT);
    CU_ASSERT_STRING_EQUAL(e.message, "max_tokens: Field required");
    CU_ASSERT_EQUAL(e.retry_after_ms, -1);
    CU_ASSERT_EQUAL(anthropic_err_openai_status(&e), 400);
    anthropic_err_classify(500, "<html>\nBad\tgateway</html>", 25, NULL,
                           &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_SERVER);
    CU_ASSERT_STRING_EQUAL(e.message, "<html> Bad gateway</html>");
    CU_ASSERT_EQUAL(anthropic_err_openai_status(&e), 502);
    /* An overloaded_error under another status is still overload. */
    anthropic_err_classify(503, overloaded, strlen(overloaded), "1.5", &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_OVERLOADED);
    CU_ASSERT_EQUAL(e.retry_after_ms, 1500);
    anthropic_err_classify(408, "", 0, NULL, &e);
    CU_ASSERT_EQUAL(e.cls, ANTHROPIC_ERR_SERVER);
    CU_ASSERT_STRING_EQUAL(e.message, "");
}

static const CU_TestInfo anthropic_up_tests[] = {
    { "request: system, default max_tokens, images",
      test_up_request_basic },
    { "request: tools and results over two turns", test_up_request_tools },
    { "request: refusals", test_up_request_refusals },
    { "answer: text, tool use, every stop reason", test_up_answer },
    { "stream: text", test_upsse_text },
    { "stream: tool use", test_upsse_tool_use },
    { "stream: error event, cut, disorder", test_upsse_failures },
    { "error answers classified", test_err_classify },
    CU_TEST_INFO_NULL
};

int register_anthropic_up_tests(void)
{
    return unit_add_suite("anthropic_up", anthropic_up_tests);
}
