/*
 * ca — a cluster's certificate authority in a directory, and issuing
 * credentials (cred.h) from it, with OpenSSL's X.509 API (dynamoctl ca).
 * Loading and using a credential is cred.h's.
 *
 * DIR/ca.pem       the CA certificate (EC P-256, self-signed, 20 years)
 * DIR/ca.key       its private key (PKCS#8, mode 0600)
 * DIR/cluster.key  the cluster's master key (auth.h's key file, 0600),
 *                  from which every credential's role keys are derived
 */
#ifndef DYN_CA_H
#define DYN_CA_H

#include <stddef.h>

#include "auth.h"

#define CA_CERT_FILE   "ca.pem"
#define CA_KEY_FILE    "ca.key"
#define CA_MASTER_FILE "cluster.key"
#define CA_NEXT_KEY_FILE "next.key" /* a rotation's new CA key, begun */
#define CA_PREV_KEY_FILE "prev.key" /* the old CA key, switched from */

/* Make the CA in dir (created, mode 0700, if missing).  -EEXIST when
 * any of the three files exists (nothing is overwritten, nothing
 * written); else -errno, -ENOMEM, or -EIO for an OpenSSL failure.  The
 * reason is in err either way. */
int ca_init(const char *dir, char *err, size_t errlen);

struct ca_issue_opts {
	const char *name;        /* the certificate's CN, 1..63 bytes */
	enum auth_role role;     /* its OU, and the role keys it gets */
	const char *const *hosts; /* subjectAltName: an IPv4/IPv6 address
	                             is an IP entry, anything else DNS */
	size_t nhosts;
	unsigned days; /* validity; 0: 5 years */
};

/* Issue a credential from the CA in dir into the new file out (mode
 * 0600; -EEXIST if it exists): a fresh EC P-256 key, its certificate
 * signed by the CA (serverAuth and clientAuth), the CA certificate(s) of
 * DIR/ca.pem, the role keys derived from DIR/cluster.key.  0 or an
 * error, the reason in err. */
int ca_issue(const char *dir, const struct ca_issue_opts *o, const char *out,
    char *err, size_t errlen);

/*
 * Rotating the CA and the master key without downtime: three steps, a
 * rolling restart with credentials issued anew after each:
 *   begin   a new CA (next.key) and master key: ca.pem holds the old CA
 *           then the new, cluster.key the old key then the new, and the
 *           blob key (blobs keep their names).  Issued credentials are
 *           signed by the old CA, trust both, sign with the old key and
 *           accept the new: they work with the credentials of before.
 *   switch  the new CA and key come first (ca.key is the new CA's; the
 *           old is prev.key): credentials signed by the new CA, trusting
 *           both, signing with the new key and accepting the old.
 *   finish  the old CA and key are dropped (prev.key removed).
 * Roll every node and client onto the credentials of one step before
 * taking the next.  -EINVAL (reason in err) for a step out of order.
 */
enum ca_rotate_step { CA_ROTATE_BEGIN, CA_ROTATE_SWITCH, CA_ROTATE_FINISH };
int ca_rotate(const char *dir, enum ca_rotate_step step, char *err,
    size_t errlen);

#endif
