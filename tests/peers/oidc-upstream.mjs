// Upstream OpenID Provider peer for Tessera's federation tests (node-oidc-provider 9.13.3).
//
//   node oidc-upstream.mjs '<json config>'
//
// Listens on 127.0.0.1:<port> with issuer http://127.0.0.1:<port>, prints exactly one
// line to stdout when ready -- {"issuer":"http://127.0.0.1:<port>"} -- and then serves
// until killed (SIGTERM/SIGINT). Everything else (errors, backchannel results) goes to
// stderr. See README.md in this directory for the config format and the HTTP sequence
// of a sign-in.
//
// What it provides:
//   - discovery (/.well-known/openid-configuration), /jwks, /auth, /token, /me (userinfo),
//     /session/end (+ /session/end/confirm), back-channel logout
//   - authorization code flow; PKCE S256 required unless "pkce_required": false
//   - scopes openid, email, profile, groups (custom `groups` claim), offline_access
//   - ID tokens carry amr ["pwd"] and acr "urn:peer:pwd" (set via the interaction
//     result login: { accountId, amr, acr }; listing acr/amr/auth_time under the `openid`
//     scope in `claims` makes the library put them in every ID token; acrValues
//     advertises the acr)
//   - a browserless sign-in: GET /interaction/:uid (tiny HTML form),
//     POST /interaction/:uid/login (login, password; password is "secret" for every
//     account, overridable per account with "password"), POST /interaction/:uid/abort;
//     consent is implicit (first-party: loadExistingGrant grants whatever was asked)
//   - POST /__rotate (test only): new RS256 + ES256 signing keys with new kids.
//   - POST /__account?login=NAME (test only): the JSON body replaces that account's claims
//     (adding the account when new; `sub` defaults to the login), so a test can change
//     what the upstream says between two sign-ins.
//
// Key rotation: oidc-provider 9 has no public API to change keys after construction
// (`jwks` is constructor-only configuration; the keystore and the /jwks response are
// computed once and kept in a module-private WeakMap). /__rotate therefore builds a new
// Provider instance with the new keys first in `jwks` (the library signs with the first
// matching key) and the previous keys after them (still published, so old ID tokens
// still verify, e.g. as id_token_hint), and swaps it in as the request handler. All state
// survives the swap: storage is the small in-memory adapter below, one store for every
// Provider in the process (the library's default memory adapter creates a store per
// Provider instance), and the cookie signing keys (`cookies.keys`) are fixed for the
// process, so sessions, interactions, codes, grants and tokens keep working.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

// stdout carries exactly one line (the ready line). oidc-provider prints its NOTICEs with
// console.info (stdout) and WARNINGs with console.warn; drop its development notices
// ("quick start development-only in-memory adapter", "Unsupported runtime", "default
// ... function called, you SHOULD change it") unless PEER_VERBOSE=1, and send anything
// else that would go to stdout to stderr. Installed before the library is imported.
for (const level of ['log', 'info', 'warn']) {
  const write = (...args) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  console[level] = (first, ...rest) => {
    if (process.env.PEER_VERBOSE !== '1' && typeof first === 'string'
      && /oidc-provider (WARNING|NOTICE):/.test(first)) return;
    write(first, ...rest);
  };
}

const { default: Provider } = await import('oidc-provider');

// ---------------------------------------------------------------------------------------
// configuration input

let input;
try {
  input = JSON.parse(process.argv[2] ?? process.env.PEER_CONFIG ?? '');
} catch (err) {
  process.stderr.write(`usage: node oidc-upstream.mjs '<json config>' (${err.message})\n`);
  process.exit(2);
}

const port = Number(input.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('config: "port" must be an integer (0 = any free port)\n');
  process.exit(2);
}
const host = '127.0.0.1';
const DEFAULT_PASSWORD = 'secret';
const ACR = input.acr || 'urn:peer:pwd';
const AMR = input.amr || ['pwd'];

// login -> account; accountId (= ID token `sub`) -> account
const accountsByLogin = new Map();
const accountsById = new Map();
for (const [login, account] of Object.entries(input.accounts || {})) {
  const acct = { ...account, sub: String(account.sub ?? login) };
  accountsByLogin.set(login, acct);
  accountsById.set(acct.sub, acct);
}

const clients = (input.clients || []).map((c) => {
  const client = {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  };
  if (client.token_endpoint_auth_method === 'private_key_jwt' && client.client_secret === undefined) {
    delete client.client_secret;
  }
  return client;
});

// ---------------------------------------------------------------------------------------
// keys

let generation = 0;
function freshSigningKeys() {
  generation += 1;
  const tag = `g${generation}-${randomBytes(4).toString('hex')}`;
  const jwk = (type, options, alg) => ({
    ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
    kid: `peer-${alg.toLowerCase()}-${tag}`,
  });
  return [
    jwk('rsa', { modulusLength: 2048 }, 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ];
}

let currentKeys = freshSigningKeys(); // signing keys, first match per alg is used
let previousKeys = []; // still published in /jwks, never used to sign

const publicJwk = ({
  kty, kid, alg, use, n, e, crv, x, y,
}) => Object.fromEntries(Object.entries({
  kty, kid, alg, use, n, e, crv, x, y,
}).filter(([, v]) => v !== undefined));

// ---------------------------------------------------------------------------------------
// storage: one in-memory store shared by every Provider instance (see /__rotate); no
// size cap (the library's memory adapter is an LRU of 1000 entries), entries expire
// after the expiresIn the library passes.

const store = new Map(); // key -> { value, expiresAt (ms, 0 = never) }
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

function storeSet(key, value, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : 0;
  store.set(key, { value, expiresAt });
}

class SharedMemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = storeGet(grantKey) || new Set();
      members.add(key);
      storeSet(grantKey, members);
    }
    storeSet(key, payload, expiresIn);
  }

  async find(id) { return storeGet(this.key(id)); }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of storeGet(grantKey) || []) store.delete(key);
    store.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------------------
// provider

const cookieKeys = [randomBytes(32).toString('base64url')];
const issuer = () => `http://${host}:${server.address().port}`;

async function findAccount(ctx, id) {
  const account = accountsById.get(id);
  if (!account) return undefined;
  return {
    accountId: account.sub,
    // every account field is offered; the scope/claims mask picks what is released
    async claims() {
      const { password, ...claims } = account;
      return claims;
    },
  };
}

// First-party consent: every authorization gets a grant covering the OIDC scopes and
// claims it asked for (unknown scopes are ignored by requestParamOIDCScopes), so the
// consent prompt never needs an interaction.
async function loadExistingGrant(ctx) {
  const { client, session } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
  if (grant && (grant.accountId !== session.accountId || grant.clientId !== client.clientId)) {
    grant = undefined;
  }
  grant ||= new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
  const scopes = [...ctx.oidc.requestParamOIDCScopes];
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  const claims = [...ctx.oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

function esc(value) {
  return String(value).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function buildProvider() {
  const configuration = {
    adapter: SharedMemoryAdapter,
    jwks: { keys: [...currentKeys, ...previousKeys] },
    clients,
    findAccount,
    loadExistingGrant,
    acrValues: [ACR],
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      iss: null,
      sid: null,
      // acr/amr/auth_time under `openid`: emitted in every ID token. As standalone claims
      // (`amr: null`) the library only emits them when requested (acr_values, max_age,
      // the claims parameter).
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'given_name', 'family_name', 'nickname',
        'picture', 'locale', 'updated_at'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // false (default here): the ID token carries every claim its scopes allow, like most
    // real IdPs. true: library default, the ID token carries only sub/acr/amr/... when an
    // access token is issued too (scope claims only from userinfo).
    conformIdTokenClaims: input.conform_id_token_claims === true,
    pkce: {
      methods: ['S256'],
      required: () => input.pkce_required !== false,
    },
    cookies: { keys: cookieKeys },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // `form` is <form id="op.logoutForm" method="post" action=".../session/end/confirm">
        // <input type="hidden" name="xsrf" value="..."/></form>; the submit button adds
        // logout=yes (= end the provider session too, back-channel to every client).
        async logoutSource(ctx, form) {
          ctx.body = page('Sign out', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
    },
    interactions: {
      url: (ctx, interaction) => `${issuer()}/interaction/${interaction.uid}`, // absolute Location
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<p><b>${esc(k)}</b>: ${esc(v)}</p>`).join('\n'));
    },
    clientBasedCORS: () => false,
    // The library's fetch uses an SSRF-protected undici dispatcher that refuses special-use
    // addresses (127.0.0.0/8, ::1, private ranges), which would block back-channel logout
    // (and jwks_uri fetches) to the RP on 127.0.0.1. Tests only: drop the dispatcher.
    fetch: (url, options) => {
      delete options.dispatcher;
      return globalThis.fetch(url, options);
    },
  };

  const provider = new Provider(issuer(), configuration);
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`oidc-upstream server_error: ${err?.stack || err}\n`);
  });
  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    process.stderr.write(`oidc-upstream backchannel logout ok: client=${client.clientId} sub=${accountId} sid=${sid}\n`);
  });
  provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
    process.stderr.write(`oidc-upstream backchannel logout FAILED: client=${client.clientId} sub=${accountId} sid=${sid}: ${err?.message || err}\n`);
  });
  return provider;
}

// ---------------------------------------------------------------------------------------
// HTTP: interaction routes and /__rotate in front of the provider

let provider;
let providerHandler;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function loginForm(uid, details, error) {
  return page('Sign in', `${error ? `<p id="error">${esc(error)}</p>\n` : ''}<p>client: ${esc(details.params.client_id)}</p>
<form method="post" action="/interaction/${esc(uid)}/login">
<input type="text" name="login" autofocus>
<input type="password" name="password">
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

async function interaction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    // missing/expired interaction cookie or interaction
    return send(res, 400, page('Error', `<p>${esc(err.error_description || err.message)}</p>`));
  }
  if (details.uid !== uid) {
    return send(res, 400, page('Error', '<p>interaction cookie does not match the URL</p>'));
  }

  const { prompt } = details;

  if (req.method === 'GET' && action === '') {
    if (prompt.name === 'login') {
      return send(res, 200, loginForm(uid, details));
    }
    // consent (e.g. prompt=consent requested): first-party, granted without a page
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }

  if (req.method === 'POST' && action === '/login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const account = accountsByLogin.get(login);
    const expected = account?.password ?? DEFAULT_PASSWORD;
    if (!account || form.get('password') !== expected) {
      return send(res, 401, loginForm(uid, details, 'invalid login or password'));
    }
    return provider.interactionFinished(req, res, {
      login: {
        accountId: account.sub, amr: AMR, acr: ACR, remember: true,
      },
      consent: {},
    }, { mergeWithLastSubmission: false });
  }

  if (req.method === 'POST' && action === '/abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  return send(res, 405, page('Error', '<p>method not allowed</p>'));
}

async function setAccount(req, res, url) {
  const login = url.searchParams.get('login');
  let text = '';
  for await (const chunk of req) text += chunk;
  const account = JSON.parse(text || '{}');
  if (!login || typeof account !== 'object' || Array.isArray(account)) {
    return send(res, 400, 'login and a JSON object are needed', 'text/plain');
  }
  const old = accountsByLogin.get(login);
  if (old) accountsById.delete(old.sub);
  const acct = { ...account, sub: String(account.sub ?? login) };
  accountsByLogin.set(login, acct);
  accountsById.set(acct.sub, acct);
  return send(res, 200, JSON.stringify(acct), 'application/json');
}

async function rotate(req, res, url) {
  previousKeys = url.searchParams.get('keep_old') === '0' ? [] : [...currentKeys, ...previousKeys];
  currentKeys = freshSigningKeys();
  provider = buildProvider();
  providerHandler = provider.callback();
  const body = {
    signing_kids: Object.fromEntries(currentKeys.map((k) => [k.alg, k.kid])),
    jwks: { keys: [...currentKeys, ...previousKeys].map(publicJwk) },
  };
  process.stderr.write(`oidc-upstream rotated keys: ${JSON.stringify(body.signing_kids)}\n`);
  return send(res, 200, JSON.stringify(body), 'application/json');
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://peer');
  const m = /^\/interaction\/([^/]+)(\/login|\/abort)?$/.exec(url.pathname);
  let work;
  if (m) {
    work = interaction(req, res, m[1], m[2] || '');
  } else if (url.pathname === '/__rotate' && req.method === 'POST') {
    work = rotate(req, res, url);
  } else if (url.pathname === '/__account' && req.method === 'POST') {
    work = setAccount(req, res, url);
  } else if (!providerHandler) {
    return send(res, 503, 'starting', 'text/plain');
  } else {
    return providerHandler(req, res);
  }
  work.catch((err) => {
    process.stderr.write(`oidc-upstream error: ${err?.stack || err}\n`);
    if (!res.headersSent) send(res, 500, page('Error', `<p>${esc(err.message)}</p>`));
    else res.end();
  });
  return undefined;
});

server.on('error', (err) => {
  process.stderr.write(`oidc-upstream: ${err.message}\n`);
  process.exit(1);
});

server.listen(port, host, async () => {
  provider = buildProvider();
  // static clients are validated lazily by the library; load them now so a bad client
  // config fails the start (exit 2) instead of the first request
  for (const { client_id: clientId } of clients) {
    try {
      if (!await provider.Client.find(String(clientId))) throw new Error('not found');
    } catch (err) {
      process.stderr.write(`oidc-upstream: invalid client ${clientId}: ${err.error_description || err.message}\n`);
      process.exit(2);
    }
  }
  providerHandler = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer: issuer() })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
