#!/usr/bin/env python3
"""Mints a JWT for the specs, with no code of flosse's: python3's standard
library (hmac, hashlib, base64) for HS256/384/512 and the openssl command
line for RS256/ES256 (openssl's DER ECDSA signature turned into JWS's raw
r||s here).

  jwt_mint.py SIGN HEADER_JSON PAYLOAD_JSON [KEY]

SIGN: HS256, HS384, HS512 (KEY: the secret; @FILE: a file's bytes as the
secret), RS256, ES256 (KEY: a private key PEM file), or "none" (an empty
signature). HEADER_JSON and PAYLOAD_JSON are encoded as given, so a spec can
put any alg in the header whatever SIGN is. Prints the token."""
import base64
import hashlib
import hmac
import subprocess
import sys


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def der_to_raw(der):
    # SEQUENCE { INTEGER r, INTEGER s }, each as 32 big-endian bytes
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def main():
    sign, header, payload = sys.argv[1], sys.argv[2], sys.argv[3]
    key = sys.argv[4] if len(sys.argv) > 4 else ""
    signing_input = (b64(header.encode()) + "." + b64(payload.encode())).encode()
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    if sign in digests:
        secret = open(key[1:], "rb").read() if key.startswith("@") else key.encode()
        sig = hmac.new(secret, signing_input, digests[sign]).digest()
    elif sign in ("RS256", "ES256"):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                             stdout=subprocess.PIPE, check=True).stdout
        if sign == "ES256":
            sig = der_to_raw(sig)
    elif sign == "none":
        sig = b""
    else:
        sys.exit("jwt_mint.py: unknown SIGN " + sign)
    print(signing_input.decode() + "." + b64(sig))


main()
