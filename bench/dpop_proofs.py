"""Makes DPoP proofs (RFC 9449) for the bench's DPoP row: one fresh ES256 key, then N proofs
for POST <url>, each with its own jti and the current iat, one per line of the output file.
Two processes sign in parallel (P-256 ECDSA with the 'cryptography' package).

    python3 bench/dpop_proofs.py URL COUNT OUTFILE
"""

import base64
import json
import multiprocessing
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def work(args):
    pem, url, start, count, path = args
    key = serialization.load_pem_private_key(pem, None)
    nums = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, separators=(",", ":")).encode())
    iat = int(time.time())
    with open(path, "w") as out:
        for i in range(start, start + count):
            claims = b64(json.dumps({"jti": f"b{i}", "htm": "POST", "htu": url, "iat": iat}, separators=(",", ":")).encode())
            signing_input = f"{header}.{claims}".encode()
            r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            out.write(f"{header}.{claims}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}\n")


def main():
    url, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    half = count // 2
    parts = [(pem, url, 0, half, path + ".0"), (pem, url, half, count - half, path + ".1")]
    with multiprocessing.Pool(2) as pool:
        pool.map(work, parts)
    with open(path, "w") as out:
        for _, _, _, _, p in parts:
            with open(p) as f:
                out.write(f.read())
            os.remove(p)


if __name__ == "__main__":
    main()
