#include "unit.h"
static const CU_TestInfo anthropic_up_tests[] = { CU_TEST_INFO_NULL };
int register_anthropic_up_tests(void)
{
    return unit_add_suite("anthropic_up", anthropic_up_tests);
}
