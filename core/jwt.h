/* JSON Web Token signatures (RFC 7515/7518) on OpenSSL's libcrypto: the
 * compact form's base64url, HMAC (HS256/384/512) compared in constant time,
 * and public-key signatures (RS256: RSASSA-PKCS1-v1_5; ES256: ECDSA P-256,
 * whose JWS form is raw r||s). Bytes in, bytes out: no Lua, no loop, no
 * files; no JSON either (the header and claims are parsed by the caller). */
#ifndef FLOSSE_JWT_H
#define FLOSSE_JWT_H

#include <stddef.h>

#include "buf.h"

enum flosse_jwt_alg {
  FLOSSE_JWT_HS256,
  FLOSSE_JWT_HS384,
  FLOSSE_JWT_HS512,
  FLOSSE_JWT_RS256,
  FLOSSE_JWT_ES256,
};

/* The algorithm named name (len bytes, exact case: "HS256"...), or -1 for
 * any other name ("none" included). */
int flosse_jwt_alg_from_name(const char *name, size_t len);

/* 1 for the HMAC algorithms (a shared secret), 0 for RS256/ES256. */
int flosse_jwt_alg_is_hmac(int alg);

/* The most bytes flosse_jwt_b64url_decode writes for inlen bytes. */
#define FLOSSE_JWT_B64_MAX(inlen) (((size_t)(inlen) + 3) / 4 * 3)

/* Decodes unpadded base64url (RFC 4648 §5, as JWS uses it) from in into
 * out, which has room for FLOSSE_JWT_B64_MAX(inlen) bytes; *outlen gets the
 * length. Any byte outside the URL alphabet (padding, spaces included) or
 * a length that no encoding has (4n+1) is FLOSSE_ERR. */
int flosse_jwt_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t *outlen);

/* A parsed public key (an EVP_PKEY), opaque to the callers. */
struct flosse_jwt_key;

/* Parses a PEM public key ("BEGIN PUBLIC KEY": RSA or EC P-256) of len
 * bytes. Returns the key (the caller owns it: flosse_jwt_key_free), or NULL
 * with err filled. */
struct flosse_jwt_key *flosse_jwt_key_load(const char *pem, size_t len, char *err, size_t errlen);

/* "RSA", "EC P-256" or "other". Borrowed, static. */
const char *flosse_jwt_key_type(const struct flosse_jwt_key *key);

/* Frees a key from flosse_jwt_key_load; NULL is a no-op. */
void flosse_jwt_key_free(struct flosse_jwt_key *key);

/* Checks sig (siglen bytes, already base64url-decoded) over input (the
 * token's "header.payload" text) for alg. An HMAC alg uses secret/secretlen
 * and needs key NULL; RS256/ES256 use key (an RSA key, or an EC P-256 key)
 * and need secret NULL, so that a key of one kind is never used for an
 * algorithm of the other (algorithm confusion). Returns FLOSSE_OK when the
 * signature is valid, FLOSSE_ERR with err filled otherwise. All borrowed. */
int flosse_jwt_verify(int alg, const unsigned char *secret, size_t secretlen,
                      const struct flosse_jwt_key *key, const char *input, size_t inlen,
                      const unsigned char *sig, size_t siglen, char *err, size_t errlen);

#endif
