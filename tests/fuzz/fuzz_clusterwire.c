/* fuzz_clusterwire.c - libFuzzer target for cluster mode's decoders
 * (clusterwire.c): the input is read both as a breaker message, as it
 * arrives from Redis on the channel, and as an instance's heartbeat
 * record. A message that decodes must encode back to the very same
 * bytes; a record that decodes must survive encode and decode
 * unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clusterwire.h"
#include "fuzz.h"

static void fuzz_cw_message(const char *data, size_t size)
{
    struct cw_msg msg, again;
    char text[CW_MSG_MAX];

    if (cw_decode(data, size, &msg) < 0)
        return;
    FUZZ_CHECK(cw_encode(text, sizeof(text), &msg) == 0,
               "a decoded message does not encode");
    FUZZ_CHECK(strlen(text) == size && memcmp(text, data, size) == 0,
               "the round trip changed the bytes");
    FUZZ_CHECK(cw_decode(text, strlen(text), &again) == 0 &&
               again.kind == msg.kind &&
               again.remaining_ms == msg.remaining_ms &&
               strcmp(again.origin, msg.origin) == 0 &&
               strcmp(again.name, msg.name) == 0,
               "the re-encoded message reads differently");
}

static void fuzz_cw_record(const char *data, size_t size)
{
    struct cw_instance in, again;
    char *text;

    if (cw_instance_decode(data, size, &in) < 0)
        return;
    text = cw_instance_encode(&in);
    FUZZ_CHECK(text != NULL, "out of memory");
    FUZZ_CHECK(cw_instance_decode(text, strlen(text), &again) == 0 &&
               memcmp(&in, &again, sizeof(in)) == 0,
               "a record changed in a round trip");
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cw_message((const char *)data, size);
    fuzz_cw_record((const char *)data, size);
    return 0;
}
