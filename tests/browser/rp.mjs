// A relying party built on openid-client v6 (the certified RP library), used unchanged against
// Tessera. Two steps around a browser sign-in (signin.mjs drives the pages in between):
//   node rp.mjs '{"step": "start", "issuer", "client_id", "client_secret", "redirect_uri", "scope", "par": true}'
//     discovery, then a pushed authorization request (RFC 9126) when "par" is true; prints
//     {"authorize_url", "state", "nonce", "code_verifier", "authorize_params"}
//   node rp.mjs '{"step": "finish", "issuer", "client_id", "client_secret", "callback_url", "state", "nonce", "code_verifier"}'
//     the code exchanged and the ID token validated by openid-client; prints
//     {"sub", "scope", "token_type", "id_token_claims"}
// Prints exactly one line of JSON on stdout; exit status 0 on success, 1 on any failure.
import * as client from 'openid-client';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function configuration(a) {
  // The application is registered for client_secret_basic (openid-client's default would be
  // client_secret_post). Tessera runs on http://127.0.0.1 in the tests; openid-client wants
  // https unless told.
  return client.discovery(new URL(a.issuer), a.client_id, a.client_secret, client.ClientSecretBasic(a.client_secret), {
    execute: [client.allowInsecureRequests],
  });
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
  const url = a.par
    ? await client.buildAuthorizationUrlWithPAR(config, params)
    : client.buildAuthorizationUrl(config, params);
  return {
    authorize_url: url.href,
    authorize_params: [...url.searchParams.keys()].sort(),
    state,
    nonce,
    code_verifier,
  };
}

async function finish(a) {
  const config = await configuration(a);
  const tokens = await client.authorizationCodeGrant(config, new URL(a.callback_url), {
    pkceCodeVerifier: a.code_verifier,
    expectedState: a.state,
    expectedNonce: a.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  return { sub: claims.sub, scope: tokens.scope, token_type: tokens.token_type, id_token_claims: claims };
}

try {
  const a = JSON.parse(process.argv[2] ?? '');
  const out = a.step === 'start' ? await start(a) : a.step === 'finish' ? await finish(a) : null;
  if (out === null) throw new Error('"step" must be "start" or "finish"');
  emit(out);
} catch (e) {
  emit({ error: `${e?.name ?? 'Error'}: ${e?.message ?? e}${e?.cause ? ` (${JSON.stringify(e.cause)})` : ''}` });
  process.exitCode = 1;
}
