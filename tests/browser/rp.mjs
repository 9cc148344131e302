// A relying party built on openid-client v6 (the certified RP library), used unchanged against
// Tessera. Two steps around a browser sign-in (signin.mjs drives the pages in between):
//   node rp.mjs '{"step": "start", "issuer", "client_id", "client_secret", "redirect_uri", "scope", "par": true}'
//     discovery, then a pushed authorization request (RFC 9126) when "par" is true; prints
//     {"authorize_url", "state", "nonce", "code_verifier", "authorize_params"}
//   node rp.mjs '{"step": "finish", "issuer", "client_id", "client_secret", "callback_url", "state", "nonce", "code_verifier"}'
//     the code exchanged and the ID token validated by openid-client; prints
//     {"sub", "scope", "token_type", "id_token_claims"}
//   node rp.mjs '{"step": "device", "issuer", "client_id", "client_secret", "scope"}'
//     RFC 8628 with openid-client: prints {"user_code", "verification_uri_complete"} at once,
//     then polls (openid-client honours interval and slow_down) until the user decided and
//     prints {"sub", "scope", "token_type"}: two lines
//   node rp.mjs '{"step": "keys"}'
//     a signing key pair (ES256, for request objects) and an encryption key pair (ECDH-ES
//     P-256) made with WebCrypto; prints {"public_jwks", "signing", "encryption"} (private JWKs)
// Options of start and finish: "jar" (the private signing JWK: the request as a signed request
// object, RFC 9101, pushed too when "par"; with "encrypt_request" also encrypted by jose to
// Tessera's key with use enc in its JWKS, ECDH-ES/A256GCM), "jarm" (response_mode=jwt, the response validated as a
// JWT), "decrypt" (the private encryption JWK, with "enc": ID tokens and JARM responses encrypted
// to it are decrypted; finish then also reports which responses came encrypted), "dpop" (a
// private ECDSA P-256 JWK: the pushed request, the code exchange, userinfo and a refresh carry
// DPoP proofs made with it by openid-client, RFC 9449; finish then also reports the userinfo
// subject, the refreshed token type, the access token's cnf and the key's thumbprint).
// Prints one line of JSON on stdout (two for "device"); exit status 0 on success, 1 on any failure.
import * as client from 'openid-client';
import * as jose from 'jose';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function configuration(a) {
  // The application is registered for client_secret_basic (openid-client's default would be
  // client_secret_post). Tessera runs on http://127.0.0.1 in the tests; openid-client wants
  // https unless told.
  const config = await client.discovery(new URL(a.issuer), a.client_id, a.client_secret, client.ClientSecretBasic(a.client_secret), {
    execute: [client.allowInsecureRequests],
  });
  if (a.jarm) client.useJwtResponseMode(config);
  if (a.decrypt) {
    const key = await crypto.subtle.importKey('jwk', a.decrypt, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    client.enableDecryptingResponses(config, [a.enc], { key, alg: 'ECDH-ES', kid: a.decrypt.kid });
  }
  return config;
}

// The DPoP options of a request: openid-client's handle for the key pair of the "dpop" JWK.
async function dpopOptions(config, a) {
  if (!a.dpop) return undefined;
  const { d, ...pub } = a.dpop;
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const privateKey = await crypto.subtle.importKey('jwk', a.dpop, alg, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', { ...pub, key_ops: ['verify'] }, alg, true, ['verify']);
  return { DPoP: client.getDPoPHandle(config, { privateKey, publicKey }) };
}

async function keys() {
  const sig = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const dpop = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const enc = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
  const pub = async (k, extra) => {
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', k.publicKey);
    return { kty, crv, x, y, ...extra };
  };
  const priv = async (k, kid) => ({ ...(await crypto.subtle.exportKey('jwk', k.privateKey)), kid });
  return {
    public_jwks: { keys: [await pub(sig, { kid: 'rp-sig', use: 'sig', alg: 'ES256' }), await pub(enc, { kid: 'rp-enc', use: 'enc' })] },
    signing: await priv(sig, 'rp-sig'),
    encryption: await priv(enc, 'rp-enc'),
    dpop: { ...(await crypto.subtle.exportKey('jwk', dpop.privateKey)), key_ops: ['sign'] },
  };
}

async function start(a) {
  const config = await configuration(a);
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: a.redirect_uri,
    scope: a.scope,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  let request = params;
  if (a.jar) {
    const key = await crypto.subtle.importKey('jwk', a.jar, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    request = (await client.buildAuthorizationUrlWithJAR(config, params, { key, kid: a.jar.kid })).searchParams;
    if (a.encrypt_request) {
      const jwks = await (await fetch(config.serverMetadata().jwks_uri)).json();
      const enc = jwks.keys.find((k) => k.use === 'enc');
      const tessera = await jose.importJWK(enc, 'ECDH-ES');
      const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(request.get('request')))
        .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty: 'JWT', kid: enc.kid })
        .encrypt(tessera);
      request.set('request', jwe);
    }
  }
  const url = a.par
    ? await client.buildAuthorizationUrlWithPAR(config, request, await dpopOptions(config, a))
    : client.buildAuthorizationUrl(config, request);
  return {
    authorize_url: url.href,
    authorize_params: [...url.searchParams.keys()].sort(),
    state,
    nonce,
    code_verifier,
  };
}

async function device(a) {
  const config = await configuration(a);
  const response = await client.initiateDeviceAuthorization(config, { scope: a.scope });
  emit({ user_code: response.user_code, verification_uri_complete: response.verification_uri_complete });
  const tokens = await client.pollDeviceAuthorizationGrant(config, response);
  return { sub: tokens.claims()?.sub, scope: tokens.scope, token_type: tokens.token_type };
}

async function finish(a) {
  const config = await configuration(a);
  const dpop = await dpopOptions(config, a);
  const tokens = await client.authorizationCodeGrant(config, new URL(a.callback_url), {
    pkceCodeVerifier: a.code_verifier,
    expectedState: a.state,
    expectedNonce: a.nonce,
    idTokenExpected: true,
  }, undefined, dpop);
  const claims = tokens.claims();
  const decrypted = client.getDecryptedResponses(tokens);
  let bound;
  if (dpop) {
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub, dpop);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, dpop);
    const { d, key_ops, ext, ...pub } = a.dpop;
    bound = {
      userinfo_sub: info.sub,
      refreshed_token_type: refreshed.token_type,
      cnf: jose.decodeJwt(tokens.access_token).cnf,
      refreshed_cnf: jose.decodeJwt(refreshed.access_token).cnf,
      thumbprint: await jose.calculateJwkThumbprint(pub),
      access_token: tokens.access_token,
    };
  }
  return {
    dpop: bound,
    sub: claims.sub,
    scope: tokens.scope,
    token_type: tokens.token_type,
    id_token_claims: claims,
    encrypted: {
      id_token: Boolean(decrypted?.id_token?.token_endpoint),
      authorization_response: Boolean(decrypted?.authorization_response),
    },
  };
}

try {
  const a = JSON.parse(process.argv[2] ?? '');
  const steps = { keys, start, finish, device };
  if (!steps[a.step]) throw new Error('"step" must be "keys", "start", "finish" or "device"');
  const out = await steps[a.step](a);
  emit(out);
} catch (e) {
  emit({ error: `${e?.name ?? 'Error'}: ${e?.message ?? e}${e?.cause ? ` (${JSON.stringify(e.cause)})` : ''}` });
  process.exitCode = 1;
}
