#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>

static const char *const dyn_msgs[] = {
	[DYN_EBADMSG - DYN_ERR_BASE] = "malformed message",
	[DYN_EAUTH - DYN_ERR_BASE] = "authentication failed (wrong cluster key?)",
	[DYN_ECONTEXT - DYN_ERR_BASE] =
	    "context rejected (forged, corrupted or for another key)",
	[DYN_EQUORUM - DYN_ERR_BASE] = "quorum not reached",
	[DYN_ETIMEDOUT - DYN_ERR_BASE] = "timed out",
	[DYN_EUNREACH - DYN_ERR_BASE] = "node unreachable",
	[DYN_ETOOBIG - DYN_ERR_BASE] = "key, value or message too large",
	[DYN_EPROTO - DYN_ERR_BASE] = "protocol version mismatch",
	[DYN_ESIBLINGS - DYN_ERR_BASE] = "key has concurrent versions",
	[DYN_ECLOSED - DYN_ERR_BASE] = "shutting down",
	[DYN_EREPLAY - DYN_ERR_BASE] = "refused: a message seen before (replay)",
	[DYN_ESTALE - DYN_ERR_BASE] =
	    "refused: message time outside the window (clocks apart?)",
	[DYN_EROLE - DYN_ERR_BASE] =
	    "refused: the credential's role may not do this",
	[DYN_EREFUSED - DYN_ERR_BASE] =
	    "refused by the node: wrong cluster key?",
	[DYN_ETLS - DYN_ERR_BASE] =
	    "TLS handshake failed: credential and node of different CAs?",
};

void
err_say(char *err, size_t cap, const char *fmt, ...)
{
	if (!err || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

const char *
dyn_strerror(int err)
{
	if (err >= DYN_ERR_BASE && err < DYN_ERR_END)
		return dyn_msgs[err - DYN_ERR_BASE];
	if (err == 0)
		return "success";
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

int
err_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ETIMEDOUT:
		return DYN_ETIMEDOUT;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNABORTED:
	case NNG_EADDRINVAL:
	case NNG_EUNREACHABLE:
	case NNG_ECONNSHUT:
	case NNG_EPEERAUTH:
		return DYN_EUNREACH;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return DYN_ECLOSED;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EMSGSIZE:
		return DYN_ETOOBIG;
	case NNG_EPROTO:
		return DYN_EPROTO;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_EPERM:
		return -EPERM;
	default:
		return -EIO;
	}
}
