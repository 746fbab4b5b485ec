// Drives the real inspector page in headless Chromium: alerts posted to a real
// hookscope appear live, one is opened and its problems read, it is replayed to
// a second hookscope, the behaviour form changes the answers, 1000+ entries stay
// usable, hostile text stays text. Saves a screenshot.
//
// Run by tests/browser.rs (cargo test) with HOOKSCOPE_BIN set; needs
// /usr/bin/chromium and `npm ci` in this folder.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BIN = process.env.HOOKSCOPE_BIN;
const SCREENSHOT = process.env.HOOKSCOPE_SCREENSHOT ?? 'target/inspector.png';
// With HOOKSCOPE_SCREENSHOTS=DIR, each view is also saved there at 1280x800 (npm run screenshots).
const SCREENSHOTS = process.env.HOOKSCOPE_SCREENSHOTS;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core on what the page shows now: no serious or critical violation. */
async function accessible(page, view) {
  await page.addScriptTag({ content: AXE });
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(found, [], `axe-core on ${view}`);
  axeViews.push(view);
}
const axeViews = [];

async function shoot(page, name) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.evaluate(() => { for (const pane of document.querySelectorAll('#side, #list')) pane.scrollTop = 0; });
  await page.screenshot({ path: join(SCREENSHOTS, `inspector-${name}.png`) });
}

async function panel(page, name) {
  await page.click(`#detail .tabs button[data-panel="${name}"]`);
  await page.waitForSelector(`#detail .panel[data-panel="${name}"]:not([hidden])`);
}
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
assert.ok(BIN, 'HOOKSCOPE_BIN must point at the hookscope binary');

const children = [];

function startHookscope(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['listen', '--port', '0', '--admin', '127.0.0.1:0', '--format', 'quiet', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    const found = {};
    const timer = setTimeout(() => reject(new Error('hookscope did not start')), 10000);
    createInterface({ input: child.stderr }).on('line', (line) => {
      const listening = line.match(/listening on (\S+)/);
      const inspector = line.match(/inspector on (\S+)/);
      if (listening) found.url = listening[1];
      if (inspector) found.admin = inspector[1];
      if (found.url && found.admin) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => reject(new Error(`hookscope exited with ${code}`)));
  });
}

const alert = (alertId, extra = {}) => JSON.stringify({
  id: 'AllLogs.IPMonitoring', createdAt: '2020-10-13T03:35:39Z', severity: 'INFO', type: 'RULE',
  link: 'https://runpanther.io/alerts/b90c19e66e160e194a5b3b94ec27fb7c',
  title: 'New Alert: Suspicious traffic detected from [123.123.123.123]', name: 'Monitor Suspicious IPs',
  alertId, description: 'This rule alerts on any activity outside of our IP address whitelist', runbook: '',
  tags: ['Network Monitoring', 'Threat Intel'], version: 'CJm9PiaXV0q8U7Qhg3HcSw9xo0ZWZwMm',
  alertContext: { ip: '123.123.123.123', actions: ['ssh', 'scan'] }, ...extra,
});

async function post(url, body, headers = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  await response.text();
  return response.status;
}

/** Sends one raw HTTP/1.1 request (a method and Host no HTTP library would send) and reads the answer. */
function rawRequest(url, method, path, host) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    });
    let answer = '';
    socket.on('data', (chunk) => { answer += chunk; });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

let browser;
let findMs;
let scrollMs;
try {
  const sink = await startHookscope([]);
  const target = await startHookscope(['--status', '202', '--body', 'replayed-ok']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  let dialogs = 0;
  page.on('dialog', (dialog) => { dialogs += 1; dialog.dismiss(); });
  await page.goto(sink.admin + '/');
  await page.waitForSelector('#live.on', { timeout: 10000 });
  // The empty state teaches the first step, with this machine's webhook URL.
  assert.match(await page.textContent('#empty'), new RegExp(`hookscope send --test --to ${sink.url}/panther`));
  await accessible(page, 'the empty list');
  await shoot(page, 'empty');

  // Alerts posted after the page loaded appear live.
  assert.equal(await post(sink.url + '/panther', alert('b90c19e66e160e194a5b3b94ec27fb7c')), 200);
  const invalid = alert('bad-one', { severity: 'SEVERE', tags: ['ok', 7] });
  assert.equal(await post(sink.url + '/panther', invalid), 200);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 2, null, { timeout: 5000 });
  const firstRow = await page.textContent('#rows tr.row:first-child');
  assert.match(firstRow, /invalid/);
  // Each row names its alert: severity and title; the attempt is a number, as everywhere.
  const named = await page.textContent('#rows tr.row[data-id="1"]');
  assert.match(named, /INFONew Alert: Suspicious traffic detected/);
  assert.doesNotMatch(named, /retry/);
  // Acknowledged at once: attempt 1 of 1.
  assert.equal(await page.textContent('#rows tr.row[data-id="1"] td:last-child'), '1 of 1');

  // Open the invalid one: its problems are listed with their pointers.
  await page.click('#rows tr.row[data-id="2"]');
  await page.waitForSelector('#detail:not([hidden])');
  const problems = await page.textContent('#problems');
  assert.match(problems, /\/severity: expected one of INFO, LOW, MEDIUM, HIGH, CRITICAL/);
  assert.match(problems, /\/tags\/1: expected a string, found number 7/);
  assert.match(await page.textContent('#detail-body'), /"alertContext"/);
  // Compare #2 with #1: by pointer, not by line.
  // Waited on for its content, not for any list item: under load a live update can
  // redraw the detail between the fill and the click (the compare step failed 1 of 5
  // runs beside a build), and an empty field answers with an error item.
  await panel(page, 'compare');
  let compared = false;
  for (let attempt = 0; attempt < 3 && !compared; attempt++) {
    await page.fill('#compare-id', '1');
    await page.click('#compare-button');
    compared = await page
      .waitForFunction(() => document.querySelector('#compare-result').textContent.includes('/severity'), null, { timeout: 10000 })
      .then(() => true, () => false);
  }
  assert.ok(compared, 'compare showed the changes: ' + await page.textContent('#compare-result'));
  const diff = await page.textContent('#compare-result');
  assert.match(diff, /~ \/severity: "SEVERE" → "INFO"/);
  assert.match(diff, /~ \/alertId: "bad-one" → "b90c19e66e160e194a5b3b94ec27fb7c"/);
  // The sides are named, and can be swapped.
  assert.match(await page.textContent('#compare-sides'), /left #2 \(this one\) → right #1/);
  await page.click('#compare-swap');
  await page.waitForFunction(() => document.querySelector('#compare-result').textContent.includes('"INFO" → "SEVERE"'));
  assert.match(await page.textContent('#compare-sides'), /left #1 → right #2 \(this one\)/);
  await accessible(page, 'compare');
  await shoot(page, 'compare');
  await page.click('#compare-swap');
  await panel(page, 'request');
  // A problem opens its place in the body.
  await page.click('#problems li.jump:has-text("/tags/1")');
  await page.waitForSelector('#detail-body [data-pointer="/tags/1"].hl');
  assert.equal(await page.textContent('#detail-body [data-pointer="/tags/1"]'), '7');

  // Replay it to the second hookscope.
  await page.fill('#replay-url', target.url);
  await page.click('#replay-button');
  await page.waitForFunction(() => document.querySelector('#replay-result').textContent.includes('→ 202'), null, { timeout: 5000 });
  assert.match(await page.textContent('#replay-result'), /replayed-ok/);
  const arrived = await (await fetch(target.admin + '/api/requests/1')).json();
  assert.deepEqual(arrived.body, JSON.parse(invalid));
  assert.equal(arrived.raw_body, undefined, 'a compact body is kept as it came');

  await accessible(page, 'a request');
  await shoot(page, 'request');

  // The behaviour form, in its own dialog, changes the next answer.
  await page.click('#open-settings');
  await page.waitForSelector('#settings[open]');
  await accessible(page, 'the answer settings');
  await shoot(page, 'settings');
  await page.fill('#config-script', '503');
  await page.click('#config-save');
  await page.waitForFunction(() => document.querySelector('#config-result').textContent === 'applied');
  assert.equal(await post(sink.url + '/panther', alert('after-config')), 503);
  await page.fill('#config-script', '');
  await page.click('#config-save');
  await page.waitForFunction(() => document.querySelector('#config-result').textContent === 'applied');
  await page.click('#settings-close');
  await page.waitForSelector('#settings', { state: 'hidden' });

  // Hostile text is shown as text, never as markup.
  const hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>';
  await post(sink.url + '/xss?q=<b>bold</b>', JSON.stringify({ title: hostile }), { 'x-evil': hostile });
  await page.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 4, null, { timeout: 5000 });
  await page.click('#rows tr.row[data-id="4"]');
  await page.waitForFunction(() => document.querySelector('#detail-title').textContent === '#4');
  assert.match(await page.textContent('#detail-body'), /<script>alert\(2\)<\/script>/);
  assert.equal(await page.locator('#side img, #list img, #side b, #list b').count(), 0);
  assert.match(await page.textContent('#detail-headers'), /<img src=x onerror="alert\(1\)">/);
  // The Answer tab lists the headers the sender was told, with what it was told.
  await page.click('#detail button[role="tab"][data-panel="answer"]');
  await page.waitForFunction(() => /content-type/.test(document.querySelector('#detail-answer-headers').textContent));
  await page.click('#detail button[role="tab"][data-panel="request"]');

  await page.click('#rows tr.row[data-id="2"]');
  await page.waitForFunction(() => document.querySelector('#detail-title').textContent === '#2');
  await page.evaluate(() => { document.querySelector('#side').scrollTop = 0; });

  // The keyboard: j/k move, Enter opens, Esc closes, / finds, r replays.
  await page.keyboard.press('Escape');
  await page.waitForSelector('#detail', { state: 'hidden' });
  await page.keyboard.press('j');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^#\d+$/.test(document.querySelector('#detail-title').textContent) && !document.querySelector('#detail').hidden);
  const opened = Number((await page.textContent('#detail-title')).slice(1));
  await page.keyboard.press('k');
  await page.keyboard.press('Enter');
  await page.waitForFunction((before) => document.querySelector('#detail-title').textContent === `#${before + 1}`, opened);
  await page.keyboard.press('j');
  await page.keyboard.press('Enter');
  await page.waitForFunction((before) => document.querySelector('#detail-title').textContent === `#${before}`, opened);
  await page.keyboard.press('r');
  await page.waitForFunction(() => document.querySelector('#replay-result').textContent.includes('→ 202'), null, { timeout: 5000 });
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'find-q');
  await page.keyboard.press('Escape');
  await page.click('#rows tr.row[data-id="2"]');
  await page.waitForFunction(() => document.querySelector('#detail-title').textContent === '#2');

  // Edit and send starts from the exact bytes: a body with spaces and 1.0 stays as it came.
  const spaced = '{"title":  "spaced out", "n": 1.0,\n "alertId": "exact"}';
  assert.equal(await post(sink.url + '/exact', spaced), 200);
  await page.waitForFunction(() => [...document.querySelectorAll('#rows tr.row')].some((tr) => tr.textContent.includes('/exact')));
  const exactId = await page.evaluate(() => [...document.querySelectorAll('#rows tr.row')].find((tr) => tr.textContent.includes('/exact')).dataset.id);
  await page.click(`#rows tr.row[data-id="${exactId}"]`);
  await panel(page, 'edit');
  await page.waitForFunction((text) => document.querySelector('#edit-body').value === text, spaced);
  assert.match(await page.textContent('#edit-bytes'), new RegExp(`^${Buffer.byteLength(spaced)} bytes, exactly as received`));
  await accessible(page, 'edit and send');
  await shoot(page, 'edit');
  await page.fill('#edit-url', target.url + '/exact-again');
  await page.click('#edit-send');
  await page.waitForFunction(() => document.querySelector('#edit-result').textContent.startsWith('→ 202'));
  const resent = (await (await fetch(target.admin + '/api/requests?path=/exact-again')).json())[0];
  assert.equal(resent.raw_body, spaced, 'sent unedited: the same bytes');
  await page.click('#edit-pretty');
  assert.match(await page.textContent('#edit-bytes'), /changed .*no longer verifies/);
  await page.click('#edit-exact');
  assert.match(await page.textContent('#edit-bytes'), /exactly as received/);
  await panel(page, 'request');
  await page.click('#rows tr.row[data-id="2"]');
  await page.waitForFunction(() => document.querySelector('#detail-title').textContent === '#2');

  // Both themes follow the system's; each is checked by axe-core.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await accessible(page, 'a request, light theme');
  await shoot(page, 'request-light');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.notEqual(await background(), light, 'the dark theme is another');
  // At 1920x1080 as at 1280x800: nothing wider than the window.
  await page.setViewportSize({ width: 1920, height: 1080 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 1920));
  // Usable at 800 px: nothing wider than the window, list and detail both shown.
  await page.setViewportSize({ width: 800, height: 800 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 800), 'no page-wide horizontal scroll at 800 px');
  assert.ok(await page.isVisible('#rows tr.row[data-id="2"]'));
  assert.ok(await page.isVisible('#detail-title'));
  await page.setViewportSize({ width: 1280, height: 800 });

  // The counts use the summary's words.
  await page.waitForFunction(() => /^\d+ requests/.test(document.querySelector('#stats').textContent));
  assert.match(await page.textContent('#stats'), /alerts \d+, delivered after retries \d+, never acked \d+/);

  // The link the terminal prints under each exchange opens it.
  const linked = await browser.newPage();
  await linked.goto(sink.admin + '/#1');
  await linked.waitForFunction(() => document.querySelector('#detail-title').textContent === '#1');
  await linked.close();

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });

  // 1000+ entries: the list keeps the newest 1000 and stays usable.
  const newestBefore = await page.evaluate(() => Number(document.querySelector('#rows tr.row').dataset.id));
  const burst = [];
  for (let n = 0; n < 1100; n += 1) {
    burst.push(post(sink.url + '/burst', alert(`burst-${n}`)));
    if (burst.length === 50) await Promise.all(burst.splice(0));
  }
  await Promise.all(burst);
  await page.waitForFunction((newest) => document.querySelector('#rows tr.row').dataset.id === String(newest), newestBefore + 1100, { timeout: 20000 });
  assert.equal(await page.locator('#rows tr.row').count(), 1000);
  const started = Date.now();
  await page.click('#rows tr.row:nth-child(500)');
  await page.waitForFunction((id) => document.querySelector('#detail-title').textContent === `#${id}`, newestBefore + 1100 - 499);
  const selectMs = Date.now() - started;
  assert.ok(selectMs < 2000, `selecting a row with 1000 listed took ${selectMs} ms`);

  // In front of a receiver (--forward): the upstream leg beside the answer, the
  // lost acknowledgement's duplicate marked, and a replay that goes there by default.
  // 10,000 kept exchanges: the page stays live; a find and a scroll each take under 100 ms.
  const big = await startHookscope(['--keep', '10000']);
  for (let n = 0; n < 10000; n += 200) {
    await Promise.all(Array.from({ length: 200 }, (_, k) => post(big.url + '/big', alert(`big-${n + k}`))));
  }
  const bigPage = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  bigPage.on('pageerror', (error) => pageErrors.push(error));
  await bigPage.goto(big.admin + '/');
  await bigPage.waitForSelector('#live.on', { timeout: 10000 });
  await bigPage.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 1000, null, { timeout: 20000 });
  // Each action timed five times, the fastest kept: what the page costs, not a
  // moment when a busy machine gave the browser no CPU.
  const fastest = async (action) => {
    const times = [];
    for (let round = 0; round < 5; round += 1) times.push(await action(round));
    return Math.min(...times);
  };
  // A find: from the submit to the list shown with what the server found.
  findMs = await fastest(async (round) => {
    const took = await bigPage.evaluate(async (id) => {
      const started = performance.now();
      document.querySelector('#find-q').value = id;
      document.querySelector('#find').requestSubmit();
      // The list held 1,000 rows: one row left is the find's answer. Watched as the
      // list changes, not once a frame (a busy machine delays frames).
      const found = () => document.querySelectorAll('#rows tr.row').length === 1
        && new URLSearchParams(location.search).get('q') === id;
      await new Promise((resolve) => {
        const watch = new MutationObserver(() => { if (found()) { watch.disconnect(); resolve(); } });
        watch.observe(document.querySelector('#list'), { childList: true, subtree: true });
      });
      return performance.now() - started;
    }, `big-${4242 + round}`);
    await bigPage.click('#find-clear');
    await bigPage.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 1000, null, { timeout: 20000 });
    return took;
  });
  // A scroll of the list, until the frame after it is drawn.
  scrollMs = await fastest((round) => bigPage.evaluate(async (down) => {
    const list = document.querySelector('#list');
    const started = performance.now();
    list.scrollTop = down ? list.scrollHeight : 0;
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    return performance.now() - started;
  }, round % 2 === 0));
  assert.ok(findMs < 100, `a find among 10,000 kept took ${findMs.toFixed(0)} ms`);
  assert.ok(scrollMs < 100, `a scroll of the 1,000 rows shown took ${scrollMs.toFixed(0)} ms`);
  await bigPage.close();

  const front = await startHookscope(['--forward', target.url + '/app', '--script', 'forward>503,forward']);
  const frontPage = await browser.newPage();
  frontPage.on('pageerror', (error) => pageErrors.push(error));
  await frontPage.goto(front.admin + '/');
  await frontPage.waitForSelector('#live.on', { timeout: 10000 });
  assert.equal(await post(front.url + '/hook', alert('lost-ack')), 503);
  assert.equal(await post(front.url + '/hook', alert('lost-ack')), 202);
  await frontPage.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 2, null, { timeout: 5000 });
  assert.match(await frontPage.textContent('#rows tr.row[data-id="1"]'), /503 ⇢ 202/);
  assert.match(await frontPage.textContent('#rows tr.row[data-id="2"]'), /duplicate upstream/);
  assert.match(await frontPage.textContent('#rows tr.row[data-id="1"]'), /lost ack/);
  // Once attempt 2 was acknowledged, attempt 1 knows its delivery's total.
  await frontPage.waitForFunction(() => document.querySelector('#rows tr.row[data-id="1"] td:last-child').textContent.startsWith('1 of 2'));
  await frontPage.click('#rows tr.row[data-id="1"]');
  await frontPage.waitForFunction(() => document.querySelector('#detail-title').textContent === '#1');
  // Where it went, in the detail's first line.
  assert.ok((await frontPage.textContent('#detail-summary')).includes(`forwarded to ${target.url}/app/hook → 202`));
  await panel(frontPage, 'upstream');
  await frontPage.waitForSelector('#upstream:not([hidden])');
  await accessible(frontPage, 'the upstream');
  await shoot(frontPage, 'upstream');
  const leg = await frontPage.textContent('#detail-upstream');
  assert.ok(leg.includes(`sent to${target.url}/app/hook`), leg);
  assert.match(leg, /sender got503 instead/);
  assert.match(await frontPage.textContent('#detail-upstream-body'), /replayed-ok/);
  await frontPage.click('#rows tr.row[data-id="2"]');
  await frontPage.waitForFunction(() => document.querySelector('#detail-title').textContent === '#2');
  assert.match(await frontPage.textContent('#detail-upstream'), /already acknowledged/);
  await frontPage.waitForFunction(() => /duplicates delivered upstream 1/.test(document.querySelector('#stats').textContent), null, { timeout: 5000 });
  // The delivery tab: both attempts, the gap, the lost acknowledgement and the duplicate.
  await panel(frontPage, 'delivery');
  await frontPage.waitForFunction(() => document.querySelectorAll('#delivery-attempts tbody tr').length === 2);
  assert.match(await frontPage.textContent('#delivery-state'), /delivered after 2 attempts, 1 duplicate delivered upstream/);
  const attemptsShown = await frontPage.textContent('#delivery-attempts tbody');
  assert.match(attemptsShown, /lost acknowledgement/);
  assert.match(attemptsShown, /202 \(duplicate\)/);
  await accessible(frontPage, 'the delivery');
  await shoot(frontPage, 'delivery');
  await panel(frontPage, 'request');
  await frontPage.fill('#replay-url', '');
  await frontPage.click('#replay-button');
  await frontPage.waitForFunction(() => document.querySelector('#replay-result').textContent.includes('→ 202'), null, { timeout: 5000 });
  assert.match(await frontPage.textContent('#replay-result'), new RegExp(`${target.url}/app/hook`));

  // Find: the filter is in the URL, the server does the finding, export follows it.
  const found = await browser.newPage();
  found.on('pageerror', (error) => pageErrors.push(error));
  await found.goto(front.admin + '/?status=5xx');
  await found.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 1, null, { timeout: 5000 });
  assert.match(await found.textContent('#rows tr.row'), /503/);
  assert.equal(await found.inputValue('#find-status'), '5xx');
  assert.match(await found.getAttribute('#export-har', 'href'), /\/api\/export\.har\?status=5xx/);
  const har = await (await fetch(front.admin + '/api/export.har?status=5xx')).json();
  assert.equal(har.log.entries.length, 1);
  assert.equal(har.log.entries[0].response.status, 503);
  await found.fill('#find-q', 'LOST-ACK');
  await found.selectOption('#find-status', '');
  await found.click('#find button[type=submit]');
  await found.waitForFunction(() => new URLSearchParams(location.search).get('q') === 'LOST-ACK');
  await found.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 2, null, { timeout: 5000 });
  // Live: a new exchange the filter finds appears; the server leaves out one it does not find.
  await post(front.url + '/hook', alert('lost-ack'));
  await post(front.url + '/hook', alert('something-else'));
  await found.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 3, null, { timeout: 5000 });
  assert.equal((await (await fetch(front.admin + '/api/requests?q=LOST-ACK')).json()).length, 3);
  assert.equal((await (await fetch(front.admin + '/api/requests')).json()).length, 4);
  // Copy as curl: shell-quoted, with the body.
  await found.click('#rows tr.row:first-child');
  await found.waitForSelector('#detail:not([hidden])');
  await found.click('#copy-curl');
  await found.waitForFunction(() => document.querySelector('#curl').textContent.startsWith("curl -X 'POST'"));
  const curl = await found.textContent('#curl');
  assert.match(curl, /-H 'content-type: application\/json'/);
  assert.match(curl, /--data-binary '\{/);
  // A method is any token, backticks included, and a Host is whatever the sender wrote:
  // the pasted command runs nothing of the sender's and goes to this machine's listener.
  const hostileAnswer = await rawRequest(front.url, '`reboot`', '/hostile-method', '169.254.169.254');
  assert.match(hostileAnswer, /^HTTP\/1\.1 /);
  const hostilePage = await browser.newPage();
  await hostilePage.goto(front.admin + '/?path=/hostile-method');
  await hostilePage.waitForFunction(() => document.querySelectorAll('#rows tr.row').length === 1, null, { timeout: 5000 });
  await hostilePage.click('#rows tr.row:first-child');
  await hostilePage.waitForSelector('#detail:not([hidden])');
  await hostilePage.click('#copy-curl');
  await hostilePage.waitForFunction(() => document.querySelector('#curl').textContent.startsWith('curl -X '));
  const hostileCurl = await hostilePage.textContent('#curl');
  assert.ok(hostileCurl.startsWith("curl -X '`reboot`' "), hostileCurl);
  assert.ok(hostileCurl.includes(`'${front.url}/hostile-method'`), hostileCurl);
  assert.ok(!(await hostilePage.inputValue('#edit-url')).includes('169.254.169.254'));
  assert.ok((await hostilePage.inputValue('#edit-url')).startsWith(target.url + '/app'), 'in forward mode the editor sends where forwarding goes');
  await hostilePage.close();
  // Edit and send: the body checked as it is typed, sent elsewhere, marked as a replay.
  await found.click('#tab-requests');
  await found.click('#rows tr.row:first-child');
  await found.waitForSelector('#detail:not([hidden])');
  await panel(found, 'edit');
  const fromId = await found.evaluate(() => selected);
  await found.fill('#edit-body', '{"title": 7}');
  await found.waitForFunction(() => /✘ \/title: expected/.test(document.querySelector('#edit-problems').textContent));
  await found.fill('#edit-body', alert('edited-by-hand'));
  await found.waitForFunction(() => document.querySelector('#edit-problems').textContent.includes('✔ valid Panther alert'));
  await found.fill('#edit-url', target.url + '/edited');
  await found.click('#edit-send');
  await found.waitForFunction(() => document.querySelector('#edit-result').textContent.startsWith('→ 202'));
  const landed = (await (await fetch(target.admin + '/api/requests?path=/edited')).json())[0];
  assert.equal(landed.body.alertId, 'edited-by-hand');
  assert.equal(landed.headers['x-hookscope-replay'], String(fromId));
  // Replay all that the filter finds.
  await found.fill('#find-q', '');
  await found.selectOption('#find-status', '5xx');
  await found.click('#find button[type=submit]');
  await found.waitForFunction(() => new URLSearchParams(location.search).get('status') === '5xx');
  await found.click('#more-filters summary');
  await found.fill('#replay-all-to', target.url + '/again');
  await found.click('#replay-all');
  await found.waitForFunction(() => /^replayed \d+: 202×\d+$/.test(document.querySelector('#replay-all-result').textContent), null, { timeout: 5000 });

  // The alerts view: a delivery per row, attempts as marks, the final state and duplicates.
  await found.click('#find-clear');
  await found.waitForFunction(() => !new URLSearchParams(location.search).get('status'));
  await found.click('#tab-alerts');
  await found.waitForFunction(() => document.querySelectorAll('#alerts-rows .delivery').length >= 2, null, { timeout: 5000 });
  assert.match(new URL(found.url()).search, /view=alerts/);
  const delivered = found.locator('#alerts-rows .delivery', { hasText: 'delivered after 2 attempts' });
  assert.equal(await delivered.count(), 1);
  assert.match(await delivered.textContent(), /duplicate upstream ×1/);
  assert.equal(await delivered.locator('.mark').count(), 2);
  assert.match(await delivered.locator('.mark').nth(1).getAttribute('title'), /attempt 2: 202, upstream 202, [\d.]+ s after attempt 1/);
  // A timeline: labelled ticks, a legend, the gap written, the lost acknowledgement marked,
  // and the final state shown whole.
  assert.equal(await found.locator('#alerts-axis .ticks span').count(), 5);
  assert.match(await found.textContent('#alerts-legend'), /lost acknowledgement/);
  assert.match(await delivered.textContent(), /gaps [\d.]+ s/);
  assert.match(await delivered.textContent(), /lost acknowledgement ×1/);
  assert.equal(await delivered.locator('.mark.lost').count(), 1);
  const state = delivered.locator('.badge', { hasText: 'delivered after 2 attempts' });
  const [stateBox, labelBox] = [await state.boundingBox(), await delivered.locator('.label').boundingBox()];
  assert.ok(stateBox.x + stateBox.width <= labelBox.x + labelBox.width + 0.5, 'the final state is not cut');
  await accessible(found, 'the alerts view');
  await found.setViewportSize({ width: 1280, height: 800 });
  await shoot(found, 'alerts');
  await delivered.locator('.mark').first().dispatchEvent('click');
  await found.waitForFunction(() => document.querySelector('#detail-title').textContent === '#1');
  await found.close();

  assert.equal(dialogs, 0, 'no script from a request ever ran');
  assert.deepEqual(pageErrors, []);
  console.log(`inspector browser test: ok (screenshot ${SCREENSHOT}, select with 1000 rows ${selectMs} ms, with 10,000 kept: find ${findMs.toFixed(0)} ms, scroll ${scrollMs.toFixed(0)} ms; axe-core clean on: ${axeViews.join('; ')})`);
  console.log('1 passed, 0 failed');
} finally {
  if (browser) await browser.close();
  for (const child of children) child.kill('SIGTERM');
}
