// A real OpenID provider for the tests: npm's certified `oidc-provider`, on a loopback port.
//
// Started by tests/support/oidc_server.py with one argument, a JSON file:
//   { "port": 0, "kid": "k1",
//     "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//     "accounts": { "<login>": { "sub", "email", "email_verified", "name", "groups": [...] } },
//     "idTokenTtl": 3600,
//     "jwksUri": null,        // advertise another provider's JWKS in discovery (the bad-signature case)
//     "aliasClients": {}      // {"fablab": "other-app"}: the registration found for "fablab" carries the
//                             // client id "other-app", so its tokens have aud "other-app" (wrong audience)
//   }
// Prints `listening <port>` once it serves. Logins go through the provider's own devInteractions forms
// (any password; the login must be one of `accounts`), which a test drives over HTTP.
//
// POST /__test/clock {"now": <epoch seconds>} sets the provider's clock: the Python tests may run under a
// frozen (ticking) clock, and the expiry case issues a token in the past. Everything else is the provider's.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import { Provider } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const realNow = Date.now.bind(Date);
let offsetMs = 0;
Date.now = () => realNow() + offsetMs;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: config.kid || 'k1', use: 'sig', alg: 'RS256' };

const registrations = new Map();
for (const client of config.clients) {
  registrations.set(client.client_id, {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

// A small in-memory adapter (the provider's own is internal), which also serves the aliased clients.
const stores = new Map();
class Adapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? realNow() + expiresIn * 1000 : null });
    if (payload.grantId) {
      const grants = stores.get('grants') || new Map();
      stores.set('grants', grants);
      grants.set(payload.grantId, [...(grants.get(payload.grantId) || []), [this.name, id]]);
    }
    if (payload.uid) this.store.set(`uid:${payload.uid}`, { id });
    if (payload.userCode) this.store.set(`userCode:${payload.userCode}`, { id });
  }

  async find(id) {
    if (this.name === 'Client') {
      const alias = (config.aliasClients || {})[id];
      const reg = registrations.get(alias ? alias : id);
      if (!reg) return undefined;
      return alias ? { ...reg, client_id: alias } : reg;
    }
    const row = this.store.get(id);
    return row ? row.payload : undefined;
  }

  async findByUid(uid) {
    const ref = this.store.get(`uid:${uid}`);
    return ref ? this.find(ref.id) : undefined;
  }

  async findByUserCode(userCode) {
    const ref = this.store.get(`userCode:${userCode}`);
    return ref ? this.find(ref.id) : undefined;
  }

  async consume(id) {
    const row = this.store.get(id);
    if (row) row.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.store.delete(id); }

  async revokeByGrantId(grantId) {
    const grants = stores.get('grants');
    for (const [name, id] of (grants && grants.get(grantId)) || []) stores.get(name).delete(id);
  }
}

// Aliased clients must come from the adapter (static clients are keyed by their own id).
const staticClients = [...registrations.values()].filter(
  (reg) => !Object.values(config.aliasClients || {}).includes(reg.client_id)
    && !Object.keys(config.aliasClients || {}).includes(reg.client_id),
);

const provider = new Provider(`http://127.0.0.1:${config.port}`, {
  adapter: Adapter,
  clients: staticClients,
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  // First-party client, no consent screen (as Keycloak's default): the grant covers the scopes asked for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant.save();
    // An aliased registration (wrong-audience case): the session must know the grant by both ids.
    ctx.oidc.session.ensureClientContainer(ctx.oidc.client.clientId);
    ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId, grant.jti);
    return grant;
  },
  pkce: { required: () => true },
  ttl: {
    IdToken: config.idTokenTtl || 3600, AccessToken: 3600, AuthorizationCode: 60,
    // A day: the expiry case runs the provider two hours behind, and its cookies must still hold.
    Interaction: 86400, Session: 86400, Grant: 86400,
  },
  async findAccount(ctx, id) {
    // The login typed in the devInteractions form becomes the account id, i.e. the `sub`.
    const account = Object.values(config.accounts).find((candidate) => candidate.sub === id)
      || config.accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() { return { ...account, sub: account.sub || id }; },
    };
  },
});

// What went wrong inside, in the log the fixture keeps (tests/support/oidc_server.py).
provider.on('server_error', (ctx, err) => { console.error('server_error', err); });
provider.on('grant.error', (ctx, err) => { console.error('grant.error', err.message, err.error_detail || ''); });

if (config.jwksUri) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/.well-known/openid-configuration' && ctx.body) {
      ctx.body = { ...ctx.body, jwks_uri: config.jwksUri };
    }
  });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__test/clock') {
    let raw = '';
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => {
      offsetMs = JSON.parse(raw).now * 1000 - realNow();
      res.writeHead(204).end();
    });
    return;
  }
  callback(req, res);
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
