// Browser tests of the clerk console and the party pages, on the real binary.
//
// Run inside tests/services/with-services --kafka --redis --smtp (scripts/test browser does it): starts
// the provider simulator and `songda run` on free ports with the shipped config pointed at them,
// publishes one case event to Kafka with kcat, and drives Debian's chromium (headless) with
// playwright-core through what a clerk and a party do:
//   1. the clerk signs in (a wrong key is refused), searches a case that has no deliveries yet (empty
//      state), and watches the deliveries arrive and the SMS turn 已到达 (DELIVERED) and then 已阅读 (READ)
//      when the party opens the link, without reloading;
//   2. the clerk opens the 电子送达凭证 and prints it;
//   3. the party opens the link from the SMS on a phone (a landing page that records nothing), presses
//      「查看通知」 (READ), downloads the document (its bytes hash to the event's sha256) and presses 「确认收到」; /v1/deliveries/{id} and the proof bundle show READ,
//      RETRIEVED (with the hash served) and ACKNOWLEDGED;
//   4. an expired link gets 410 and a forged one 403, a clear page each, and no evidence;
//   5. the in-app inbox page shows the message arrive and turn read, live;
//   6. a lawyer-group broadcast's progress reaches 100% in the console (or, without the broadcast API,
//      the console says there are no broadcasts).
// Waits are for what the user sees (Playwright locators) or for API state, never fixed sleeps.
// Screenshots and logs go to tests/artifacts/browser/.
//
// Environment: SONGDA_BUILD_DIR (default build), SONGDA_TEST_KAFKA_BROKERS, SONGDA_TEST_REDIS_URL,
// SONGDA_TEST_SMTP_HOST/_PORT (from with-services), CHROMIUM (default /usr/bin/chromium).
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BUILD = path.resolve(ROOT, process.env.SONGDA_BUILD_DIR || 'build');
const ARTIFACTS = path.join(ROOT, 'tests/artifacts/browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const COURT = 'HN-SQ-ZY';
const COURT_KEY = 'browser-court-key-' + crypto.randomBytes(8).toString('hex');
const OTHER_KEY = 'browser-other-court-' + crypto.randomBytes(8).toString('hex');
const ADMIN = 'browser-admin-' + crypto.randomBytes(8).toString('hex');
const LINK_SECRET = crypto.randomBytes(24).toString('hex');
const STEP_TIMEOUT = 30_000;

const children = [];
let failures = 0;
const started = Date.now();

function log(...a) { console.log(`[browser ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a); }
function need(cond, what) { if (!cond) throw new Error('expected: ' + what); }
function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run me inside tests/services/with-services --kafka --redis --smtp`);
  return v;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function start(name, cmd, args, extraEnv) {
  const out = fs.openSync(path.join(ARTIFACTS, name + '.log'), 'w');
  const child = spawn(cmd, args, { env: Object.assign({}, process.env, extraEnv), stdio: ['ignore', 'pipe', out] });
  child.name = name;
  children.push(child);
  child.on('exit', (code, sig) => { child.exited = { code, sig }; });
  return child;
}

function stopAll() {
  for (const c of children) if (!c.exited) c.kill('SIGTERM');
  const deadline = Date.now() + 5000;
  for (const c of children) {
    while (!c.exited && Date.now() < deadline) execFileSync('sleep', ['0.1']);
    if (!c.exited) c.kill('SIGKILL');
  }
}

// Polls fn() (an async predicate returning a value or falsy) until it returns a truthy value.
async function until(fn, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}` + (last instanceof Error ? ': ' + last.message : ''));
    await new Promise((r) => setTimeout(r, 100));
  }
}

function b64url(buf) { return Buffer.from(buf).toString('base64url'); }
// gateway/core/link.h: base64url(id "." expiry) "." base64url(first 16 bytes of HMAC-SHA256).
function linkToken(secret, id, expires) {
  const payload = `${id}.${expires}`;
  return b64url(payload) + '.' + b64url(crypto.createHmac('sha256', secret).update(payload).digest().subarray(0, 16));
}

// A small but real PDF (one page, "Songda browser test").
function samplePdf() {
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    null,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  const text = 'BT /F1 24 Tf 72 760 Td (Songda browser test: civil ruling) Tj ET';
  objs[3] = `<< /Length ${text.length} >>\nstream\n${text}\nendstream`;
  let out = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => { offsets.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n` + offsets.map((o) => String(o).padStart(10, '0') + ' 00000 n \n').join('');
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

function testConfig(simUrl) {
  let y = fs.readFileSync(path.join(ROOT, 'config/gateway.yaml'), 'utf8');
  const once = (from, to) => {
    const n = y.split(from).length - 1;
    if (n !== 1) throw new Error(`config/gateway.yaml: expected "${from}" once, found ${n}`);
    y = y.replace(from, to);
  };
  once('endpoint: "https://dysmsapi.aliyuncs.com"', `endpoint: "${simUrl}"`);
  once('endpoint: "https://sms.tencentcloudapi.com"', `endpoint: "${simUrl}"`);
  once('endpoint: "https://api.weixin.qq.com"', `endpoint: "${simUrl}"`);
  once('smtp_url: "smtp://127.0.0.1:587"', `smtp_url: "smtp://${env('SONGDA_TEST_SMTP_HOST')}:${env('SONGDA_TEST_SMTP_PORT')}"`);
  once('starttls: required', 'starttls: none');
  once('quiet_hours:\n  enabled: true', 'quiet_hours:\n  enabled: false');
  once('  threads: 8\n', '  threads: 16\n');
  return y;
}

async function main() {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const brokers = env('SONGDA_TEST_KAFKA_BROKERS');
  const redisUrl = env('SONGDA_TEST_REDIS_URL');
  for (const bin of ['songda', 'songda-provider-sim']) {
    if (!fs.existsSync(path.join(BUILD, bin))) throw new Error(`${path.join(BUILD, bin)} is missing: build it first (scripts/build release)`);
  }

  // ---- Services: topics, simulator, songda ----
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'songda-browser-'));
  for (const t of ['court.case-events', 'court.case-events.dlq', 'songda.evidence.checkpoints']) {
    execFileSync('kcat', ['-b', brokers, '-L', '-t', t], { stdio: 'ignore', timeout: 20_000 });  // auto-creates
  }
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const sim = start('simulator', path.join(BUILD, 'songda-provider-sim'), ['--listen', '127.0.0.1:0', '--callback-base', base], {});
  const simUrl = await new Promise((resolve, reject) => {
    let buf = '';
    sim.stdout.on('data', (d) => {
      buf += d;
      const m = /listening (http:\/\/\S+)/.exec(buf);
      if (m) resolve(m[1]);
    });
    sim.on('exit', () => reject(new Error('the simulator exited; see tests/artifacts/browser/simulator.log')));
  });
  sim.stdout.resume();
  fs.writeFileSync(path.join(work, 'gateway.yaml'), testConfig(simUrl));
  execFileSync(path.join(BUILD, 'songda'), ['keygen', '--out', path.join(work, 'keys')], { stdio: 'ignore' });
  const docs = path.join(work, 'documents');
  fs.mkdirSync(docs);
  const pdf = samplePdf();
  const pdfSha = crypto.createHash('sha256').update(pdf).digest('hex');
  fs.writeFileSync(path.join(docs, pdfSha), pdf);
  const songda = start('songda', path.join(BUILD, 'songda'), ['run', '--config', path.join(work, 'gateway.yaml')], {
    SONGDA_KAFKA_BROKERS: brokers, SONGDA_REDIS_URL: redisUrl, SONGDA_HTTP_LISTEN: `127.0.0.1:${port}`,
    SONGDA_PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    SONGDA_API_KEYS: `${COURT}=${COURT_KEY},HN-ZZ-JS=${OTHER_KEY}`, SONGDA_ADMIN_TOKEN: ADMIN,
    SONGDA_LINK_SECRET: LINK_SECRET, SONGDA_CALLBACK_KEY: 'sim-callback-key',
    SONGDA_ALIYUN_ACCESS_KEY_ID: 'sim-aliyun-access-key-id', SONGDA_ALIYUN_ACCESS_KEY_SECRET: 'sim-aliyun-access-key-secret',
    SONGDA_TENCENT_SECRET_ID: 'AKIDsimulator00000000000000000000000', SONGDA_TENCENT_SECRET_KEY: 'sim-tencent-secret-key',
    SONGDA_WECHAT_APP_SECRET: 'sim-wechat-app-secret', SONGDA_WECHAT_CALLBACK_TOKEN: 'sim-wechat-callback-token',
    SONGDA_EVIDENCE_KEY_FILE: path.join(work, 'keys/court.key'), SONGDA_EVIDENCE_SALT: 'browser-evidence-salt-0123456789',
    SONGDA_EVIDENCE_CHECKPOINT_MS: '300', SONGDA_DOCUMENT_DIR: docs,
  });
  songda.stdout.pipe(fs.createWriteStream(path.join(ARTIFACTS, 'songda.out.log')));
  await until(async () => {
    if (songda.exited) throw new Error('songda exited: see tests/artifacts/browser/songda.log');
    const r = await fetch(base + '/readyz');
    return r.status === 200;
  }, 'songda /readyz', 60_000);
  log('songda ready at', base, '; simulator at', simUrl);

  const api = async (p, opts = {}) => {
    const r = await fetch(base + p, Object.assign({}, opts, { headers: Object.assign({ Authorization: 'Bearer ' + COURT_KEY }, opts.headers || {}) }));
    return { status: r.status, json: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
  };

  // The case event this run publishes (a fresh case number, so the console starts empty).
  const n = 900 + Math.floor(Math.random() * 9000);
  const caseNumber = `(2026)豫14民初${n}号`;
  const appUser = 'u-browser-' + n;
  const mobile = '+861390000' + String(n).padStart(4, '0');
  const event = {
    schema: 'songda.case-event/v1', event_id: crypto.randomUUID(), type: 'document.served',
    occurred_at: new Date().toISOString(), court: { id: COURT, name: '商丘市中级人民法院' },
    case: { number: caseNumber, title: '赵六诉钱七民间借贷纠纷' },
    document: { id: 'DOC-B-' + n, title: '民事裁定书', sha256: pdfSha, pages: 1 },
    recipients: [{
      id: 'P-B1', role: 'party', name: '赵六',
      contacts: { mobile, email: `zhaoliu${n}@example.cn`, app_user: appUser },
      consent: { basis: 'confirmed', scope: ['*'], ref: 'CONSENT-B-' + n, recorded_at: '2026-11-01T10:00:00+08:00' },
    }],
    params: {},
  };

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    // ---- 1. Clerk console: sign in, empty state, live timeline ----
    const clerkCtx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'zh-CN' });
    // Every frame: count print() calls instead of opening a dialog.
    await clerkCtx.addInitScript(() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; });
    const clerk = await clerkCtx.newPage();
    const consoleErrors = [];
    clerk.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    await clerk.goto(base + '/console/');
    await clerk.locator('#signin').waitFor();
    await clerk.fill('#api-key', 'wrong-key');
    await clerk.click('#signin-form button[type=submit]');
    await clerk.locator('#signin-error', { hasText: '密钥不正确' }).waitFor();
    await clerk.fill('#api-key', COURT_KEY);
    await clerk.click('#signin-form button[type=submit]');
    await clerk.locator('#who-text', { hasText: COURT }).waitFor();
    consoleErrors.length = 0;  // the wrong key's 401 above was expected
    await clerk.evaluate(() => { window.__sameDocument = true; });  // gone if the page reloads
    await clerk.fill('#case-number', caseNumber);
    await clerk.click('#case-form button[type=submit]');
    await clerk.locator('#case-message', { hasText: '没有找到案号' }).waitFor();
    await clerk.locator('#live.on').waitFor();
    await clerk.screenshot({ path: path.join(ARTIFACTS, '01-console-empty-case.png'), fullPage: true });
    log('clerk signed in; empty state shown; live stream open');

    // The in-app inbox of the party, open before anything arrives.
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN',
      acceptDownloads: true,
      userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36',
    });
    const inboxLink = await fetch(`${base}/v1/inbox/${appUser}/link`, { method: 'POST', headers: { Authorization: 'Bearer ' + ADMIN } });
    need(inboxLink.status === 200, 'the operator gets an inbox link (got ' + inboxLink.status + ')');
    const courtInbox = await api(`/v1/inbox/${appUser}/link`, { method: 'POST' });
    need(courtInbox.status === 403, 'a court key may not mint inbox links (got ' + courtInbox.status + ')');
    const inbox = await phone.newPage();
    await inbox.goto(base + (await inboxLink.json()).url);
    await inbox.locator('#state', { hasText: '暂无消息' }).waitFor();

    // Publish: the deliveries appear in the console without a reload.
    execFileSync('kcat', ['-b', brokers, '-P', '-t', 'court.case-events', '-k', caseNumber], { input: JSON.stringify(event) });
    log('published event', event.event_id, 'for', caseNumber);
    const smsRow = clerk.locator('.delivery[data-channel="sms"]');
    await smsRow.waitFor({ timeout: STEP_TIMEOUT });
    const delivered = smsRow.locator('.status.current[data-status="DELIVERED"]');
    await delivered.waitFor({ timeout: STEP_TIMEOUT });
    need((await delivered.textContent()) === '已到达', 'the SMS shows 已到达');
    need(await delivered.evaluate((e) => getComputedStyle(e).backgroundColor) === 'rgb(26, 127, 55)', '已到达 is green');
    need((await smsRow.locator('.address').textContent()).includes('****'), 'the clerk sees the number masked');
    const html = await clerk.content();
    const at = html.indexOf(mobile.slice(3));
    need(at < 0, 'the full phone number is nowhere on the console: …' + html.slice(Math.max(0, at - 200), at + 50));
    await clerk.screenshot({ path: path.join(ARTIFACTS, '02-console-delivered.png'), fullPage: true });
    log('console shows the SMS 已到达 (DELIVERED) live');

    // The inbox shows the message arrive, live.
    await inbox.locator('li.message.unread').waitFor({ timeout: STEP_TIMEOUT });
    await inbox.locator('#unread', { hasText: '1 条未读' }).waitFor();
    await inbox.screenshot({ path: path.join(ARTIFACTS, '03-inbox-unread.png'), fullPage: true });

    // ---- 3. Party: the link from the SMS the simulator received ----
    const cases = await api('/v1/cases/' + encodeURIComponent(caseNumber) + '/deliveries');
    const byChannel = Object.fromEntries(cases.json.deliveries.map((d) => [d.channel, d]));
    const smsId = byChannel.sms.id;
    const emailId = byChannel.email.id;
    const inappId = byChannel.inapp.id;
    const sent = await until(async () => {
      const r = await (await fetch(simUrl + '/_sim/messages')).json();
      return r.messages.find((m) => JSON.stringify(m).includes(mobile.slice(3)) && JSON.stringify(m.params || {}).includes('/r/'));
    }, 'the SMS at the simulator');
    const smsLink = /(http:\/\/\S+\/r\/[A-Za-z0-9_.-]+)/.exec(JSON.stringify(sent.params))[1];
    log('party link from the SMS:', smsLink.replace(/\/r\/.*/, '/r/…'));
    const before = (await api('/v1/deliveries/' + smsId)).json;

    const party = await phone.newPage();
    await party.goto(smsLink);
    // What a link scanner also gets: who it is from, and one button; opening the link records nothing.
    await party.locator('h1', { hasText: '民事裁定书' }).waitFor();
    await party.locator('text=' + caseNumber).first().waitFor();
    need(await party.locator('#open').isVisible(), 'the 查看通知 button is there');
    need(await party.locator('#ack').count() === 0 && await party.locator('#open-document').count() === 0,
      'neither the document nor 确认收到 before the notice is opened');
    await party.screenshot({ path: path.join(ARTIFACTS, '04a-party-landing.png'), fullPage: true });
    const landed = (await api('/v1/deliveries/' + smsId)).json;
    need(landed.status === 'DELIVERED' && landed.evidence_indexes.length === before.evidence_indexes.length,
      'loading the link recorded nothing (status ' + landed.status + ')');
    await party.click('#open');
    need(await party.locator('#ack').isVisible(), 'the 确认收到 button is there');
    await party.screenshot({ path: path.join(ARTIFACTS, '04-party-notice.png'), fullPage: true });

    // The clerk sees READ appear, still on the same document.
    const read = smsRow.locator('.status.current[data-status="READ"]');
    await read.waitFor({ timeout: STEP_TIMEOUT });
    need((await read.textContent()) === '已阅读', 'the SMS shows 已阅读');
    need(await read.evaluate((e) => getComputedStyle(e).backgroundColor) === 'rgb(14, 116, 144)', '已阅读 is teal');
    need(await clerk.evaluate(() => window.__sameDocument === true), 'the console did not reload');
    await clerk.screenshot({ path: path.join(ARTIFACTS, '05-console-read.png'), fullPage: true });
    log('console shows 已阅读 (READ) live, without a reload');

    // The document: its bytes hash to the event's sha256.
    const docResponse = party.context().waitForEvent('response', (r) => r.url().endsWith('/document'));
    await party.click('#open-document');
    const resp = await docResponse;
    need(resp.status() === 200, 'the document is served (got ' + resp.status() + ')');
    need(resp.headers()['content-type'] === 'application/pdf', 'served as a PDF (the phone shows it in its viewer)');
    // The bytes as the browser receives them, hashed in the page (the viewer hides the raw body from Playwright).
    const served = await party.evaluate(async () => {
      const r = await fetch(document.getElementById('open-document').href);
      const digest = await crypto.subtle.digest('SHA-256', await r.arrayBuffer());
      return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    });
    need(served === pdfSha, `the downloaded bytes hash to the event's sha256 (${served})`);
    need(resp.headers()['x-document-sha256'] === pdfSha, 'the document response names its hash');
    for (const p of phone.pages()) if (p !== party && p !== inbox) await p.close();
    log('document downloaded; its SHA-256 matches the event');

    // 确认收到.
    await party.click('#ack');
    await party.locator('#acknowledged', { hasText: '您已确认收到' }).waitFor();
    need(await party.locator('#ack').count() === 0, 'no second 确认收到 button');
    await party.screenshot({ path: path.join(ARTIFACTS, '06-party-acknowledged.png'), fullPage: true });
    await smsRow.locator('.status.current[data-status="ACKNOWLEDGED"]', { hasText: '已确认收到' }).waitFor({ timeout: STEP_TIMEOUT });

    const after = (await api('/v1/deliveries/' + smsId)).json;
    const statuses = after.history.map((h) => h.status);
    need(after.status === 'ACKNOWLEDGED', 'the delivery is ACKNOWLEDGED (is ' + after.status + ')');
    for (const s of ['DELIVERED', 'READ', 'RETRIEVED', 'ACKNOWLEDGED']) need(statuses.includes(s), `history has ${s}: ${statuses}`);
    need(statuses.filter((s) => s === 'READ').length === 1, 'READ recorded once');
    need(after.evidence_indexes.length === before.evidence_indexes.length + 3,
      `three more evidence records (READ, RETRIEVED, ACKNOWLEDGED): ${before.evidence_indexes.length} → ${after.evidence_indexes.length}`);
    const bundle = await until(async () => {
      const r = await api('/v1/deliveries/' + smsId + '/proof');
      return r.status === 200 && r.json;
    }, 'the proof bundle');
    const mine = bundle.records.filter((r) => r.delivery_id === smsId);
    const types = mine.map((r) => r.type);
    for (const t of ['READ', 'RETRIEVED', 'ACKNOWLEDGED']) need(types.includes(t), `the proof has ${t}: ${types}`);
    need(mine.find((r) => r.type === 'RETRIEVED').details.served_sha256 === pdfSha, 'RETRIEVED records the hash served');
    log('evidence: /v1/deliveries shows READ, RETRIEVED, ACKNOWLEDGED; the proof bundle holds the three records');

    // ---- 2. Certificate: view and print ----
    await smsRow.locator('button.proof').click();
    const frame = clerk.frameLocator('#certificate-frame');
    await frame.locator('.sub').waitFor({ timeout: STEP_TIMEOUT });
    need((await frame.locator('h1').textContent()).includes('电子送达凭证'), 'the certificate is shown');
    await clerk.click('#certificate-print');
    const printed = await until(async () => clerk.frames().find((f) => f.url().includes('/console/certificate/'))?.evaluate(() => window.__printed), 'print()');
    need(printed === 1, 'print() was called once');
    await clerk.bringToFront();
    await clerk.screenshot({ path: path.join(ARTIFACTS, '07-console-certificate.png') });
    const certUrl = await clerk.getAttribute('#certificate-open', 'href');
    const certPage = await clerkCtx.newPage();
    await certPage.goto(base + certUrl);
    await certPage.locator('.sub').waitFor();
    await certPage.pdf({ path: path.join(ARTIFACTS, '08-certificate.pdf'), format: 'A4' });
    await certPage.close();
    await clerk.click('#certificate-close');
    log('certificate viewed and printed');

    // A second event of the case, for two lawyers: one can be reached in the app; the other has only an e-mail,
    // which payment notices do not use, so no delivery can be planned for them. The console names them, live,
    // for the clerk to serve by other means.
    const unreachableEvent = {
      ...event, event_id: crypto.randomUUID(), type: 'payment.due', document: undefined,
      recipients: [{
        id: 'P-B8', role: 'lawyer', name: '周九', contacts: { app_user: 'u-b8-' + n },
        consent: { basis: 'confirmed', scope: ['*'], ref: 'CONSENT-B8-' + n },
      }, {
        id: 'P-B9', role: 'lawyer', name: '孙八', contacts: { email: `sunba${n}@example.cn` },
        consent: { basis: 'confirmed', scope: ['*'], ref: 'CONSENT-B9-' + n },
      }],
      params: { amount: '100', due_date: '2026-12-31' },
    };
    execFileSync('kcat', ['-b', brokers, '-P', '-t', 'court.case-events', '-k', caseNumber],
      { input: JSON.stringify(unreachableEvent) });
    const unreachableRow = clerk.locator('.unreachable li[data-recipient="P-B9"]');
    await unreachableRow.waitFor({ timeout: STEP_TIMEOUT });
    need((await unreachableRow.textContent()).includes('孙八'), 'the unreachable recipient is named');
    need((await clerk.locator('.unreachable h3').textContent()).includes('请以其他方式送达'), 'and what to do is said');
    need(await clerk.locator('.unreachable li').count() === 1, 'only the one no channel reaches');
    need(!(await clerk.content()).includes(`sunba${n}@`), 'their e-mail is not shown');
    await clerk.screenshot({ path: path.join(ARTIFACTS, '08b-console-unreachable.png'), fullPage: true });
    log('console names the recipient no channel could reach');

    // ---- 4. Expired and forged links: a clear page, no evidence ----
    const emailBefore = (await api('/v1/deliveries/' + emailId)).json;
    const now = Math.floor(Date.now() / 1000);
    const expired = await party.goto(`${base}/r/${linkToken(LINK_SECRET, emailId, now - 60)}`);
    need(expired.status() === 410, 'an expired link answers 410 (got ' + expired.status() + ')');
    await party.locator('h1', { hasText: '链接已过期' }).waitFor();
    await party.screenshot({ path: path.join(ARTIFACTS, '09-link-expired.png'), fullPage: true });
    const forged = await party.goto(`${base}/r/${linkToken('not-the-court-secret-0123456789', emailId, now + 3600)}`);
    need(forged.status() === 403, 'a forged link answers 403 (got ' + forged.status() + ')');
    await party.locator('h1', { hasText: '链接无效' }).waitFor();
    await party.screenshot({ path: path.join(ARTIFACTS, '10-link-forged.png'), fullPage: true });
    const [payload, mac] = smsLink.split('/r/')[1].split('.');
    const swapped = Buffer.from(payload, 'base64url').toString().replace(smsId, emailId);
    const tampered = await party.goto(`${base}/r/${b64url(swapped)}.${mac}`);
    need(tampered.status() === 403, 'a link re-pointed at another delivery answers 403');
    for (const doc of ['/document', '/ack']) {
      const r = await fetch(`${base}/r/${linkToken(LINK_SECRET, emailId, now - 60)}${doc}`, { method: doc === '/ack' ? 'POST' : 'GET' });
      need(r.status === 410, `expired ${doc} answers 410 (got ${r.status})`);
    }
    const emailAfter = (await api('/v1/deliveries/' + emailId)).json;
    need(emailAfter.evidence_indexes.length === emailBefore.evidence_indexes.length, 'no evidence from expired or forged links');
    need(JSON.stringify(emailAfter.history) === JSON.stringify(emailBefore.history), 'no status change from expired or forged links');
    log('expired → 410, forged → 403, tampered → 403; no evidence written');

    // ---- 5. Inbox: opening the message marks it read, live ----
    const item = inbox.locator(`li.message[data-id="${inappId}"] a`);
    const href = await item.getAttribute('href');
    const opened = await phone.newPage();
    await opened.goto(base + href);
    await opened.click('#open');
    await opened.locator('#ack').waitFor();
    await inbox.locator(`li.message[data-id="${inappId}"]:not(.unread)`).waitFor({ timeout: STEP_TIMEOUT });
    need(await inbox.locator('#unread').isHidden(), 'no unread count left');
    await inbox.bringToFront();  // a background tab may not paint
    await inbox.screenshot({ path: path.join(ARTIFACTS, '11-inbox-read.png'), fullPage: true });
    const inappAfter = (await api('/v1/deliveries/' + inappId)).json;
    need(inappAfter.status === 'READ', 'the in-app delivery is READ (is ' + inappAfter.status + ')');
    log('inbox turned read live');

    // ---- 6. Broadcast progress ----
    const group = 'BROWSER-G' + n;
    const put = await api('/v1/groups/' + group, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: '浏览器测试律师群', court: { id: COURT, name: '商丘市中级人民法院' } }),
    });
    need(put.status === 200 || put.status === 201, 'group created (got ' + put.status + ')');
    const csv = 'id,name,firm,mobile,app_user,consent_basis,consent_scope,consent_ref\n' +
      [0, 1, 2].map((i) => `LAW-B${i},律师${i},河南某某律师事务所,+86137${String(n).padStart(4, '0')}00${i},lawyer-b${n}-${i},confirmed,notice.broadcast,REG-${i}`).join('\n') + '\n';
    const imp = await api(`/v1/groups/${group}/members:import`, { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: csv });
    need(imp.status === 200, 'members imported (got ' + imp.status + ')');
    const bid = 'BROWSER-B' + n;
    const started = await api('/v1/broadcasts', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: bid, group_id: group, reference: '浏览器测试〔2026〕1号', channels: ['inapp'],
        params: { notice_title: '测试通知', notice_text: '浏览器测试群发。' } }),
    });
    need(started.status === 202 || started.status === 200, 'broadcast started (got ' + started.status + ')');
    // The list shows it; opening it shows the progress reaching every member.
    await clerk.click('#tab-broadcasts');
    await clerk.locator(`.broadcast-item[data-broadcast="${bid}"]`).waitFor();
    await clerk.click(`.broadcast-item[data-broadcast="${bid}"]`);
    await clerk.locator('#broadcast-result').waitFor();
    await clerk.locator('#broadcast-summary', { hasText: '100%' }).waitFor({ timeout: STEP_TIMEOUT });
    await clerk.locator('#broadcast-counts [data-status="DELIVERED"] dd', { hasText: '3' }).waitFor();
    await clerk.screenshot({ path: path.join(ARTIFACTS, '12-console-broadcast.png'), fullPage: true });
    log('broadcast progress shown live to 100%');

    // The console never loaded anything from outside and logged no script error.
    need(consoleErrors.length === 0, 'no console errors: ' + consoleErrors.join(' | '));
  } finally {
    await browser.close();
  }
}

try {
  await main();
  log('PASS: console and party pages');
} catch (e) {
  failures += 1;
  console.error('[browser] FAIL:', e.stack || e.message);
  console.error('[browser] logs and screenshots: tests/artifacts/browser/');
} finally {
  stopAll();
}
process.exit(failures ? 1 : 0);
