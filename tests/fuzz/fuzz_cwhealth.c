/* fuzz_cwhealth.c - libFuzzer target for the health results cluster
 * mode's instances send each other (cwhealth.c): the input is read as a
 * message from the health channel or the stored key. One that decodes
 * must encode back to the very same bytes and read the same again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cwhealth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cwh_result r, again;
    char text[CWH_MSG_MAX];

    if (cwh_decode((const char *)data, size, &r) < 0)
        return 0;
    FUZZ_CHECK(cwh_encode(text, sizeof(text), &r) == 0,
               "a decoded result does not encode");
    FUZZ_CHECK(strlen(text) == size && memcmp(text, data, size) == 0,
               "the round trip changed the bytes");
    FUZZ_CHECK(cwh_decode(text, strlen(text), &again) == 0 &&
               memcmp(&r, &again, sizeof(r)) == 0,
               "the re-encoded result reads differently");
    return 0;
}
