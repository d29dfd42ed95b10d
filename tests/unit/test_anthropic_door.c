/* test_anthropic_door.c - the Anthropic door's translation in front of
 * OpenAI-format targets, on recorded pairs written from Anthropic's
 * Messages API reference and OpenAI's chat-completions reference: the
 * request (text, system, images, several blocks, tools over two turns,
 * tool_choice, parameters) and its refusals, count_tokens, the plain
 * answer with every stop reason, the stream (text, text then tool calls,
 * interleaved tool calls, usage, truncation, upstream errors), and the
 * error bodies. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <json-c/json.h>

#include "anthropic_check.h"
#include "anthropic_err.h"
#include "anthropic_msg.h"
#include "anthropic_req.h"
#include "anthropic_stream.h"
#include "unit.h"

/* Translates body and compares with want; info when not NULL. */
static void td_req(const char *body, const char *want,
                   struct anthropic_req_info *info)
{
    char *out = NULL, err[ANTHROPIC_REQ_ERR_MAX];
    size_t len = 0;
    int rc = anthropic_req_to_openai(body, strlen(body), &out, &len, info,
                                     err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "\nrefused: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(strlen(out), len);
    CU_ASSERT_TRUE(ac_json_eq(out, len, want));
    free(out);
}

/* body is refused with a message holding want. */
static void td_refused(const char *body, const char *want)
{
    char *out = (char *)1, err[ANTHROPIC_REQ_ERR_MAX];
    size_t len = 1;
    int rc = anthropic_req_to_openai(body, strlen(body), &out, &len, NULL,
                                     err, sizeof(err));

    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NULL(out);
    if (strstr(err, want) == NULL)
        fprintf(stderr, "\nbody %s\nmessage \"%s\" lacks \"%s\"\n", body,
                err, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
}

static void test_req_basic(void)
{
    struct anthropic_req_info info;

    /* Anthropic's first example, system as a string. */
    td_req("{\"model\":\"claude-sonnet-4-20250514\",\"max_tokens\":1024,"
           "\"system\":\"You are a helpful assistant.\",\"messages\":[{"
           "\"role\":\"user\",\"content\":\"Hello, world\"}]}",
           "{\"model\":\"claude-sonnet-4-20250514\",\"max_tokens\":1024,"
           "\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
           "helpful assistant.\"},{\"role\":\"user\",\"content\":\"Hello, "
           "world\"}]}", &info);
    CU_ASSERT_FALSE(info.stream);
    CU_ASSERT_STRING_EQUAL(info.model, "claude-sonnet-4-20250514");
    CU_ASSERT_EQUAL(info.max_tokens, 1024);
    /* System as text blocks (with cache_control, ignored); parameters. */
    td_req("{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":"
           "\"text\",\"text\":\"A\"},{\"type\":\"text\",\"text\":\"B\","
           "\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{"
           "\"role\":\"user\",\"content\":\"hi\"}],\"stop_sequences\":["
           "\"END\",\"\\n\\nHuman:\"],\"temperature\":0.5,\"top_p\":1,"
           "\"top_k\":5,\"metadata\":{\"user_id\":\"u-1\"},\"stream\":true}",
           "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":"
           "\"system\",\"content\":\"A\\nB\"},{\"role\":\"user\",\"content\":"
           "\"hi\"}],\"stop\":[\"END\",\"\\n\\nHuman:\"],\"temperature\":0.5,"
           "\"top_p\":1,\"user\":\"u-1\",\"stream\":true,\"stream_options\":"
           "{\"include_usage\":true}}", &info);
    CU_ASSERT_TRUE(info.stream);
    /* stream false: no stream_options; an empty stop list is dropped. */
    td_req("{\"model\":\"m\",\"max_tokens\":5,\"stream\":false,"
           "\"stop_sequences\":[],\"messages\":[{\"role\":\"user\","
           "\"content\":\"hi\"}]}",
           "{\"model\":\"m\",\"max_tokens\":5,\"stream\":false,\"messages\":"
           "[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
}

static void test_req_blocks_and_images(void)
{
    /* One text block stays a string; several blocks and images become
     * parts, base64 as a data: URL, url as it is. */
    td_req("{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"only\"}]},"
           "{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\","
           "\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
           "\"media_type\":\"image/jpeg\",\"data\":\"/9j/4AAQSkZJRg==\"}},"
           "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
           "\"https://upload.wikimedia.org/a.jpg\"}},{\"type\":\"text\","
           "\"text\":\"Describe this image.\"}]}]}",
           "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"user\",\"content\":\"only\"},{\"role\":\"assistant\","
           "\"content\":\"ok\"},{\"role\":\"user\",\"content\":[{\"type\":"
           "\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,"
           "/9j/4AAQSkZJRg==\"}},{\"type\":\"image_url\",\"image_url\":{"
           "\"url\":\"https://upload.wikimedia.org/a.jpg\"}},{\"type\":"
           "\"text\",\"text\":\"Describe this image.\"}]}]}", NULL);
    /* Several text blocks: parts. Role order is the target's business:
     * two user turns pass as they are. Thinking blocks are dropped. */
    td_req("{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{"
           "\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"user\","
           "\"content\":\"c\"},{\"role\":\"assistant\",\"content\":[{"
           "\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"x\"},"
           "{\"type\":\"text\",\"text\":\"d\"}]}]}",
           "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{"
           "\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"user\","
           "\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]}",
           NULL);
}

/* Anthropic's get_weather example over two turns. */
#define TD_WEATHER_TOOL \
    "{\"name\":\"get_weather\",\"description\":\"Get the current weather " \
    "in a given location\",\"input_schema\":{\"type\":\"object\"," \
    "\"properties\":{\"location\":{\"type\":\"string\",\"description\":" \
    "\"The city and state, e.g. San Francisco, CA\"}},\"required\":[" \
    "\"location\"]}}"
#define TD_WEATHER_FN \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"," \
    "\"description\":\"Get the current weather in a given location\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{" \
    "\"type\":\"string\",\"description\":\"The city and state, e.g. San " \
    "Francisco, CA\"}},\"required\":[\"location\"]}}}"

static void test_req_tools_two_turns(void)
{
    /* Turn 1: the tools and the question. */
    td_req("{\"model\":\"claude-opus-4-1\",\"max_tokens\":1024,\"tools\":["
           TD_WEATHER_TOOL "],\"tool_choice\":{\"type\":\"auto\"},"
           "\"messages\":[{\"role\":\"user\",\"content\":\"What is the "
           "weather like in San Francisco?\"}]}",
           "{\"model\":\"claude-opus-4-1\",\"max_tokens\":1024,\"tools\":["
           TD_WEATHER_FN "],\"tool_choice\":\"auto\",\"messages\":[{"
           "\"role\":\"user\",\"content\":\"What is the weather like in San "
           "Francisco?\"}]}", NULL);
    /* Turn 2: the assistant's tool_use and the user's tool_result, ids
     * kept; the text after the result follows the tool message. */
    td_req("{\"model\":\"claude-opus-4-1\",\"max_tokens\":1024,\"tools\":["
           TD_WEATHER_TOOL "],\"messages\":[{\"role\":\"user\",\"content\":"
           "\"What is the weather like in San Francisco?\"},{\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"I "
           "need to use get_weather.\"},{\"type\":\"tool_use\",\"id\":"
           "\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"get_weather\","
           "\"input\":{\"location\":\"San Francisco, CA\",\"unit\":"
           "\"celsius\"}}]},{\"role\":\"user\",\"content\":[{\"type\":"
           "\"tool_result\",\"tool_use_id\":\"toolu_01A09q90qw90lq917835lq9\","
           "\"content\":\"15 degrees\"},{\"type\":\"text\",\"text\":"
           "\"Thanks\"}]}]}",
           "{\"model\":\"claude-opus-4-1\",\"max_tokens\":1024,\"tools\":["
           TD_WEATHER_FN "],\"messages\":[{\"role\":\"user\",\"content\":"
           "\"What is the weather like in San Francisco?\"},{\"role\":"
           "\"assistant\",\"content\":\"I need to use get_weather.\","
           "\"tool_calls\":[{\"id\":\"toolu_01A09q90qw90lq917835lq9\","
           "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
           "\"arguments\":\"{\\\"location\\\":\\\"San Francisco, CA\\\","
           "\\\"unit\\\":\\\"celsius\\\"}\"}}]},{\"role\":\"tool\","
           "\"tool_call_id\":\"toolu_01A09q90qw90lq917835lq9\",\"content\":"
           "\"15 degrees\"},{\"role\":\"user\",\"content\":\"Thanks\"}]}",
           NULL);
    /* Two parallel calls; results as blocks, one an error holding an
     * image (the image follows the tool messages in a user message). */
    td_req("{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
           "\"name\":\"a\",\"input\":{}},{\"type\":\"tool_use\",\"id\":"
           "\"t2\",\"name\":\"b\",\"input\":{\"x\":[1,2]}}]},{\"role\":"
           "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
           "\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"l1\"},{"
           "\"type\":\"text\",\"text\":\"l2\"}]},{\"type\":\"tool_result\","
           "\"tool_use_id\":\"t2\",\"is_error\":true,\"content\":[{\"type\":"
           "\"text\",\"text\":\"boom\"},{\"type\":\"image\",\"source\":{"
           "\"type\":\"url\",\"url\":\"http://i/x.png\"}}]}]}]}",
           "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":"
           "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t1\","
           "\"type\":\"function\",\"function\":{\"name\":\"a\","
           "\"arguments\":\"{}\"}},{\"id\":\"t2\",\"type\":\"function\","
           "\"function\":{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":[1,2]}\"}}"
           "]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":"
           "\"l1\\nl2\"},{\"role\":\"tool\",\"tool_call_id\":\"t2\","
           "\"content\":\"Error: boom\"},{\"role\":\"user\",\"content\":[{"
           "\"type\":\"image_url\",\"image_url\":{\"url\":\"http://i/x.png\""
           "}}]}]}", NULL);
}

static void test_req_tool_choice(void)
{
    static const char *const cases[][2] = {
        { "{\"type\":\"any\"}", "\"tool_choice\":\"required\"" },
        { "{\"type\":\"none\"}", "\"tool_choice\":\"none\"" },
        { "{\"type\":\"tool\",\"name\":\"get_weather\"}",
          "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
          "\"get_weather\"}}" },
        { "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}",
          "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false" },
    };
    char body[2048], want[2048];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":1,"
                 "\"tools\":[" TD_WEATHER_TOOL "],\"tool_choice\":%s,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 cases[i][0]);
        snprintf(want, sizeof(want), "{\"model\":\"m\",\"max_tokens\":1,"
                 "\"tools\":[" TD_WEATHER_FN "],%s,\"messages\":[{\"role\":"
                 "\"user\",\"content\":\"x\"}]}", cases[i][1]);
        td_req(body, want, NULL);
    }
}

static void test_req_refusals(void)
{
    td_refused("", "not valid JSON");
    td_refused("{\"model\":\"m\"} x", "not valid JSON");
    td_refused("[]", "must be a JSON object");
    td_refused("{\"max_tokens\":1,\"messages\":[{\"role\":\"user\","
               "\"content\":\"x\"}]}", "model: Field required");
    td_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"x\"}]}", "max_tokens: Field required");
    td_refused("{\"model\":\"m\",\"max_tokens\":\"9\",\"messages\":[{"
               "\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens: must");
    td_refused("{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{"
               "\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens: must");
    td_refused("{\"model\":\"m\",\"max_tokens\":1}", "messages: Field");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}",
               "at least one");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"system\",\"content\":\"x\"}]}", "messages.0.role");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"user\",\"content\":5}]}", "messages.0.content: must");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"document\"}]}]}",
               "messages.0.content.0.type: \"document\"");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"image\",\"source\":{"
               "\"type\":\"file\"}}]}]}", "source.type");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
               "\"t\",\"name\":\"n\",\"input\":[]}]}]}", "input: Field");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"tool_result\"}]}]}",
               "tool_use_id");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"stream\":1,\"messages\":"
               "[{\"role\":\"user\",\"content\":\"x\"}]}", "stream: must");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"tools\":[{\"name\":"
               "\"t\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "input_schema");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"tool_choice\":{\"type\":"
               "\"all\"},\"messages\":[{\"role\":\"user\",\"content\":"
               "\"x\"}]}", "tool_choice.type");
    td_refused("{\"model\":\"m\",\"max_tokens\":1,\"system\":[{\"type\":"
               "\"image\"}],\"messages\":[{\"role\":\"user\",\"content\":"
               "\"x\"}]}", "system.0");
}

static void test_count_tokens(void)
{
    char err[ANTHROPIC_REQ_ERR_MAX];
    long long n = -1;
    /* 8 + 6 bytes of text = 4 tokens, 2 messages x 3, 1 image x 1600. */
    static const char body[] =
        "{\"model\":\"m\",\"system\":\"12345678\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"abcdef\"},{\"role\":\"user\",\"content\":[{"
        "\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"u\"}}]}]}";

    CU_ASSERT_EQUAL(anthropic_req_count_tokens(body, strlen(body), &n, err,
                                               sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 4 + 2 * ANTHROPIC_REQ_MESSAGE_TOKENS +
                    ANTHROPIC_REQ_IMAGE_TOKENS);
    CU_ASSERT_EQUAL(anthropic_req_count_tokens("{}", 2, &n, err,
                                               sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "model"));
}

/* The answer to body (choices[0]) translated, compared with want. */
static void td_answer(const char *body, const char *want)
{
    char *out = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(anthropic_msg_from_openai(body, strlen(body),
                          "claude-x", "req-1", &out, &len), 0);
    CU_ASSERT_TRUE(ac_json_eq(out, len, want));
    free(out);
}

#define TD_ANSWER(msg, finish) \
    "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\",\"created\":" \
    "1677652288,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0," \
    "\"message\":" msg ",\"logprobs\":null,\"finish_reason\":" finish \
    "}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12," \
    "\"total_tokens\":21}}"
#define TD_MESSAGE(content, reason, seq) \
    "{\"id\":\"msg_req-1\",\"type\":\"message\",\"role\":\"assistant\"," \
    "\"model\":\"claude-x\",\"content\":" content ",\"stop_reason\":" \
    reason ",\"stop_sequence\":" seq ",\"usage\":{\"input_tokens\":9," \
    "\"output_tokens\":12}}"
#define TD_HELLO "{\"role\":\"assistant\",\"content\":\"Hello there!\"}"
#define TD_HELLO_BLOCK "[{\"type\":\"text\",\"text\":\"Hello there!\"}]"

static void test_answer_stop_reasons(void)
{
    td_answer(TD_ANSWER(TD_HELLO, "\"stop\""),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"end_turn\"", "null"));
    td_answer(TD_ANSWER(TD_HELLO, "\"length\""),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"max_tokens\"", "null"));
    td_answer(TD_ANSWER(TD_HELLO, "\"content_filter\""),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"end_turn\"", "null"));
    td_answer(TD_ANSWER(TD_HELLO, "null"),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"end_turn\"", "null"));
    /* vLLM says which stop string matched. */
    td_answer(TD_ANSWER(TD_HELLO, "\"stop\",\"stop_reason\":\"END\""),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"stop_sequence\"", "\"END\""));
    /* ... and a token id when it was not a string: end_turn. */
    td_answer(TD_ANSWER(TD_HELLO, "\"stop\",\"stop_reason\":128001"),
              TD_MESSAGE(TD_HELLO_BLOCK, "\"end_turn\"", "null"));
    /* Empty content: no block. */
    td_answer(TD_ANSWER("{\"role\":\"assistant\",\"content\":\"\"}",
                        "\"stop\""),
              TD_MESSAGE("[]", "\"end_turn\"", "null"));
}

static void test_answer_tool_calls(void)
{
    /* OpenAI's function-calling example; arguments become an object. */
    td_answer(TD_ANSWER("{\"role\":\"assistant\",\"content\":null,"
                        "\"tool_calls\":[{\"id\":\"call_abc123\",\"type\":"
                        "\"function\",\"function\":{\"name\":"
                        "\"get_current_weather\",\"arguments\":\"{\\n"
                        "\\\"location\\\": \\\"Boston, MA\\\"\\n}\"}}]}",
                        "\"tool_calls\""),
              TD_MESSAGE("[{\"type\":\"tool_use\",\"id\":\"call_abc123\","
                         "\"name\":\"get_current_weather\",\"input\":{"
                         "\"location\":\"Boston, MA\"}}]", "\"tool_use\"",
                         "null"));
    /* Text then two calls (one without arguments, one invalid), and a
     * finish_reason of stop: tool calls make it tool_use. */
    td_answer(TD_ANSWER("{\"role\":\"assistant\",\"content\":\"Let me "
                        "check.\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                        "\"function\",\"function\":{\"name\":\"now\","
                        "\"arguments\":\"\"}},{\"id\":\"c2\",\"type\":"
                        "\"function\",\"function\":{\"name\":\"f\","
                        "\"arguments\":\"{\\\"a\\\":\"}}]}", "\"stop\""),
              TD_MESSAGE("[{\"type\":\"text\",\"text\":\"Let me check.\"},"
                         "{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":"
                         "\"now\",\"input\":{}},{\"type\":\"tool_use\","
                         "\"id\":\"c2\",\"name\":\"f\",\"input\":{"
                         "\"_raw_arguments\":\"{\\\"a\\\":\"}}]",
                         "\"tool_use\"", "null"));
}

static void test_answer_not_completion(void)
{
    static const char *const bad[] = {
        "", "{}", "[]", "{\"choices\":[]}", "{\"choices\":[{}]}",
        "{\"choices\":[{\"message\":\"x\"}]}", "{\"error\":{}}",
    };
    char *out = (char *)1;
    size_t len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(anthropic_msg_from_openai(bad[i], strlen(bad[i]),
                        "m", NULL, &out, &len), -1);
        CU_ASSERT_PTR_NULL(out);
    }
}

/* An Anthropic target's message and message_start answer with the
 * client's model, the rest kept. */
static void test_answer_set_model(void)
{
    static const char msg[] = "{\"id\":\"msg_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-upstream-1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"a/b\"}],"
        "\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}";
    static const char start[] = "{\"type\":\"message_start\",\"message\":"
        "{\"id\":\"msg_2\",\"model\":\"claude-upstream-1\",\"content\":[]}}";
    char *out = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(anthropic_msg_set_model(msg, strlen(msg), "smart",
                                                  &out, &len), 0);
    CU_ASSERT_EQUAL(len, strlen(out));
    CU_ASSERT_STRING_EQUAL(out, "{\"id\":\"msg_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"smart\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"a/b\"}],\"usage\":{\"input_tokens\":3,"
        "\"output_tokens\":2}}");
    free(out);
    CU_ASSERT_EQUAL_FATAL(anthropic_msg_set_model(start, strlen(start),
                                                  "smart", &out, &len), 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"type\":\"message_start\",\"message\":"
        "{\"id\":\"msg_2\",\"model\":\"smart\",\"content\":[]}}");
    free(out);
    out = (char *)1;
    CU_ASSERT_EQUAL(anthropic_msg_set_model("[1]", 3, "smart", &out, &len),
                    -1);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(anthropic_msg_set_model("{", 1, "smart", &out, &len), -1);
}

/* Feeds each of chunks (NULL-terminated) as one SSE data payload. */
static enum anthropic_stream_status td_feed(struct anthropic_stream *s,
                                            const char *const *chunks,
                                            struct evbuffer *out)
{
    enum anthropic_stream_status st = ANTHROPIC_STREAM_MORE;

    for (size_t i = 0; chunks[i] != NULL; i++)
        st = anthropic_stream_feed(s, chunks[i], strlen(chunks[i]), out);
    return st;
}

#define TD_CHUNK(delta, finish) \
    "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\"" \
    ":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":" delta \
    ",\"logprobs\":null,\"finish_reason\":" finish "}]}"
#define TD_USAGE_CHUNK \
    "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[]," \
    "\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":15," \
    "\"total_tokens\":40}}"
#define TD_EV_START \
    "[\"message_start\",{\"type\":\"message_start\",\"message\":{\"id\":" \
    "\"msg_req-1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":" \
    "\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":" \
    "null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}]"
#define TD_EV_TEXT_START(i) \
    "[\"content_block_start\",{\"type\":\"content_block_start\",\"index\":" \
    #i ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}]"
#define TD_EV_TEXT(i, t) \
    "[\"content_block_delta\",{\"type\":\"content_block_delta\",\"index\":" \
    #i ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}]"
#define TD_EV_TOOL_START(i, id, name) \
    "[\"content_block_start\",{\"type\":\"content_block_start\",\"index\":" \
    #i ",\"content_block\":{\"type\":\"tool_use\",\"id\":\"" id "\"," \
    "\"name\":\"" name "\",\"input\":{}}}]"
#define TD_EV_JSON(i, j) \
    "[\"content_block_delta\",{\"type\":\"content_block_delta\",\"index\":" \
    #i ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" j \
    "\"}}]"
#define TD_EV_STOP(i) \
    "[\"content_block_stop\",{\"type\":\"content_block_stop\",\"index\":" \
    #i "}]"
#define TD_EV_END(reason, seq, in, out) \
    "[\"message_delta\",{\"type\":\"message_delta\",\"delta\":{" \
    "\"stop_reason\":\"" reason "\",\"stop_sequence\":" seq "},\"usage\":" \
    "{\"input_tokens\":" #in ",\"output_tokens\":" #out "}}]," \
    "[\"message_stop\",{\"type\":\"message_stop\"}]"
#define TD_EV_ERROR(m) \
    "[\"error\",{\"type\":\"error\",\"error\":{\"type\":\"api_error\"," \
    "\"message\":\"" m "\"}}]"

static void test_stream_text(void)
{
    static const char *const chunks[] = {
        TD_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
        TD_CHUNK("{\"content\":\"Hello\"}", "null"),
        TD_CHUNK("{\"content\":\" \\\"world\\\"\\n\"}", "null"),
        TD_CHUNK("{}", "\"stop\""),
        TD_USAGE_CHUNK,
        "[DONE]",
        NULL
    };
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;

    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(td_feed(&s, chunks, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Hello") ","
                   TD_EV_TEXT(0, " \\\"world\\\"\\n") "," TD_EV_STOP(0) ","
                   TD_EV_END("end_turn", "null", 25, 15) "]"));
    /* Done: later input and failures write nothing. */
    CU_ASSERT_EQUAL(anthropic_stream_feed(&s, "{}", 2, out),
                    ANTHROPIC_STREAM_DONE);
    CU_ASSERT_EQUAL(anthropic_stream_fail(&s, "late", out),
                    ANTHROPIC_STREAM_DONE);
    CU_ASSERT_EQUAL(anthropic_stream_end(&s, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
    evbuffer_free(out);
}

static void test_stream_stop_reasons(void)
{
    static const char *const finish[][3] = {
        { "\"length\"", "max_tokens", "null" },
        { "\"content_filter\"", "end_turn", "null" },
        { "\"stop\",\"stop_reason\":\"END\"", "stop_sequence", "\"END\"" },
    };
    char chunk[512], want[2048];

    for (size_t i = 0; i < sizeof(finish) / sizeof(finish[0]); i++) {
        struct evbuffer *out = evbuffer_new();
        struct anthropic_stream s;

        anthropic_stream_init(&s, "req-1", "claude-x");
        snprintf(chunk, sizeof(chunk), "{\"choices\":[{\"index\":0,"
                 "\"delta\":{\"content\":\"a\"},\"finish_reason\":%s}]}",
                 finish[i][0]);
        anthropic_stream_feed(&s, chunk, strlen(chunk), out);
        CU_ASSERT_EQUAL(anthropic_stream_feed(&s, "[DONE]", 6, out),
                        ANTHROPIC_STREAM_DONE);
        snprintf(want, sizeof(want), "[" TD_EV_START ","
                 TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "a") ","
                 TD_EV_STOP(0) ",[\"message_delta\",{\"type\":"
                 "\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                 "\"stop_sequence\":%s},\"usage\":{\"input_tokens\":0,"
                 "\"output_tokens\":0}}],[\"message_stop\",{\"type\":"
                 "\"message_stop\"}]]", finish[i][1], finish[i][2]);
        CU_ASSERT_TRUE(ac_events_eq(out, want));
        evbuffer_free(out);
    }
}

static void test_stream_text_then_tools(void)
{
    /* OpenAI's streamed tool calls: id and name first, arguments in
     * pieces; text before them closes before the first call's block. */
    static const char *const chunks[] = {
        TD_CHUNK("{\"role\":\"assistant\",\"content\":\"Checking.\"}",
                 "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_DdmO9pD3xa9X"
                 "TMBhzhT3tx9\",\"type\":\"function\",\"function\":{\"name\":"
                 "\"get_weather\",\"arguments\":\"\"}}]}", "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                 "\"{\\\"location\\\":\"}}]}", "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                 "\" \\\"Paris\\\"}\"}}]}", "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":"
                 "\"function\",\"function\":{\"name\":\"get_time\","
                 "\"arguments\":\"{}\"}}]}", "null"),
        TD_CHUNK("{}", "\"tool_calls\""),
        TD_USAGE_CHUNK,
        "[DONE]",
        NULL
    };
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;

    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(td_feed(&s, chunks, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Checking.") ","
                   TD_EV_STOP(0) ","
                   TD_EV_TOOL_START(1, "call_DdmO9pD3xa9XTMBhzhT3tx9",
                                    "get_weather") ","
                   TD_EV_JSON(1, "{\\\"location\\\":") ","
                   TD_EV_JSON(1, " \\\"Paris\\\"}") ","
                   TD_EV_TOOL_START(2, "call_2", "get_time") ","
                   TD_EV_JSON(2, "{}") "," TD_EV_STOP(1) "," TD_EV_STOP(2) ","
                   TD_EV_END("tool_use", "null", 25, 15) "]"));
    evbuffer_free(out);
}

static void test_stream_interleaved_tools(void)
{
    /* Two calls whose arguments interleave by OpenAI index (both in one
     * chunk, then alternating): each piece goes to its own block. */
    static const char *const chunks[] = {
        TD_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":"
                 "{\"name\":\"fa\",\"arguments\":\"{\\\"x\\\"\"}},{\"index\":"
                 "1,\"id\":\"b\",\"function\":{\"name\":\"fb\",\"arguments\":"
                 "\"{\\\"y\\\"\"}}]}", "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":"
                 "\":2}\"}}]}", "null"),
        TD_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                 "\":1}\"}}]}", "null"),
        TD_CHUNK("{\"content\":\"done\"}", "\"tool_calls\""),
        "[DONE]",
        NULL
    };
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;

    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(td_feed(&s, chunks, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TOOL_START(0, "a", "fa") ","
                   TD_EV_JSON(0, "{\\\"x\\\"") ","
                   TD_EV_TOOL_START(1, "b", "fb") ","
                   TD_EV_JSON(1, "{\\\"y\\\"") "," TD_EV_JSON(1, ":2}") ","
                   TD_EV_JSON(0, ":1}") "," TD_EV_TEXT_START(2) ","
                   TD_EV_TEXT(2, "done") "," TD_EV_STOP(0) ","
                   TD_EV_STOP(1) "," TD_EV_STOP(2) ","
                   TD_EV_END("tool_use", "null", 0, 0) "]"));
    evbuffer_free(out);
}

static void test_stream_truncated(void)
{
    static const char *const cut[] = {
        TD_CHUNK("{\"content\":\"Hel\"}", "null"),
        "[DONE]",
        NULL
    };
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;

    /* [DONE] without a finish_reason: an error, never message_stop. */
    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(td_feed(&s, cut, out), ANTHROPIC_STREAM_FAILED);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Hel") ","
                   TD_EV_ERROR("the upstream ended its stream before the "
                               "answer was complete") "]"));
    /* EOF without [DONE] and without finish_reason: the same. */
    anthropic_stream_init(&s, "req-1", "claude-x");
    anthropic_stream_feed(&s, cut[0], strlen(cut[0]), out);
    CU_ASSERT_EQUAL(anthropic_stream_end(&s, out), ANTHROPIC_STREAM_FAILED);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Hel") ","
                   TD_EV_ERROR("the upstream stream was cut before the "
                               "answer was complete") "]"));
    /* EOF after a finish_reason: the answer was whole. */
    anthropic_stream_init(&s, "req-1", "claude-x");
    anthropic_stream_feed(&s, cut[0], strlen(cut[0]), out);
    anthropic_stream_feed(&s, TD_CHUNK("{}", "\"stop\""),
                          strlen(TD_CHUNK("{}", "\"stop\"")), out);
    CU_ASSERT_EQUAL(anthropic_stream_end(&s, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Hel") ","
                   TD_EV_STOP(0) "," TD_EV_END("end_turn", "null", 0, 0)
                   "]"));
    /* The caller's failure (a timeout) after the first byte. */
    anthropic_stream_init(&s, "req-1", "claude-x");
    anthropic_stream_feed(&s, cut[0], strlen(cut[0]), out);
    CU_ASSERT_EQUAL(anthropic_stream_fail(&s, "upstream timed out", out),
                    ANTHROPIC_STREAM_FAILED);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_START ","
                   TD_EV_TEXT_START(0) "," TD_EV_TEXT(0, "Hel") ","
                   TD_EV_ERROR("upstream timed out") "]"));
    evbuffer_free(out);
}

static void test_stream_upstream_errors(void)
{
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;
    static const char err_chunk[] =
        "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
        "\"requests\"}}";
    char many[256];

    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(anthropic_stream_feed(&s, err_chunk, strlen(err_chunk),
                                          out), ANTHROPIC_STREAM_FAILED);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_ERROR("Rate limit reached")
                   "]"));
    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(anthropic_stream_feed(&s, "{\"cho", 5, out),
                    ANTHROPIC_STREAM_FAILED);
    CU_ASSERT_TRUE(ac_events_eq(out, "[" TD_EV_ERROR("the upstream sent a "
                   "stream chunk that is not a JSON object") "]"));
    /* More tool calls than the bound: an error, not unbounded state. */
    anthropic_stream_init(&s, "req-1", "claude-x");
    for (int i = 0; i <= ANTHROPIC_STREAM_TOOLS_MAX; i++) {
        snprintf(many, sizeof(many), "{\"choices\":[{\"delta\":{"
                 "\"tool_calls\":[{\"index\":%d,\"id\":\"c\",\"function\":"
                 "{\"name\":\"f\"}}]}}]}", i);
        anthropic_stream_feed(&s, many, strlen(many), out);
    }
    CU_ASSERT_EQUAL(s.status, ANTHROPIC_STREAM_FAILED);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_free(out);
}

static void test_stream_usage_first(void)
{
    /* Targets that send usage on every chunk: message_start has the
     * prompt tokens at once; a tool call with finish_reason stop is
     * still tool_use. */
    static const char *const chunks[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
        "\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":7,"
        "\"completion_tokens\":1}}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
        "\"stop\"}],\"usage\":{\"prompt_tokens\":7,"
        "\"completion_tokens\":3}}",
        "[DONE]",
        NULL
    };
    struct evbuffer *out = evbuffer_new();
    struct anthropic_stream s;

    anthropic_stream_init(&s, "req-1", "claude-x");
    CU_ASSERT_EQUAL(td_feed(&s, chunks, out), ANTHROPIC_STREAM_DONE);
    CU_ASSERT_TRUE(ac_events_eq(out, "[[\"message_start\",{\"type\":"
                   "\"message_start\",\"message\":{\"id\":\"msg_req-1\","
                   "\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                   "\"claude-x\",\"content\":[],\"stop_reason\":null,"
                   "\"stop_sequence\":null,\"usage\":{\"input_tokens\":7,"
                   "\"output_tokens\":0}}}]," TD_EV_TOOL_START(0, "c", "f")
                   "," TD_EV_JSON(0, "{}") "," TD_EV_STOP(0) ","
                   TD_EV_END("tool_use", "null", 7, 3) "]"));
    evbuffer_free(out);
}

static void test_error_bodies(void)
{
    static const struct { int status; const char *type; } map[] = {
        { 400, "invalid_request_error" }, { 413, "invalid_request_error" },
        { 401, "authentication_error" }, { 403, "permission_error" },
        { 404, "not_found_error" }, { 429, "rate_limit_error" },
        { 502, "api_error" }, { 504, "api_error" },
        { 503, "overloaded_error" }, { 529, "overloaded_error" },
        { 500, "api_error" }, { 408, "invalid_request_error" },
    };
    char body[ANTHROPIC_ERR_BODY_MAX], small[96], tiny[16];
    json_object *parsed;
    size_t n;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        CU_ASSERT_STRING_EQUAL(anthropic_err_type(map[i].status),
                               map[i].type);
    n = anthropic_err_format(body, sizeof(body), 404,
                             "model \"x\" not found");
    CU_ASSERT_EQUAL(n, strlen(body));
    CU_ASSERT_TRUE(ac_json_eq(body, n, "{\"type\":\"error\",\"error\":{"
                   "\"type\":\"not_found_error\",\"message\":\"model \\\"x"
                   "\\\" not found\"}}"));
    /* Cut to fit, still JSON. */
    n = anthropic_err_format(small, sizeof(small), 400,
                             "a long message that cannot fit here at all");
    CU_ASSERT_TRUE(n > 0 && n < sizeof(small));
    parsed = json_tokener_parse(small);
    CU_ASSERT_PTR_NOT_NULL(parsed);
    json_object_put(parsed);
    /* Too small for the frame: empty, never half a body. */
    CU_ASSERT_EQUAL(anthropic_err_format(tiny, sizeof(tiny), 400, "x"), 0);
    CU_ASSERT_STRING_EQUAL(tiny, "");
    n = anthropic_err_event(body, sizeof(body), "cut");
    CU_ASSERT_STRING_EQUAL(body, "event: error\ndata: {\"type\":\"error\","
                           "\"error\":{\"type\":\"api_error\",\"message\":"
                           "\"cut\"}}\n\n");
    CU_ASSERT_EQUAL(n, strlen(body));
}

static const CU_TestInfo anthropic_door_tests[] = {
    { "request: text, system, parameters", test_req_basic },
    { "request: blocks and images", test_req_blocks_and_images },
    { "request: tools over two turns", test_req_tools_two_turns },
    { "request: tool_choice", test_req_tool_choice },
    { "request: refusals name the member", test_req_refusals },
    { "count_tokens estimate", test_count_tokens },
    { "answer: every stop reason", test_answer_stop_reasons },
    { "answer: tool calls", test_answer_tool_calls },
    { "answer: not a completion", test_answer_not_completion },
    { "answer: an Anthropic target's model renamed", test_answer_set_model },
    { "stream: text with usage", test_stream_text },
    { "stream: stop reasons", test_stream_stop_reasons },
    { "stream: text then tool calls", test_stream_text_then_tools },
    { "stream: interleaved tool calls", test_stream_interleaved_tools },
    { "stream: truncation is an error", test_stream_truncated },
    { "stream: upstream errors", test_stream_upstream_errors },
    { "stream: usage on the first chunk", test_stream_usage_first },
    { "error bodies", test_error_bodies },
    CU_TEST_INFO_NULL
};

int register_anthropic_door_tests(void)
{
    return unit_add_suite("anthropic_door", anthropic_door_tests);
}
