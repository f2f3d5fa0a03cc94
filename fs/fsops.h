/*
 * fsops — dynamofs's FUSE operations (libfuse3 high-level, path based) over
 * fskv and fsfile: lookups through directory objects, sibling entries
 * (name.vK), the namespace operations (create, mkdir, unlink, rmdir,
 * rename, symlink), attributes, xattrs and statfs.  Option parsing and the
 * main loop are dynamofs.c's.
 *
 * Unsupported: hard links (link fails with EPERM), device and FIFO nodes
 * (mknod of anything but a regular file fails with EPERM), RENAME_EXCHANGE
 * (EINVAL), xattrs outside the user. namespace (get: ENODATA, set:
 * ENOTSUP).
 */
#ifndef DYN_FSOPS_H
#define DYN_FSOPS_H

#define FUSE_USE_VERSION 31

#include <stddef.h>
#include <stdint.h>

#include <fuse.h>

#include "auth.h"
#include "cred.h"

/* What the mount needs; the cluster client is made in the init callback,
 * after libfuse forked into the background. */
struct fsops_config {
	char **nodes; /* tcp:// addresses */
	size_t nnodes;
	char *nodes_text; /* the same, comma separated */
	struct auth_keys keys;
	struct cred *cred;   /* mutual TLS with it (loaded before the fork;
	                        its nng TLS setup is made in init, after);
	                        NULL: plain tcp */
	int timeout_ms;      /* per request and node */
	bool no_routing;     /* only the given nodes, never by the ring */
	uint32_t chunk_size; /* bytes per chunk */
	uint32_t inline_max; /* largest file stored inline */
	uint32_t cache_size; /* bytes of content cached */
	int init_failed;     /* set by init when the client could not start */
};

/* The collector's grace period assumed when no node tells it (the nodes'
 * default: an hour). */
#define FSOPS_GRACE_DEFAULT_S 3600

/* The operations; private_data of fuse_main must be the fsops_config. */
const struct fuse_operations *fsops_operations(void);

#endif
