/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minimal checks for the unit tests: exit 1 on the first failure, 77 to skip. */
#ifndef ZC_TEST_H
#define ZC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZC_TEST_SKIP 77

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,      \
				__LINE__, #a, a_, #b, b_);                                         \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                       \
	do {                                                                                       \
		if (!strstr((haystack), (needle))) {                                               \
			fprintf(stderr, "%s:%d: '%s' does not contain '%s'\n", __FILE__, __LINE__, \
				(haystack), (needle));                                             \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || strcmp(a_, b_)) {                                                       \
			fprintf(stderr, "%s:%d: %s == '%s', expected '%s'\n", __FILE__, __LINE__,  \
				#a, a_ ? a_ : "(null)", b_);                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#endif /* ZC_TEST_H */
