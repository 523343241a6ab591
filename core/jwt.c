/* JWT signatures on libcrypto (see jwt.h). No crypto is written here: the
 * HMAC, the digests, the RSA and ECDSA checks and the base64 decoder are
 * OpenSSL's; this file maps JWS's forms onto them (the URL alphabet without
 * padding, ECDSA's raw r||s onto DER) and compares MACs in constant time. */
#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flosse_jwt_key {
  EVP_PKEY *pkey;
};

static int fail(char *err, size_t errlen, const char *msg) {
  ERR_clear_error(); /* leave no stale error for the next caller on this thread */
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  return FLOSSE_ERR;
}

int flosse_jwt_alg_from_name(const char *name, size_t len) {
  static const char *const names[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (len == 5 && memcmp(name, names[i], 5) == 0) return i;
  return -1;
}

int flosse_jwt_alg_is_hmac(int alg) {
  return alg == FLOSSE_JWT_HS256 || alg == FLOSSE_JWT_HS384 || alg == FLOSSE_JWT_HS512;
}

static const EVP_MD *alg_md(int alg) {
  switch (alg) {
  case FLOSSE_JWT_HS384: return EVP_sha384();
  case FLOSSE_JWT_HS512: return EVP_sha512();
  default: return EVP_sha256();
  }
}

int flosse_jwt_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t *outlen) {
  if (inlen % 4 == 1 || inlen > (size_t)0x7ffffff0) return FLOSSE_ERR;
  size_t pad = (4 - inlen % 4) % 4;
  char *std = malloc(inlen + pad + 1);
  if (!std) return FLOSSE_ERR;
  for (size_t i = 0; i < inlen; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      free(std);
      return FLOSSE_ERR;
    }
    std[i] = (char)c;
  }
  for (size_t i = 0; i < pad; i++) std[inlen + i] = '=';
  std[inlen + pad] = '\0';
  int n = inlen ? EVP_DecodeBlock(out, (const unsigned char *)std, (int)(inlen + pad)) : 0;
  free(std);
  /* EVP_DecodeBlock counts the padding's zero bytes too */
  if (n < 0 || (size_t)n < pad) return FLOSSE_ERR;
  *outlen = (size_t)n - pad;
  return FLOSSE_OK;
}

struct flosse_jwt_key *flosse_jwt_key_load(const char *pem, size_t len, char *err, size_t errlen) {
  struct flosse_jwt_key *key = NULL;
  EVP_PKEY *pkey = NULL;
  BIO *bio = NULL;
  if (len > (size_t)0x7fffffff) goto err;
  bio = BIO_new_mem_buf(pem, (int)len);
  if (!bio) goto err;
  pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (!pkey) goto err;
  int id = EVP_PKEY_get_base_id(pkey);
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
    fail(err, errlen, "not an RSA or EC public key");
    goto err_set;
  }
  if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < 2048) {
    fail(err, errlen, "an RSA key shorter than 2048 bits");
    goto err_set;
  }
  key = malloc(sizeof *key);
  if (!key) goto err;
  key->pkey = pkey;
  BIO_free(bio);
  return key;
err:
  fail(err, errlen, "not a PEM public key (BEGIN PUBLIC KEY)");
err_set:
  EVP_PKEY_free(pkey);
  BIO_free(bio);
  return NULL;
}

static int is_p256(EVP_PKEY *pkey) {
  char name[64];
  size_t n = 0;
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) return 0;
  if (!EVP_PKEY_get_group_name(pkey, name, sizeof name, &n)) return 0;
  return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

const char *flosse_jwt_key_type(const struct flosse_jwt_key *key) {
  if (EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_RSA) return "RSA";
  if (is_p256(key->pkey)) return "EC P-256";
  return "other";
}

void flosse_jwt_key_free(struct flosse_jwt_key *key) {
  if (!key) return;
  EVP_PKEY_free(key->pkey);
  free(key);
}

/* JWS's ES256 signature (r||s, 32 bytes each) as the DER ECDSA-Sig-Value
 * EVP_DigestVerify takes. Returns the length written to *der (the caller
 * frees it with OPENSSL_free), or -1. */
static int es256_der(const unsigned char *sig, unsigned char **der) {
  ECDSA_SIG *esig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  int n = -1;
  if (!esig || !r || !s) goto err;
  if (!ECDSA_SIG_set0(esig, r, s)) goto err;
  r = s = NULL; /* esig owns them now */
  *der = NULL;
  n = i2d_ECDSA_SIG(esig, der);
err:
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(esig);
  return n;
}

int flosse_jwt_verify(int alg, const unsigned char *secret, size_t secretlen,
                      const struct flosse_jwt_key *key, const char *input, size_t inlen,
                      const unsigned char *sig, size_t siglen, char *err, size_t errlen) {
  if (alg < FLOSSE_JWT_HS256 || alg > FLOSSE_JWT_ES256) return fail(err, errlen, "unknown algorithm");
  if (flosse_jwt_alg_is_hmac(alg)) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    if (!secret || key) return fail(err, errlen, "an HMAC algorithm needs a secret");
    const EVP_MD *md = alg_md(alg);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(md), NULL, secret, secretlen,
                   (const unsigned char *)input, inlen, mac, sizeof mac, &maclen))
      return fail(err, errlen, "HMAC failed");
    if (siglen != maclen || CRYPTO_memcmp(mac, sig, maclen) != 0)
      return fail(err, errlen, "bad signature");
    return FLOSSE_OK;
  }
  if (secret || !key) return fail(err, errlen, "a public-key algorithm needs a public key");
  unsigned char *der = NULL;
  const unsigned char *vsig = sig;
  size_t vlen = siglen;
  if (alg == FLOSSE_JWT_RS256) {
    if (EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_RSA)
      return fail(err, errlen, "RS256 needs an RSA key");
  } else {
    if (!is_p256(key->pkey)) return fail(err, errlen, "ES256 needs an EC P-256 key");
    if (siglen != 64) return fail(err, errlen, "bad signature");
    int n = es256_der(sig, &der);
    if (n < 0) return fail(err, errlen, "bad signature");
    vsig = der;
    vlen = (size_t)n;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
           EVP_DigestVerify(ctx, vsig, vlen, (const unsigned char *)input, inlen) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  if (!ok) return fail(err, errlen, "bad signature");
  return FLOSSE_OK;
}
