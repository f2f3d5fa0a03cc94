/*
 * err — the project's error codes and their one strerror.
 *
 * Every function returns 0 (or a count) on success and a negative code on
 * failure: either a negative errno (-ENOENT, -ENOMEM, -ENOSPC, ...) or one of
 * the project's own codes below, which live far from errno's range.  Library
 * codes are translated once, at the boundary (err_from_nng here, the LMDB
 * one in node/store.c).
 */
#ifndef DYN_ERR_H
#define DYN_ERR_H

enum {
	DYN_ERR_BASE = -10000,
	DYN_EBADMSG = DYN_ERR_BASE, /* malformed or inconsistent message */
	DYN_EAUTH,     /* message or context tag missing or wrong */
	DYN_ECONTEXT,  /* context is not one this cluster issued */
	DYN_EQUORUM,   /* fewer than R/W replicas answered */
	DYN_ETIMEDOUT, /* no answer within the deadline */
	DYN_EUNREACH,  /* peer could not be reached */
	DYN_ETOOBIG,   /* key, value or message over its cap */
	DYN_EPROTO,    /* peer speaks another protocol version */
	DYN_ESIBLINGS, /* more than one live version (dynamoctl get) */
	DYN_ECLOSED,   /* the process is shutting down */
	DYN_EREPLAY,   /* a message seen before (a replay), refused */
	DYN_ESTALE,    /* a message timed outside the window (clock skew?) */
	DYN_EROLE,     /* the credential's role may not ask this */
	DYN_EREFUSED,  /* the node refused the request unread: its tag did
	                  not check (an unsigned answer, common/refusal.h) */
	DYN_ETLS,      /* the TLS handshake with the node failed */
	DYN_ERR_END,
};

/* Text for any code this project returns (negative errno or DYN_E*).
 * The string is static; never freed. */
const char *dyn_strerror(int err);

#include <stddef.h>

/* Write a message into a caller's error buffer (err may be NULL, cap 0:
 * nothing is written). */
void err_say(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Translate an nng error (NNG_E*) into a project code. 0 stays 0. */
int err_from_nng(int nng_rv);

#endif
