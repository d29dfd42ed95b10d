/* jsonscan.h - a small allocation-free JSON scanner for the hot path:
 * checks that a buffer holds exactly one well-formed JSON value, and
 * finds the value of a member of the top-level object by its raw key,
 * without building a tree. Pure. */
#ifndef RCC_JSONSCAN_H
#define RCC_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JS_MAX_DEPTH 64

/* 0 when s[0..len) is one JSON value (surrounding whitespace allowed)
 * nested at most max_depth deep; -1 otherwise. */
int js_validate(const char *s, size_t len, int max_depth);

/* As js_validate; on failure *err_pos is the byte where it went wrong
 * and *trailing says a whole value was followed by more data. */
int js_validate_at(const char *s, size_t len, int max_depth,
                   size_t *err_pos, bool *trailing);

/* For a JSON object in s: the span [*start, *end) of the value of its
 * last member named key (raw bytes; a key written with escapes does not
 * match). 1 when found, 0 when absent, -1 when s is not exactly one valid
 * object or some top-level key holds an escape (the caller should fall
 * back to a full parser). */
int js_find_member(const char *s, size_t len, const char *key,
                   size_t *start, size_t *end);

/* One pass that both validates s as exactly one JSON object (whitespace
 * around it allowed, nested at most JS_MAX_DEPTH) and finds the values
 * of several top-level members: for keys[k], [starts[k], ends[k]) of its
 * last occurrence, or ends[k] == 0 when absent. Returns how many keys
 * were found, or -1 when s is not such an object or a top-level key
 * holds an escape (then validate with js_validate to tell which). */
int js_find_members(const char *s, size_t len, const char *const *keys,
                    size_t nkeys, size_t *starts, size_t *ends);

/* As js_find_members, and counts[k] says how many times keys[k] occurs
 * (counts may be NULL). */
int js_count_members(const char *s, size_t len, const char *const *keys,
                     size_t nkeys, size_t *starts, size_t *ends,
                     unsigned *counts);

/* For the JSON array at the start of s (a valid one: this finds the
 * elements, it does not check what follows the array): fn for each
 * element's span, in order, stopping at the first non-zero return, which
 * is returned. 0 when every element was seen, -1 when s holds no array. */
int js_array_each(const char *s, size_t len,
                  int (*fn)(void *arg, size_t index, const char *value,
                            size_t value_len),
                  void *arg);

/* The integer at s[0..len) (a JSON number without fraction), or def. */
long long js_int(const char *s, size_t len, long long def);

#endif
