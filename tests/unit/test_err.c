/* Unit tests for common/err: messages and the nng translation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <nng/nng.h>

#include "err.h"

static void
test_every_code_has_a_message(void **state)
{
	(void)state;
	assert_true(DYN_ERR_END > DYN_ERR_BASE);
	for (int e = DYN_ERR_BASE; e < DYN_ERR_END; e++) {
		const char *m = dyn_strerror(e);

		assert_non_null(m);
		assert_true(strlen(m) > 0);
		for (int f = DYN_ERR_BASE; f < e; f++)
			assert_string_not_equal(m, dyn_strerror(f));
	}
}

static void
test_named_codes(void **state)
{
	static const int codes[] = {DYN_EBADMSG, DYN_EAUTH,     DYN_ECONTEXT,
	                            DYN_EQUORUM, DYN_ETIMEDOUT, DYN_EUNREACH,
	                            DYN_ETOOBIG, DYN_EPROTO,    DYN_ESIBLINGS,
	                            DYN_ECLOSED, DYN_EREPLAY,   DYN_ESTALE,
	                            DYN_EROLE,   DYN_EREFUSED,  DYN_ETLS};

	(void)state;
	/* Every named code is in range and far from errno's. */
	assert_int_equal(sizeof(codes) / sizeof(codes[0]),
	                 DYN_ERR_END - DYN_ERR_BASE);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(codes[i] >= DYN_ERR_BASE);
		assert_true(codes[i] < DYN_ERR_END);
		assert_true(codes[i] < -4096);
	}
}

static void
test_errno_and_others(void **state)
{
	(void)state;
	assert_string_equal(dyn_strerror(0), "success");
	assert_string_equal(dyn_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(dyn_strerror(-ENOSPC), strerror(ENOSPC));
	assert_non_null(dyn_strerror(1));
	assert_non_null(dyn_strerror(DYN_ERR_END));
	assert_non_null(dyn_strerror(DYN_ERR_BASE - 1));
}

static void
test_from_nng(void **state)
{
	static const struct {
		int nng;
		int want;
	} map[] = {
	    {0, 0},
	    {NNG_ETIMEDOUT, DYN_ETIMEDOUT},
	    {NNG_ECONNREFUSED, DYN_EUNREACH},
	    {NNG_ECONNRESET, DYN_EUNREACH},
	    {NNG_ECONNABORTED, DYN_EUNREACH},
	    {NNG_EADDRINVAL, DYN_EUNREACH},
	    {NNG_EUNREACHABLE, DYN_EUNREACH},
	    {NNG_ECONNSHUT, DYN_EUNREACH},
	    {NNG_EPEERAUTH, DYN_EUNREACH},
	    {NNG_ECLOSED, DYN_ECLOSED},
	    {NNG_ECANCELED, DYN_ECLOSED},
	    {NNG_ENOMEM, -ENOMEM},
	    {NNG_EMSGSIZE, DYN_ETOOBIG},
	    {NNG_EPROTO, DYN_EPROTO},
	    {NNG_EADDRINUSE, -EADDRINUSE},
	    {NNG_EINVAL, -EINVAL},
	    {NNG_EPERM, -EPERM},
	    {NNG_EINTERNAL, -EIO},
	    {NNG_ESYSERR | 5, -EIO},
	    {NNG_EBUSY, -EIO},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(err_from_nng(map[i].nng), map[i].want);
	/* Every nng code maps to a negative code with a message. */
	for (int rv = 1; rv <= NNG_ECONNSHUT; rv++) {
		int e = err_from_nng(rv);
		assert_true(e < 0);
		assert_non_null(dyn_strerror(e));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_a_message),
	    cmocka_unit_test(test_named_codes),
	    cmocka_unit_test(test_errno_and_others),
	    cmocka_unit_test(test_from_nng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
