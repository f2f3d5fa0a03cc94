/*
 * cred — a process's credential: one PEM file (mode 0600) with its
 * certificate, its private key, the cluster CA certificate(s) it trusts
 * and the HMAC role keys (auth.h) of its role; loading checks every part
 * (OpenSSL's X.509 API), and cred_tls_config makes nng's TLS setup for
 * mutual TLS from it.  Making a CA and issuing credentials is ca.h's.
 *
 * The file, its blocks in this order (text outside them: blank lines):
 *   CERTIFICATE        the process's own: CN = name, OU = role
 *   PRIVATE KEY        its key (PKCS#8; ca.h makes EC P-256)
 *   CERTIFICATE        the CA to trust; a second one while rotating
 *   DYNAMO ROLE KEYS   the role keys, the binary block below in base64
 *
 * The role keys block, version 1 (integers big-endian):
 *   u8 version (1) | u8 role | u8 ngens (1 or 2)
 *   ngens x { u32 id (not 0) | u8 have (AUTH_ROLE_BIT mask) |
 *             32 bytes for each role in have, lowest role first }
 *   32 bytes: the blob key
 * A node's credential holds every role's keys (it checks every request),
 * a client's the client key, an admin's the admin key (cred_role_mask).
 */
#ifndef DYN_CRED_H
#define DYN_CRED_H

#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "auth.h"
#include "buf.h"

/* Environment variable naming the credential when --cred is absent. */
#define CRED_ENV          "DYNAMO_CRED_FILE"
#define CRED_KEYS_VERSION 1
#define CRED_KEYS_PEM     "DYNAMO ROLE KEYS"
#define CRED_NAME_MAX     63
#define CRED_MAX_CAS      2

struct cred {
	char name[CRED_NAME_MAX + 1]; /* the certificate's CN */
	enum auth_role role;          /* its OU */
	struct auth_keys keys;        /* self = role */
	/* PEM text, NUL-terminated, mem_alloc'd; owned by the cred. */
	char *cert_pem; /* own certificate */
	char *key_pem;  /* its private key */
	char *ca_pem;   /* the CA certificate(s), nca of them */
	unsigned nca;
};

/* Read and check the credential at path: the layout above, the key
 * matching the certificate, the certificate issued by one of the CAs and
 * valid now, a role the keys block agrees with, group and others without
 * access to the file.  0, or an error with its reason in err
 * ("FILE: ..."): -errno from the file system, -EINVAL for a malformed or
 * inconsistent file, DYN_EPROTO for a role keys block of another
 * version, -ENOMEM.  cred_fini(out) is needed after a success only (a
 * failure leaves nothing to free). */
int cred_load(const char *path, struct cred *out, char *err, size_t errlen);
/* The same checks of a credential's text[0..len) (no file checks; the
 * text need not end in NUL), err without the file name. */
int cred_parse(const char *text, size_t len, struct cred *out, char *err,
    size_t errlen);
/* Free the PEM text and cleanse the keys; a zeroed cred is fine. */
void cred_fini(struct cred *c);

/* nng's TLS configuration for c: own certificate and key, c's CAs,
 * peers' certificates required and checked against those CAs (both ways:
 * mutual TLS), no host name check (nodes dial by address).  mode is
 * NNG_TLS_MODE_SERVER (listening) or NNG_TLS_MODE_CLIENT (dialing).  The
 * caller owns *out (nng_tls_config_free); dialers and listeners it is set
 * on hold their own reference.  0, or a code from err_from_nng. */
int cred_tls_config(const struct cred *c, nng_tls_mode mode,
    nng_tls_config **out);

/* The AUTH_ROLE_BIT mask of the keys a credential of role holds. */
unsigned cred_role_mask(enum auth_role role);
/* The role keys block of keys (every generation, the keys of
 * cred_role_mask(role) only), appended to out. */
void cred_keys_encode(const struct auth_keys *keys, enum auth_role role,
    struct buf *out);
/* Parse a role keys block: exactly the layout above, of a credential of
 * role.  -EINVAL (reason in err), DYN_EPROTO for another version. */
int cred_keys_decode(const void *p, size_t len, enum auth_role role,
    struct auth_keys *out, char *err, size_t errlen);

#endif
