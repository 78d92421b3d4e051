// Songda clerk console. Talks only to this server's /v1 API with the court's API key
// (kept in sessionStorage, sent as Authorization: Bearer, never put in a URL). Live
// updates read the SSE streams with fetch() so the key stays in a header.
'use strict';
(function () {
  const KEY = 'songda.apiKey';
  const STATUS_ZH = {
    ACCEPTED: '已受理', SENT: '已发送', DELIVERED: '已到达', READ: '已阅读', ACKNOWLEDGED: '已确认收到',
    FAILED: '发送失败', CANCELLED: '已取消', HELD: '备用待发', RETRY_SCHEDULED: '等待重试', FALLBACK: '转备用通道',
    RETRIEVED: '已下载文书',
  };
  const CHANNEL_ZH = { inapp: '站内信', sms: '短信', wechat: '微信', email: '电子邮件' };
  const CHANNEL_ORDER = ['inapp', 'sms', 'wechat', 'email'];
  const ROLE_ZH = { party: '当事人', lawyer: '律师', agent: '代理人', other: '其他' };
  const $ = (sel) => document.querySelector(sel);

  // Builds an element; children are nodes or text (always set as text, never as HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function beijing(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || '';
    const b = new Date(d.getTime() + 8 * 3600 * 1000);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${b.getUTCFullYear()}-${p(b.getUTCMonth() + 1)}-${p(b.getUTCDate())} ` +
      `${p(b.getUTCHours())}:${p(b.getUTCMinutes())}:${p(b.getUTCSeconds())}`;
  }

  // Provider texts may carry a raw number or mailbox (e.g. Aliyun message ids "BizId^0:139…"): mask them as the
  // API masks addresses, so no full phone number or email is ever on a clerk's screen.
  function maskPersonal(text) {
    return String(text)
      .replace(/(\+?86)?(1\d{2})\d{4}(\d{4})/g, (m, cc, a, b) => (cc || '') + a + '****' + b)
      .replace(/([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)/g, '$1***@$2');
  }

  function key() { return sessionStorage.getItem(KEY) || ''; }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {}, { Authorization: 'Bearer ' + key() });
    const res = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
    if (res.status === 401 && !options.signingIn) { signOut('登录已失效，请重新输入密钥。'); }
    return res;
  }

  async function errorText(res) {
    try {
      const j = await res.json();
      if (j && j.error) return `${j.error.message}（${j.error.code}，HTTP ${res.status}）`;
    } catch (_) { /* not JSON */ }
    return `HTTP ${res.status}`;
  }

  // ---- Sign-in ----
  async function showSignedIn() {
    const res = await api('/v1/me');
    if (!res.ok) return signOut(res.status === 401 ? '' : '无法连接服务器：' + await errorText(res));
    const me = await res.json();
    $('#who-text').textContent = me.admin ? '运维账号（全部法院）' : '法院：' + me.court_id;
    $('#who').hidden = false;
    $('#signin').hidden = true;
    $('#app').hidden = false;
    const m = /(?:^|&)case=([^&]*)/.exec(location.hash.slice(1));
    if (m) { $('#case-number').value = decodeURIComponent(m[1]); searchCase(); }
  }

  function signOut(message) {
    stopStream(caseStream); stopStream(broadcastStream);
    sessionStorage.removeItem(KEY);
    $('#who').hidden = true;
    $('#app').hidden = true;
    $('#signin').hidden = false;
    $('#signin-error').hidden = !message;
    $('#signin-error').textContent = message || '';
    $('#api-key').focus();
  }

  $('#signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = $('#api-key').value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY, k);
    let res;
    try { res = await api('/v1/me', { signingIn: true }); } catch (e) {
      sessionStorage.removeItem(KEY);
      $('#signin-error').hidden = false;
      $('#signin-error').textContent = '无法连接服务器，请检查网络后重试。';
      return;
    }
    if (!res.ok) {
      sessionStorage.removeItem(KEY);
      $('#signin-error').hidden = false;
      $('#signin-error').textContent = res.status === 401 ? '密钥不正确，请核对后重试。' : '登录失败：' + await errorText(res);
      return;
    }
    $('#api-key').value = '';
    showSignedIn();
  });
  $('#sign-out').addEventListener('click', () => signOut(''));

  // ---- Tabs ----
  for (const tab of document.querySelectorAll('.tabs button')) {
    tab.addEventListener('click', () => {
      for (const t of document.querySelectorAll('.tabs button')) {
        t.setAttribute('aria-selected', String(t === tab));
        $('#' + t.dataset.panel).hidden = t !== tab;
      }
    });
  }

  // ---- Live streams over fetch (SSE framing) ----
  function stopStream(s) { if (s && s.abort) { s.stopped = true; s.abort.abort(); } }

  // Reads an SSE stream; onEvent(name, data). Reconnects when it ends; falls back to polling when refused.
  function openStream(path, onEvent, setLive, poll) {
    const s = { stopped: false, abort: new AbortController() };
    (async function loop() {
      while (!s.stopped) {
        try {
          const res = await api(path, { signal: s.abort.signal, headers: { Accept: 'text/event-stream' } });
          if (res.status === 503 && poll) {           // too many open streams: poll instead, then try again
            setLive('off', '实时连接已满，改为每 3 秒刷新');
            for (let i = 0; i < 5 && !s.stopped; i++) { await poll(); await sleep(3000); }
            continue;
          }
          if (!res.ok || !res.body) { setLive('off', '实时更新不可用：' + await errorText(res)); await sleep(5000); continue; }
          setLive('on', '实时更新中');
          const reader = res.body.getReader();
          const decoder = new TextDecoder();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(value, { stream: true });
            let cut;
            while ((cut = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, cut);
              buf = buf.slice(cut + 2);
              let name = 'message'; const data = [];
              for (const line of block.split('\n')) {
                if (line.startsWith('event:')) name = line.slice(6).trim();
                else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
              }
              if (data.length) onEvent(name, data.join('\n'));
            }
          }
        } catch (e) {
          if (s.stopped) return;
        }
        if (!s.stopped) { setLive('off', '连接中断，正在重新连接…'); await sleep(2000); }
      }
    })();
    return s;
  }
  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  // ---- Cases ----
  let caseStream = null;
  let currentCase = '';

  function setCaseState(text, isError) {
    const m = $('#case-message');
    m.hidden = !text;
    m.textContent = text || '';
    m.classList.toggle('error', !!isError);
  }
  function setLive(node) {
    return (state, text) => { node.hidden = false; node.className = 'live ' + state; node.textContent = text; };
  }

  $('#case-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchCase(); });

  async function searchCase() {
    const number = $('#case-number').value.trim();
    if (!number) return;
    stopStream(caseStream);
    currentCase = number;
    history.replaceState(null, '', '#case=' + encodeURIComponent(number));
    $('#case-results').replaceChildren();
    $('#live').hidden = true;
    setCaseState('正在查询…');
    const path = '/v1/cases/' + encodeURIComponent(number);
    let res;
    try { res = await api(path + '/deliveries'); } catch (e) { return setCaseState('无法连接服务器，请稍后重试。', true); }
    if (number !== currentCase) return;
    if (res.status === 403) return setCaseState('该案件属于其他法院，您无权查看。', true);
    if (!res.ok) return setCaseState('查询失败：' + await errorText(res), true);
    renderCase(await res.json());
    const poll = async () => {
      const r = await api(path + '/deliveries');
      if (r.ok && number === currentCase) renderCase(await r.json());
    };
    caseStream = openStream(path + '/events', (name, data) => {
      if (number !== currentCase) return;
      if (name === 'deliveries') renderCase(JSON.parse(data));
      else if (name === 'error') setCaseState('实时更新出错：' + (JSON.parse(data).error || {}).message, true);
    }, setLive($('#live')), poll);
  }

  function renderCase(data) {
    const list = data.deliveries || [];
    const unreachable = data.unreachable || [];
    if (!list.length && !unreachable.length) {
      $('#case-results').replaceChildren();
      return setCaseState(`没有找到案号「${data.case_number}」的送达记录。请核对案号（含括号与“号”字）。`);
    }
    setCaseState('');
    const byRecipient = new Map();
    for (const d of list) {
      const k = d.recipient.id;
      if (!byRecipient.has(k)) byRecipient.set(k, []);
      byRecipient.get(k).push(d);
    }
    const cards = [];
    for (const [rid, ds] of byRecipient) {
      ds.sort((a, b) => CHANNEL_ORDER.indexOf(a.channel) - CHANNEL_ORDER.indexOf(b.channel));
      const r = ds[0].recipient;
      const card = el('article', { class: 'recipient', 'data-recipient': rid },
        el('header', {}, el('span', { class: 'name' }, r.name || rid), el('span', { class: 'muted' }, ROLE_ZH[r.role] || r.role),
          el('span', { class: 'muted' }, ds[0].title || ''), el('span', { class: 'muted' }, '受送达人编号 ' + rid)));
      for (const d of ds) card.append(deliveryRow(d));
      cards.push(card);
    }
    // Recipients no delivery could be planned for (no route for the role, no contact on its channels): named, so
    // the clerk serves them by other means.
    const none = unreachable.length ? [el('section', { class: 'unreachable' },
      el('h3', {}, `未能电子送达 ${unreachable.length} 人（无可用的送达渠道，请以其他方式送达）`),
      el('ul', {}, ...unreachable.map((u) => el('li', { 'data-recipient': u.recipient_id },
        el('span', { class: 'name' }, u.name || u.recipient_id), ' ',
        el('span', { class: 'muted' }, ROLE_ZH[u.role] || u.role || ''), ' ',
        el('span', { class: 'muted' }, '受送达人编号 ' + u.recipient_id + ' · 事件 ' + u.event_id)))))] : [];
    $('#case-results').replaceChildren(
      el('p', { class: 'muted' }, `案号 ${data.case_number} · ${byRecipient.size} 名受送达人 · ${list.length} 条送达`),
      ...cards, ...none);
  }

  function detail(text) {
    return el('span', { class: 'detail', title: text }, text.length > 60 ? text.slice(0, 60) + '…' : text);
  }

  function deliveryRow(d) {
    const timeline = el('ol', { class: 'timeline' });
    for (const h of d.history || []) {
      timeline.append(el('li', { 'data-status': h.status },
        el('span', { class: 'status', 'data-status': h.status }, STATUS_ZH[h.status] || h.status),
        el('time', { dateTime: h.at }, beijing(h.at)),
        h.detail ? detail(maskPersonal(h.detail)) : null));
    }
    const proof = el('button', { type: 'button', class: 'proof' }, '查看凭证');
    proof.addEventListener('click', () => openCertificate(d.id));
    return el('div', { class: 'delivery', 'data-delivery': d.id, 'data-channel': d.channel },
      el('span', { class: 'channel' }, CHANNEL_ZH[d.channel] || d.channel),
      el('span', { class: 'address' }, d.address_masked || ''),
      el('span', {}, el('span', { class: 'status current', 'data-status': d.status }, STATUS_ZH[d.status] || d.status)),
      timeline,
      el('span', { class: 'actions' }, proof));
  }

  // ---- Certificate ----
  async function openCertificate(id) {
    const res = await api('/v1/deliveries/' + encodeURIComponent(id) + '/certificate-link', { method: 'POST' });
    if (!res.ok) return setCaseState('无法打开凭证：' + await errorText(res), true);
    const { url } = await res.json();
    $('#certificate-frame').src = url;
    $('#certificate-open').href = url;
    $('#certificate').showModal();
  }
  $('#certificate-print').addEventListener('click', () => $('#certificate-frame').contentWindow.print());
  $('#certificate-close').addEventListener('click', () => {
    $('#certificate').close();
    $('#certificate-frame').src = 'about:blank';
  });

  // ---- Broadcasts (GET /v1/broadcasts/{id}, SSE /v1/broadcasts/{id}/events) ----
  let broadcastStream = null;
  function setBroadcastState(text, isError) {
    const m = $('#broadcast-message');
    m.hidden = !text;
    m.textContent = text || '';
    m.classList.toggle('error', !!isError);
  }
  $('#broadcast-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#broadcast-id').value.trim();
    if (id) showBroadcast(id);
  });
  $('#tab-broadcasts').addEventListener('click', () => listBroadcasts());

  function noEndpoint(body) { return body && body.error && /no such endpoint/.test(body.error.message || ''); }

  // The court's recent broadcasts (GET /v1/broadcasts); the operator token must name a court, so it types an id.
  async function listBroadcasts() {
    let res;
    try { res = await api('/v1/broadcasts'); } catch (e) { return setBroadcastState('无法连接服务器，请稍后重试。', true); }
    let body = {};
    try { body = await res.json(); } catch (_) { /* empty */ }
    const list = $('#broadcast-list');
    list.replaceChildren();
    if (res.status === 404) return setBroadcastState(noEndpoint(body) ? '暂无群发：本服务尚未启用群发功能。' : '暂无群发。');
    if (res.status === 400) return setBroadcastState('运维账号请输入群发编号查看。');
    if (!res.ok) return setBroadcastState('查询失败：' + (body.error ? body.error.message : 'HTTP ' + res.status), true);
    const items = body.items || [];
    if (!items.length) return setBroadcastState('本院暂无群发。');
    if ($('#broadcast-result').hidden) setBroadcastState('选择一次群发查看进度：');
    for (const b of items) {
      const btn = el('button', { type: 'button', class: 'broadcast-item', 'data-broadcast': b.id },
        el('strong', {}, b.title || b.id), ' ', el('span', { class: 'muted' }, `${b.id} · ${b.started_at ? beijing(b.started_at) : ''} · ${stateZh(b)}`));
      btn.addEventListener('click', () => { $('#broadcast-id').value = b.id; showBroadcast(b.id); });
      list.append(el('li', {}, btn));
    }
  }

  function stateZh(b) {
    const zh = { finished: '已完成', cancelled: '已取消', failed: '失败', fanning_out: '展开名单中', dispatching: '发送中', running: '发送中' };
    return zh[b.state] || (b.finished_at ? '已完成' : '进行中');
  }

  async function showBroadcast(id) {
    stopStream(broadcastStream);
    $('#broadcast-result').hidden = true;
    $('#broadcast-live').hidden = true;
    setBroadcastState('正在查询…');
    const path = '/v1/broadcasts/' + encodeURIComponent(id);
    let res;
    try { res = await api(path); } catch (e) { return setBroadcastState('无法连接服务器，请稍后重试。', true); }
    if (res.status === 404) {
      let body = {};
      try { body = await res.json(); } catch (_) { /* empty */ }
      return setBroadcastState(noEndpoint(body) ? '暂无群发：本服务尚未启用群发功能。' : `暂无群发：没有编号为「${id}」的群发。`);
    }
    if (res.status === 403) return setBroadcastState('该群发属于其他法院，您无权查看。', true);
    if (!res.ok) return setBroadcastState('查询失败：' + await errorText(res), true);
    const first = await res.json();
    renderBroadcast(first);
    if (first.finished_at) return;  // nothing more will change
    const live = setLive($('#broadcast-live'));
    const stream = openStream(path + '/events', (name, data) => {
      if (name === 'error') return live('off', '进度暂不可用，正在重新连接…');
      let b;
      try { b = JSON.parse(data); } catch (_) { return; }
      renderBroadcast(b);
      if (b.finished_at) { stopStream(stream); live('on', '群发已结束'); }
    }, live, async () => {
      const r = await api(path);
      if (r.ok) renderBroadcast(await r.json());
    });
    broadcastStream = stream;
  }

  function renderBroadcast(b) {
    const counts = b.counts || b.status_counts || {};
    const total = b.deliveries || b.total || Object.values(counts).reduce((a, n) => a + Number(n || 0), 0);
    const done = ['DELIVERED', 'READ', 'ACKNOWLEDGED', 'FAILED', 'CANCELLED']
      .reduce((a, s) => a + Number(counts[s] || 0), 0);
    const pct = total ? Math.min(100, Math.round((done * 100) / total)) : 0;
    setBroadcastState('');
    $('#broadcast-result').hidden = false;
    $('#broadcast-title').textContent = (b.title || b.id || '') + (b.id ? `（${b.id}）` : '');
    $('#broadcast-bar').style.width = pct + '%';
    const parts = [`${b.members !== undefined ? b.members + ' 名成员，' : ''}共 ${total} 条送达，已完成 ${done}（${pct}%）`];
    if (b.started_at) parts.push('开始 ' + beijing(b.started_at));
    parts.push(b.finished_at ? '结束 ' + beijing(b.finished_at) : stateZh(b));
    const rate = b.rate_per_s !== undefined ? b.rate_per_s : b.rate;
    if (rate !== undefined && rate !== null) parts.push(`速率 ${Number(rate).toFixed(1)} 条/秒`);
    $('#broadcast-summary').textContent = parts.join(' · ');
    const order = Object.keys(STATUS_ZH);
    const rank = (st) => (order.indexOf(st) < 0 ? order.length : order.indexOf(st));
    $('#broadcast-counts').replaceChildren(...Object.entries(counts).sort((a, b) => rank(a[0]) - rank(b[0])).map(([s, n]) =>
      el('div', { 'data-status': s }, el('dt', {}, el('span', { class: 'status', 'data-status': s }, STATUS_ZH[s] || s)), el('dd', {}, String(n)))));
  }

  if (key()) showSignedIn(); else signOut('');
})();
