// Drives Debian chromium through the Admin Portal as an administrator would (see README.md):
// signs in through Tessera, sets up one application of each type with the wizard, copies the
// secret with the Copy button, gets a token with it, revokes it for a new one, edits a lifetime,
// blocks a user and watches that user's sign-in be refused, then reads the dashboard. Saves
// screenshots when asked.
// Usage: node portal.mjs '<json>'. Prints exactly one line of JSON; exit 0 on success, 1 on failure.
import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';

// A 16x16 PNG: the logo the wizard uploads.
const LOGO_PNG = 'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAIklEQVR42mP4sEDkPyWYQS7lxH9K8CAwYDQMRsNgNAzAGADDx1+f8fuOmwAAAABJRU5ErkJggg==';

let browser = null;
let page = null;
const consoleErrors = [];

function b64url(buf) {
  return buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function shot(args, name) {
  if (!args.screenshots) return;
  await page.screenshot({ path: `${args.screenshots}/${name}.png`, fullPage: true });
}

// The login page, with the keyboard only: Tab through username and password, Enter.
async function signIn(p, username, password) {
  await p.getByLabel('Username').waitFor({ state: 'visible' });
  await p.getByLabel('Username').focus();
  await p.keyboard.type(username);
  await p.keyboard.press('Tab');
  await p.keyboard.type(password);
  await p.keyboard.press('Enter');
}

async function notice() {
  return (await page.locator('.notice').first().innerText()).trim();
}

// The wizard: step 1 (General, type), Next, step 2, Submit.
async function setUp(args, app) {
  await page.goto(`${args.base}/admin/applications`);
  await page.getByRole('link', { name: '+ Set up app integration' }).click();
  await page.getByLabel('Application name').fill(app.name);
  await page.getByLabel('Description').fill(app.description);
  if (app.logo) {
    await page.getByLabel('Logo', { exact: true }).setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: Buffer.from(LOGO_PNG, 'base64') });
  }
  await page.getByLabel(app.type).check();
  if (app.shot) await shot(args, 'wizard-general');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByText('Step 2 of 2').waitFor();
  for (const a of app.apis ?? []) await page.locator(`input[name=apis][value="${a}"]`).check();
  for (const s of app.scopes ?? []) await page.locator(`input[name=scopes][value="${s}"]`).check();
  if (app.redirect) await page.getByLabel('Redirect URIs (one per line)').fill(app.redirect);
  if (app.shot) await shot(args, 'wizard-details');
  await page.getByRole('button', { name: 'Submit' }).click();
}

// The secret dialog: copy with its button and read the clipboard, as a person pasting would.
async function copySecret() {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const warning = (await dialog.locator('#secret-warning').innerText()).trim();
  await dialog.getByRole('button', { name: 'Copy secret' }).click();
  await page.locator('#client-secret-status').filter({ hasText: 'Copied' }).waitFor();
  const secret = await page.evaluate(() => navigator.clipboard.readText());
  const clientId = await page.locator('#client-id').inputValue();
  return { clientId, secret, warning };
}

async function tokenStatus(args, clientId, secret) {
  const r = await page.request.post(`${args.base}/token`, {
    headers: { authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64') },
    form: { grant_type: 'client_credentials' },
  });
  const body = await r.json().catch(() => ({}));
  return { status: r.status(), expires_in: body.expires_in ?? null };
}

async function run(args) {
  const port = new URL(args.base).port;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', ...(port ? [`--explicitly-allowed-ports=${port}`] : [])],
    headless: true,
    timeout: 60000,
  });
  const out = {};

  // A user outside tessera-admins is turned away.
  {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${args.base}/admin`);
    await signIn(p, args.user, args.password);
    await p.locator('.error').waitFor();
    out.non_admin = { url: p.url(), error: (await p.locator('.error').innerText()).trim() };
    await ctx.close();
  }

  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  context.setDefaultTimeout(args.timeout_ms ?? 15000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: args.base });
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await page.goto(`${args.base}/admin`);
  await signIn(page, args.admin, args.password);
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  out.signed_in_url = page.url();
  out.csp = (await (await page.request.get(`${args.base}/admin/applications`)).headers())['content-security-policy'];

  // Forged forms: a wrong CSRF token, and a right one posted from another origin.
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const forge = (data, headers = {}) => page.request.post(`${args.base}/admin/applications/new`,
    { form: { ...data, name: 'Forged', type: 'm2m' }, headers, maxRedirects: 0 });
  out.forged = {
    wrong_csrf: (await forge({ csrf: 'not-the-token' })).status(),
    cross_origin: (await forge({ csrf }, { origin: 'https://evil.example' })).status(),
  };

  // Machine to machine: the secret, a token with it, a new secret, a lifetime.
  await setUp(args, { name: 'Inventory sync', description: 'Nightly stock import', type: 'Machine to machine', shot: true });
  await shot(args, 'secret');
  const m2m = await copySecret();
  out.m2m = { client_id: m2m.clientId, first_secret: m2m.secret, warning: m2m.warning };
  out.m2m.first_token = await tokenStatus(args, m2m.clientId, m2m.secret);
  await page.getByRole('link', { name: 'I have copied it: continue' }).click();
  await page.getByRole('link', { name: 'Credentials' }).click();
  await page.getByRole('link', { name: /Revoke secret/ }).click();
  await page.getByRole('heading', { name: 'Revoke the client secret?' }).waitFor();
  await page.getByRole('button', { name: 'Revoke and generate a new secret' }).click();
  const rotated = await copySecret();
  out.m2m.second_secret = rotated.secret;
  await page.goto(`${args.base}/admin/applications/${m2m.clientId}?tab=security`);
  await page.getByLabel('Access token', { exact: true }).fill('600');
  await page.getByRole('button', { name: 'Save' }).click();
  out.m2m.saved = await notice();
  await shot(args, 'security-settings');

  // Settings: the default access-token lifetime of applications set up from now on.
  await page.getByRole('link', { name: 'Settings', exact: true }).click();
  await page.getByLabel('Access token', { exact: true }).fill('1200');
  await page.getByRole('button', { name: 'Save' }).click();
  out.settings = await notice();
  await shot(args, 'settings');

  // An API with a scope, then a Regular Web App that uses them, and a Public SPA.
  await page.getByRole('link', { name: 'APIs & scopes', exact: true }).click();
  await page.getByText('Add an API').click();
  await page.getByLabel('Name', { exact: true }).fill('Orders API');
  await page.getByLabel(/^Identifier/).fill('https://api.example.com/orders');
  await page.getByLabel(/^Scopes it defines/).fill('orders:read');
  await page.getByRole('button', { name: 'Add API' }).click();
  out.api = await notice();
  await setUp(args, { name: 'Storefront', description: 'The shop', type: 'Regular Web App', redirect: args.web_redirect,
    apis: ['https://api.example.com/orders'], scopes: ['orders:read'], logo: true });
  out.web = { client_id: (await copySecret()).clientId };
  await page.goto(`${args.base}/admin/applications/${out.web.client_id}?tab=security`);
  out.web.access_token_ttl = await page.getByLabel('Access token', { exact: true }).inputValue();
  // Encrypted ID tokens and signed userinfo: refused without the application's keys, saved
  // with the URL of its key set.
  await page.getByLabel('ID tokens: encryption (JWE key management)').selectOption('RSA-OAEP-256');
  await page.getByLabel('ID tokens: content encryption').selectOption('A256GCM');
  await page.getByLabel('Userinfo as a signed JWT').selectOption('ES256');
  const before = consoleErrors.length;
  await page.getByRole('button', { name: 'Save' }).click();
  out.web.encryption_without_keys = (await page.locator('#form-error').innerText()).trim();
  // The refused form's 422 is the answer this step expects, not a page error.
  out.web.refusal_logged = consoleErrors.splice(before).filter((m) => !m.includes('422'));
  out.web.kept_choice = await page.getByLabel('ID tokens: encryption (JWE key management)').inputValue();
  await page.getByLabel(/^JSON Web Key URI/).fill('https://store.example.com/jwks.json');
  await page.getByRole('button', { name: 'Save' }).click();
  out.web.encryption_saved = await notice();
  await page.goto(`${args.base}/admin/applications/${out.web.client_id}?tab=security`);
  out.web.encryption = {
    alg: await page.getByLabel('ID tokens: encryption (JWE key management)').inputValue(),
    enc: await page.getByLabel('ID tokens: content encryption').inputValue(),
    userinfo: await page.getByLabel('Userinfo as a signed JWT').inputValue(),
    jwks_uri: await page.getByLabel(/^JSON Web Key URI/).inputValue(),
  };
  await shot(args, 'response-protection');
  // The decoupled grants on the Settings tab: device authorization and CIBA (polled).
  await page.goto(`${args.base}/admin/applications/${out.web.client_id}?tab=settings`);
  await page.getByRole('checkbox', { name: /Device authorization/ }).check();
  await page.getByRole('checkbox', { name: /Backchannel sign-in/ }).check();
  await page.getByLabel('CIBA delivery').selectOption('poll');
  await page.getByRole('button', { name: 'Save' }).click();
  out.web.decoupled_saved = await notice();
  await page.goto(`${args.base}/admin/applications/${out.web.client_id}?tab=settings`);
  out.web.decoupled = {
    device: await page.getByRole('checkbox', { name: /Device authorization/ }).isChecked(),
    ciba: await page.getByRole('checkbox', { name: /Backchannel sign-in/ }).isChecked(),
  };
  await setUp(args, { name: 'Dashboard', description: 'Single-page dashboard', type: 'Public: single-page app', redirect: 'https://dash.example.com/cb' });
  out.spa = { notice: await notice(), url: page.url() };
  await page.getByRole('link', { name: 'Endpoints' }).click();
  await page.getByRole('button', { name: 'Copy the Token URL' }).click();
  out.spa.copied_token_url = await page.evaluate(() => navigator.clipboard.readText());
  await shot(args, 'endpoints');
  await page.goto(`${args.base}/admin/applications`);
  out.list_logos = await page.locator('img.list-logo').evaluateAll((imgs) => imgs.map((i) => i.naturalWidth));
  await shot(args, 'applications');

  // The administrator's own sessions and grants: the portal's sign-in is one of each.
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: args.admin, exact: true }).click();
  out.admin_user = {
    end_session_buttons: await page.getByRole('button', { name: 'End session' }).count(),
    portal_rows: await page.locator('td code', { hasText: 'tessera-admin-portal' }).count(),
  };
  await shot(args, 'user-sessions');

  // Block a user.
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: args.user, exact: true }).click();
  await page.getByRole('button', { name: 'Block user' }).click();
  out.blocked = await notice();
  await shot(args, 'user');

  for (const [link, name] of [['Signing keys', 'keys'], ['APIs & scopes', 'apis'], ['Audit log', 'audit']]) {
    await page.getByRole('link', { name: link, exact: true }).click();
    await shot(args, name);
  }
  out.audit_actions = await page.locator('tbody tr td:nth-child(3)').allInnerTexts();

  // The blocked user tries to sign in to the web application.
  {
    const verifier = b64url(randomBytes(32));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const q = new URLSearchParams({ response_type: 'code', client_id: out.web.client_id, redirect_uri: args.web_redirect,
      scope: 'openid', state: 's', code_challenge: challenge, code_challenge_method: 'S256' });
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${args.base}/authorize?${q}`);
    out.sign_in_logo = await p.locator('img.app-logo').evaluate((i) => i.complete && i.naturalWidth);
    await signIn(p, args.user, args.password);
    await p.locator('#login-error').waitFor();
    out.blocked_sign_in = (await p.locator('#login-error').innerText()).trim();
    await ctx.close();
  }

  // The dashboard: each node stores its counts every few seconds, so wait for the blocked
  // user's refused sign-in to show.
  const total = async (label) =>
    Number(await page.locator('.totals dt', { hasText: label }).first().locator('xpath=../dd').innerText());
  let failed = 0;
  for (let i = 0; i < 40 && failed === 0; i++) {
    await page.goto(`${args.base}/admin`);
    failed = await total(/^Failed sign-ins$/);
    if (failed === 0) await page.waitForTimeout(500);
  }
  out.dashboard = {
    heading: (await page.getByRole('heading', { level: 1 }).innerText()).trim(),
    sign_ins: await total(/^Sign-ins$/),
    failed,
    charts: await page.locator('svg.chart').count(),
  };
  await shot(args, 'dashboard');
  await page.goto(`${args.base}/admin/applications/${out.m2m.client_id}?tab=usage`);
  out.app_usage_charts = await page.locator('svg.chart').count();
  await shot(args, 'app-usage');
  out.console_errors = consoleErrors;
  return out;
}

let code = 0;
try {
  const args = JSON.parse(process.argv[2] ?? '{}');
  process.stdout.write(JSON.stringify(await run(args)) + '\n');
} catch (e) {
  let url = null;
  let html = null;
  try { url = page?.url(); html = (await page?.content())?.slice(0, 3000); } catch { /* gone */ }
  const message = (e instanceof Error ? e.message : String(e)).replace(/\u001b\[[0-9;]*m/g, '');
  process.stdout.write(JSON.stringify({ error: message, url, html, console_errors: consoleErrors }) + '\n');
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
