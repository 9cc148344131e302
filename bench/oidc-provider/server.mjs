// node-oidc-provider reference server for the Tessera benchmark (bench/run.sh).
//
//   PORT=4000 NODE_ENV=production node server.mjs
//
// Listens on 127.0.0.1:$PORT with issuer http://127.0.0.1:$PORT and mirrors the
// setup bench/run.sh registers in Tessera:
//
//   resource server  https://api.example.com, scope read:things
//   client es256     client_secret_basic, client_credentials -> JWT access token, ES256
//   client rs256     client_secret_basic, client_credentials -> JWT access token, RS256
//   client opaque    client_secret_basic, client_credentials -> opaque access token
//
// The token request carries no `resource` parameter (the same body Tessera gets:
// grant_type=client_credentials&scope=read:things); defaultResource() points every
// client at https://api.example.com and getResourceServerInfo() picks the token
// format / JWS alg per client. The opaque client therefore also gets aud and
// scope=read:things (without a resource oidc-provider would drop the non-OIDC
// scope). Storage is oidc-provider's default in-memory adapter. Signing keys are
// generated at start with node:crypto (P-256 for ES256, RSA 2048 for RS256).
//
// One node process, i.e. one thread serving requests (node is single-threaded).

import { generateKeyPairSync } from 'node:crypto';

// Drop oidc-provider's development notices ("quick start development-only
// in-memory adapter", "Unsupported runtime" on node 20, "default ... function
// called, you SHOULD change it"). They are printed at most once each; the filter
// is installed before the library is imported (hence the dynamic import below).
if (process.env.BENCH_OIDC_VERBOSE !== '1') {
  for (const level of ['warn', 'info']) {
    const orig = console[level].bind(console);
    console[level] = (first, ...rest) => {
      if (typeof first === 'string' && first.includes('oidc-provider ')
        && /oidc-provider (WARNING|NOTICE):/.test(first)) return;
      orig(first, ...rest);
    };
  }
}

const { default: Provider, errors } = await import('oidc-provider');

const port = Number(process.env.PORT || process.argv[2] || 4000);
const host = process.env.HOST || '127.0.0.1';
const issuer = `http://${host}:${port}`;
const API = 'https://api.example.com';
const SCOPE = 'read:things';
const TTL = 3600;

function jwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

const jwks = {
  keys: [
    jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'bench-es256'),
    jwk('rsa', { modulusLength: 2048 }, 'RS256', 'bench-rs256'),
  ],
};

// client_id -> how its client_credentials access token is issued
const CLIENTS = {
  es256: { format: 'jwt', alg: 'ES256' },
  rs256: { format: 'jwt', alg: 'RS256' },
  opaque: { format: 'opaque' },
};
const SECRETS = {
  es256: 'es256-secret-0123456789abcdefghijklmnopqrstuvwxyz',
  rs256: 'rs256-secret-0123456789abcdefghijklmnopqrstuvwxyz',
  opaque: 'opaque-secret-0123456789abcdefghijklmnopqrstuvwxyz',
};

const configuration = {
  // adapter: default in-memory adapter (intentionally not set)
  jwks,
  clients: Object.keys(CLIENTS).map((clientId) => ({
    client_id: clientId,
    client_secret: SECRETS[clientId],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  })),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // same rule as the default, stated explicitly (authenticated clients may introspect)
      allowedPolicy: async (ctx, client, token) => !(client.clientAuthMethod === 'none'
        && token.clientId !== ctx.oidc.client.clientId),
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || API,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== API) {
          throw new errors.InvalidTarget();
        }
        const conf = CLIENTS[client?.clientId] || { format: 'opaque' };
        const info = {
          scope: SCOPE,
          audience: API,
          accessTokenTTL: TTL,
          accessTokenFormat: conf.format,
        };
        if (conf.format === 'jwt') {
          info.jwt = { sign: { alg: conf.alg } };
        }
        return info;
      },
    },
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || TTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || TTL,
  },
  clientBasedCORS: () => false,
  // same paths as Tessera (oidc-provider's default introspection path is /token/introspection)
  routes: {
    token: '/token',
    introspection: '/introspect',
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => {
  console.error('oidc-provider server_error:', err);
});

provider.listen(port, host, () => {
  console.log(`oidc-provider ${issuer} ready (pid ${process.pid}, node ${process.version})`);
});
