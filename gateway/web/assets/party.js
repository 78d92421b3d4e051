// Party page: one press of 「确认收到」 only (the form works without this script too).
'use strict';
(function () {
  const form = document.getElementById('ack-form');
  if (!form) return;
  form.addEventListener('submit', () => {
    const b = document.getElementById('ack');
    b.disabled = true;
    b.textContent = '正在提交…';
  });
})();
