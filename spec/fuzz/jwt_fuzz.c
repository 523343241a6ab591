/* fuzz-sources: core/jwt.c  fuzz-libs: -lcrypto */
/* libFuzzer harness for the JWT signature layer (core/jwt.c):
 * flosse_jwt_b64url_decode, flosse_jwt_verify (HMAC) and
 * flosse_jwt_key_load. Checked:
 * - the decoder accepts exactly the inputs of the URL alphabet whose length
 *   is not 4n+1, and then writes len * 3 / 4 bytes (rounded down);
 * - for every HS algorithm, the input verifies against its own HMAC (made by
 *   OpenSSL's one-shot HMAC(), not by jwt.c's path) and fails with one bit
 *   of it flipped, with a shorter MAC, with a key or without a secret;
 * - any bytes given as a PEM key are refused or loaded without a leak. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/jwt.h"

static int url_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  unsigned char *out = malloc(FLOSSE_JWT_B64_MAX(size) + 1);
  size_t n = 0;
  int ok = flosse_jwt_b64url_decode(in, size, out, &n) == FLOSSE_OK;
  int valid = size % 4 != 1;
  for (size_t i = 0; i < size && valid; i++) valid = url_char(data[i]);
  if (ok != valid) abort();
  if (ok && n != size * 3 / 4) abort();
  free(out);

  static const char *const md[] = {"SHA256", "SHA384", "SHA512"};
  static const int algs[] = {FLOSSE_JWT_HS256, FLOSSE_JWT_HS384, FLOSSE_JWT_HS512};
  size_t klen = size ? data[0] % 40 : 0;
  if (klen > size) klen = size;
  const unsigned char *secret = data; /* the input's first bytes are the secret too */
  for (int a = 0; a < 3; a++) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_get_digestbyname(md[a]), secret, (int)klen, data, size, mac, &maclen)) abort();
    char err[128];
    if (flosse_jwt_verify(algs[a], secret, klen, NULL, in, size, mac, maclen, err, sizeof err) !=
        FLOSSE_OK)
      abort();
    if (flosse_jwt_verify(algs[a], secret, klen, NULL, in, size, mac, maclen - 1, err, sizeof err) !=
        FLOSSE_ERR)
      abort();
    mac[size % maclen] ^= (unsigned char)(1u << (size % 8));
    if (flosse_jwt_verify(algs[a], secret, klen, NULL, in, size, mac, maclen, err, sizeof err) !=
        FLOSSE_ERR)
      abort();
    if (flosse_jwt_verify(algs[a], NULL, 0, NULL, in, size, mac, maclen, err, sizeof err) !=
        FLOSSE_ERR)
      abort();
  }

  char err[128];
  struct flosse_jwt_key *key = flosse_jwt_key_load(in, size, err, sizeof err);
  if (key) {
    unsigned char sig[64] = {0};
    if (flosse_jwt_verify(FLOSSE_JWT_HS256, secret, klen, key, in, size, sig, 32, err, sizeof err) !=
        FLOSSE_ERR)
      abort();
    (void)flosse_jwt_verify(FLOSSE_JWT_ES256, NULL, 0, key, in, size, sig, 64, err, sizeof err);
    (void)flosse_jwt_verify(FLOSSE_JWT_RS256, NULL, 0, key, in, size, sig, 64, err, sizeof err);
    flosse_jwt_key_free(key);
  }
  return 0;
}
