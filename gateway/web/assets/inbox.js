// In-app inbox: live over SSE (EventSource; the signed inbox token is the only credential and is
// scoped to this one inbox). Falls back to polling the JSON when the stream is refused.
'use strict';
(function () {
  const token = new URLSearchParams(location.search).get('token') || '';
  const q = '?token=' + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function beijing(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const b = new Date(d.getTime() + 8 * 3600 * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return `${b.getUTCFullYear()}-${p(b.getUTCMonth() + 1)}-${p(b.getUTCDate())} ${p(b.getUTCHours())}:${p(b.getUTCMinutes())}`;
  }
  function state(text) { $('state').hidden = !text; $('state').textContent = text || ''; }
  function render(data) {
    const msgs = data.messages || [];
    $('unread').hidden = !data.unread;
    $('unread').textContent = data.unread ? data.unread + ' 条未读' : '';
    state(msgs.length ? '' : '暂无消息。法院发给您的通知会显示在这里。');
    $('messages').replaceChildren(...msgs.map((m) => {
      const li = el('li', 'message' + (m.read ? '' : ' unread'));
      li.dataset.id = m.id;
      li.append(el('h3', '', m.title || '法院通知'));
      li.append(el('div', 'meta', [m.court_name, m.case_number, beijing(m.delivered_at), m.read ? '已读' : '未读']
        .filter(Boolean).join(' · ')));
      li.append(el('p', '', m.text || ''));
      const a = el('a', '', m.document_title ? '查看通知与文书《' + m.document_title + '》' : '查看通知');
      a.href = m.link;
      li.append(a);
      return li;
    }));
  }
  async function poll() {
    const res = await fetch('/app/inbox/messages' + q, { cache: 'no-store' });
    if (res.status === 410) { state('链接已过期，请在应用内重新打开收件箱。'); return false; }
    if (!res.ok) { state('链接无效，请在应用内重新打开收件箱。'); return false; }
    render(await res.json());
    return true;
  }
  if (!token) { $('live').hidden = true; state('链接不完整，请在应用内重新打开收件箱。'); return; }
  const es = new EventSource('/app/inbox/events' + q);
  es.addEventListener('inbox', (ev) => { $('live').textContent = '● 实时更新中'; render(JSON.parse(ev.data)); });
  es.addEventListener('error', async () => {
    if (es.readyState !== EventSource.CLOSED) { $('live').textContent = '连接中断，正在重新连接…'; return; }
    $('live').textContent = '每 5 秒刷新';
    if (await poll()) setInterval(poll, 5000);
  });
})();
